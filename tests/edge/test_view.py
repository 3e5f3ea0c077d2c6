"""edge.view without threads or sockets: the quality marks, the snapshot built from frames, and the loop's
side (a real Runtime on a real bundle hands frames over, bounded, and its filtered tail is the chain's
output).  The HTTP server and the browser have their own files (test_view_server.py, test_view_browser.py).
"""

from __future__ import annotations

import base64
import json
import time
from collections import deque

import numpy as np
import pytest

from edge import config as C
from edge.bundle import load_bundle
from edge.errors import ViewError
from edge.recordings.synthetic import grasp_lift_series
from edge.runtime import Pipeline, Runtime, RuntimeConfig
from edge.sources import Chunk, ReplaySource
from edge.view import Frame, RuntimeFeed, ViewState, parse_address
from edge.view.quality import QualityCounts, channel_marks, mains_fraction
from tests.conftest import FIXTURE_BUNDLES

GL = FIXTURE_BUNDLES / "grasp-lift"


@pytest.fixture(scope="module")
def gl():
    return load_bundle(GL)


@pytest.fixture(scope="module")
def rec():
    return grasp_lift_series(1, 7, seed=3, n_trials=2)


# --------------------------------------------------------------------------- address


def test_the_view_binds_to_loopback_unless_an_address_is_named():
    assert parse_address("8765") == ("127.0.0.1", 8765)
    assert parse_address(0) == ("127.0.0.1", 0)
    assert parse_address("0.0.0.0:8765") == ("0.0.0.0", 8765)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    assert parse_address("pi.local:80") == ("pi.local", 80)
    for bad in ("", "http://x:1", "x:", ":80", "70000", "1.2.3.4:port", "[::1]9000"):
        with pytest.raises(ViewError, match="PORT"):
            parse_address(bad)


# --------------------------------------------------------------------------- quality


def _channels(fs=500.0, n=500, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 10, (n, 5))
    t = np.arange(n) / fs
    x[:, 1] = np.nan                      # a lead off
    x[5:9, 2] = 1e9                       # railed
    x[:, 3] = 4.2                         # constant: flat
    x[:, 4] = 200 * np.sin(2 * np.pi * 50 * t) + rng.normal(0, 5, n)  # mains
    return x


def test_each_channel_gets_its_mark():
    marks = channel_marks(5, raw=_channels(), fs=500.0, rail=1e6)
    assert marks == ["ok", "disconnected", "railed", "flat", "mains"]
    # the filtered signal decides flatness when given (the runtime's own rule, FLAT_PTP)
    filtered = np.random.default_rng(1).normal(0, 1, (250, 5))
    filtered[:, 0] = 7.0
    assert channel_marks(5, raw=_channels(), fs=500.0, filtered=filtered, rail=1e6)[0] == "flat"
    assert channel_marks(5, raw=_channels(), fs=500.0, filtered=filtered, rail=1e6)[3] == "ok"
    # without a rail (record: no chain), a railed sample is no mark by itself
    assert channel_marks(5, raw=_channels(), fs=500.0)[2] == "ok"
    assert channel_marks(3) == ["ok"] * 3


def test_mains_fraction_sees_50_and_60_hz_and_nothing_at_low_rates():
    t = np.arange(400) / 200.0
    x = np.stack([np.sin(2 * np.pi * 60 * t), np.sin(2 * np.pi * 10 * t)], axis=1)
    frac = mains_fraction(x, 200.0)
    assert frac[0] > 0.9 and frac[1] < 0.05
    assert mains_fraction(x, 100.0).tolist() == [0.0, 0.0]  # 100 Hz cannot show 50 Hz mains


def test_a_signal_two_thirds_mains_is_marked_mains_at_500_hz_on_the_capture_the_view_takes():
    """The rule: over half of the power at mains → ``mains``.  The capture the view asks the loop for at
    500 Hz, a Hann window and the band must count a mains line's power whole: with a 0.5 s capture (2 Hz
    lines) and ±1 Hz, a third of it fell outside the band and a signal two thirds mains read 0.41."""

    class Run(_Feed):
        raw_fs = 500.0

    n = ViewState(Run()).raw_wanted()
    assert n >= 500  # at least a second: lines 1 Hz apart
    rng = np.random.default_rng(7)
    t = np.arange(n) / 500.0
    cols = []
    for hz in (50.0, 50.4, 59.7, 60.0):  # on a spectral line and between two
        for share in (2 / 3, 1 / 3):
            tone = np.sqrt(2 * share) * np.sin(2 * np.pi * hz * t + 0.3)  # mean power: share
            cols.append(tone + rng.normal(0, np.sqrt(1 - share), n))
    raw = np.stack(cols, axis=1)
    marks = channel_marks(raw.shape[1], raw=raw, fs=500.0, rail=1e6)
    assert marks == ["mains", "ok"] * 4, marks
    # a line's power counted whole, on a spectral line or between two
    pure = np.stack([np.sin(2 * np.pi * hz * t) for hz in (50.0, 50.4, 59.7, 60.0)], axis=1)
    assert np.all(mains_fraction(pure, 500.0) > 0.99), mains_fraction(pure, 500.0)
    # a capture too short for the window's main lobe to fit the band is not judged for mains
    assert mains_fraction(raw[: n // 2], 500.0).tolist() == [0.0] * raw.shape[1]


def test_quality_counts_count_episodes_not_checks():
    q = QualityCounts(2)
    for marks in (["ok", "flat"], ["flat", "flat"], ["ok", "flat"], ["flat", "mains"], ["flat", "ok"]):
        q.update(marks)
    assert q.counts[0]["flat"] == 2 and q.counts[1] == {"disconnected": 0, "railed": 0, "flat": 1, "mains": 1}
    assert q.to_json()[1] == {"mark": "ok", "counts": {"flat": 1, "mains": 1}}


# --------------------------------------------------------------------------- state: frames → snapshot


class _Feed:
    mode, task, labels, thresholds = "run", "grasp-lift", ["A", "B"], [0.5, 0.4]
    channels, fs, raw_fs, rail, budget_ms = ["c1", "c2", "c3"], 250.0, 500.0, 1e6, 10.0


def _frame(seq, signal, **kw):
    return Frame(seq, time.time(), np.asarray(signal, np.float32), **kw)


def _decode_signal(snap):
    s = snap["signal"]
    q = np.frombuffer(base64.b64decode(s["data"]), "<i2").reshape(s["n"], -1)
    return q * np.array(s["scale"]) + np.array(s["offset"])


def test_the_snapshot_holds_what_the_frames_brought(monkeypatch):
    st = ViewState(_Feed())
    assert st.step == 5 and st.display_fs == 50.0
    y = np.arange(3 * 37, dtype=np.float32).reshape(37, 3)
    stages = {"acquire": 1.0, "filter": 0.2, "infer": 0.3, "decide": 0.05, "send": 2.0}
    windows = tuple((0.1 * i, np.array([i / 10, 0.2], np.float32), stages, 3.0 + i) for i in range(4))
    ev = (1.0, "A", "OPEN", "fired", None, True, None)
    st.add(_frame(1, y[:12], windows=windows[:2], events=(ev, ev), status={"safe": False}))
    st.add(_frame(2, y[12:], windows=windows[2:], events=((1.5, "B", "GRASP", "held", "not valid", False, None),),
                  status={"safe": True}, arm={"position_deg": [1.0, 2.0]}))
    snap = json.loads(st.encode())
    # the signal: every 5th sample across frames (the decimation's phase carries over), int16 within 1e-4
    shown = _decode_signal(snap)
    np.testing.assert_allclose(shown, y[::5], rtol=0, atol=np.abs(y).max() / 32000 * 1.01)
    out = snap["outputs"]
    p = np.frombuffer(base64.b64decode(out["data"]), np.uint8).reshape(out["n"], 2) / 255
    assert out["t_span"] == [0.0, 0.3] and np.allclose(p[:, 0], [0, 0.1, 0.2, 0.3], atol=1 / 255)
    assert out["labels"] == ["A", "B"] and out["thresholds"] == [0.5, 0.4]
    # a repeat of the same decision is counted in place; the next differs
    assert [(d["reason"], d["n"]) for d in snap["decisions"]] == [("fired", 2), ("held", 1)]
    assert snap["decisions"][1]["detail"] == "not valid" and snap["decisions"][1]["sent"] is False
    lat = snap["latency"]
    assert lat["n"] == 4 and lat["stages"]["send"]["p50"] == 2.0 and lat["stages"]["processing"]["p99"] > 5.9
    assert snap["runtime"] == {"safe": True} and snap["arm"] == {"position_deg": [1.0, 2.0]}
    assert snap["seq"] == 2 and [q["mark"] for q in snap["quality"]] == ["ok"] * 3


def test_the_snapshot_stays_bounded_and_a_fast_replay_loses_only_the_oldest():
    st = ViewState(_Feed())
    for i in range(200):
        st.add(_frame(i + 1, np.full((500, 3), float(i)), windows=tuple((i, np.zeros(2), {}, 0.0)
                                                                        for _ in range(30))))
    snap = st.snapshot()
    assert snap["signal"]["n"] == st.n_display == int(C.VIEW_SIGNAL_S * 50)
    assert snap["outputs"]["n"] == C.VIEW_OUTPUT_POINTS and snap["latency"]["n"] <= C.VIEW_LATENCY_MAX
    assert len(json.dumps(snap)) < 200_000


def test_record_mode_shows_the_cue_and_judges_the_raw_signal():
    class Rec(_Feed):
        mode, labels, thresholds, rail, budget_ms, fs = "record", [], None, None, None, 500.0

    st = ViewState(Rec())
    raw = np.random.default_rng(0).normal(100, 5, (600, 3))
    raw[:, 2] = np.nan
    cue = {"text": "Close your hand", "left_s": 1.5, "progress": 0.25}
    st.add(_frame(1, raw, raw=raw.astype(np.float32), cue=cue, status={"samples": 600}))
    snap = json.loads(st.encode())  # NaN never reaches the JSON
    assert snap["cue"] == cue and snap["record"] == {"samples": 600} and snap["runtime"] is None
    assert snap["outputs"] is None and snap["latency"] is None
    assert [q["mark"] for q in snap["quality"]] == ["ok", "ok", "disconnected"]
    assert abs(_decode_signal(snap)[:, 0].mean() - 100) < 2  # centred per channel, the offset says where


# --------------------------------------------------------------------------- the loop's side


def test_filtered_tail_is_the_chains_output_read_at_any_rate(gl, rec):
    pipe = Pipeline(gl, rec.channels, rec.fs, drop_stale=False)
    ref = gl.signal_chain().process(rec.samples[:4000]).astype(np.float32)
    got, count = [], 0
    for k, a in enumerate(range(0, 4000, 10)):
        pipe.process(Chunk(rec.samples[a:a + 10], (a + np.arange(10)) / rec.fs, 0.0, a, False))
        if k % 3 == 0 or a + 10 >= 4000:  # read every third chunk: what came since the last read
            tail, count = pipe.filtered_tail(count)
            got.append(tail)
    np.testing.assert_array_equal(np.concatenate(got), ref)


def test_the_loop_hands_frames_over_bounded_and_never_waits(gl, rec):
    rt = Runtime(gl, ReplaySource(rec, speed=0), None, RuntimeConfig(budget_ms=1000))
    rt.view = feed = RuntimeFeed(rt, rate_hz=1000.0)
    s = rt.run(max_seconds=20)
    assert s.windows > 100
    frames = list(feed.frames)
    assert 0 < len(frames) <= C.VIEW_FRAME_BACKLOG  # nobody took them: the oldest were dropped, nothing waited
    assert [f.seq for f in frames] == list(range(frames[0].seq, frames[-1].seq + 1))
    assert all(len(f.windows) <= C.VIEW_WINDOWS_PER_FRAME for f in frames)
    f = frames[-1]
    assert f.status["windows"] <= rt.pipeline.windows and f.arm is None
    assert f.signal.dtype == np.float32 and f.signal.shape[1] == len(gl.channels)


@pytest.mark.parametrize("where", ["tick", "window"])
def test_a_view_that_raises_on_the_loops_thread_is_dropped_and_control_goes_on(gl, rec, caplog, where):
    ref = Runtime(gl, ReplaySource(rec, speed=0), None, RuntimeConfig(budget_ms=1000)).run()
    rt = Runtime(gl, ReplaySource(rec, speed=0), None, RuntimeConfig(budget_ms=1000))
    rt.view = feed = RuntimeFeed(rt, rate_hz=1000.0)
    calls = []

    def broken(*args):
        calls.append(1)
        if len(calls) >= 3:
            raise ZeroDivisionError("a bug in the view")

    setattr(feed, where, broken)
    with caplog.at_level("ERROR", logger="edge.runtime.loop"):
        s = rt.run(max_seconds=60)
    assert rt.view is None and len(calls) == 3  # dropped at its first error, never called again
    assert s.windows == ref.windows and s.decisions_fired == ref.decisions_fired  # control went on, whole
    said = [r for r in caplog.records if "live view failed" in r.getMessage()]
    assert len(said) == 1 and "ZeroDivisionError" in said[0].getMessage()
    assert feed.failed == "ZeroDivisionError: a bug in the view"  # for its server to tell the page


def test_the_server_tells_its_clients_when_the_loop_dropped_its_feed(gl, rec):
    from edge.view import attach

    rt = Runtime(gl, ReplaySource(rec, speed=0), None, RuntimeConfig(budget_ms=1000))
    server = attach(rt, "127.0.0.1:0", say=lambda *a, **k: None)
    try:
        rt.view.failed = "ZeroDivisionError: a bug in the view"
        rt.view = None
        t = time.monotonic() + 5
        while server.failed is None and time.monotonic() < t:
            time.sleep(0.02)
        assert server.failed and "ZeroDivisionError" in server.failed and server.hub.closed
    finally:
        server.close()


def test_raw_samples_are_copied_only_when_the_view_asks(gl, rec):
    rt = Runtime(gl, ReplaySource(rec, speed=0), None, RuntimeConfig(budget_ms=1000))
    rt.view = feed = RuntimeFeed(rt, rate_hz=1000.0)
    feed.frames = deque()  # keep every frame
    rt.run(max_seconds=1.0)
    assert not any(f.raw is not None for f in feed.frames)
    feed.capture = 250
    rt2 = Runtime(gl, ReplaySource(rec, speed=0), None, RuntimeConfig(budget_ms=1000))
    feed.rt, rt2.view = rt2, feed
    rt2.run(max_seconds=20)
    raws = [f.raw for f in feed.frames if f.raw is not None]
    assert len(raws) == 1 and feed.capture == 0  # one capture, then nothing until asked again
    start = int(np.flatnonzero(np.all(rec.samples[:, 0:1] == raws[0][0, 0], axis=1))[0])
    np.testing.assert_array_equal(raws[0], rec.samples[start:start + 250].astype(np.float32))


def test_a_frame_names_why_a_fired_command_was_not_sent(gl, rec):
    rt = Runtime(gl, ReplaySource(rec, speed=0), None, RuntimeConfig(budget_ms=1000))
    feed = RuntimeFeed(rt)

    class R:
        t_end, probs = 1.25, np.zeros(6, np.float32)

    class D:
        label, reason, detail = "HandStart", "fired", None

        class action:
            name = "OPEN"

    rt._safe, rt._safe_reason = True, "stream stalled"
    feed.window(R, D, False, {}, 1.0)
    feed._publish()
    ev = feed.frames[-1].events[0]
    assert ev == (1.25, "HandStart", "OPEN", "fired", None, False, "stream stalled")
    assert feed.frames[-1].status["safe"] is True and feed.frames[-1].status["safe_reason"] == "stream stalled"


# --------------------------------------------------------------------------- packaging and the command line


def test_the_page_ships_as_package_data_and_fetches_nothing():
    from edge.view.server import load_page
    from tests.conftest import REPO

    assert "recursive-include edge/view/static *.html *.js *.css" in (REPO / "MANIFEST.in").read_text()
    page, csp = load_page()
    assert b"/*SCRIPT*/" not in page and b"EventSource" in page and b"<style>" in page
    assert csp.startswith("default-src 'none'; script-src 'sha256-")


def test_a_fixed_token_is_never_printed(gl, rec, monkeypatch):
    from edge.view import attach

    fixed = "F1xedTokenFromTheUnitsEnvFile_abc"
    monkeypatch.setenv(C.VIEW_TOKEN_ENV, fixed)
    rt = Runtime(gl, ReplaySource(rec, speed=0), None, RuntimeConfig(budget_ms=1000))
    said = []
    server = attach(rt, "127.0.0.1:0", say=lambda *a, **k: said.append(" ".join(map(str, a))))
    try:
        assert server.token == fixed
        text = "\n".join(said)
        assert fixed not in text and f"?token=${C.VIEW_TOKEN_ENV}" in text and "environment" in text
    finally:
        server.close()
    monkeypatch.delenv(C.VIEW_TOKEN_ENV)
    said.clear()
    server = attach(rt, "127.0.0.1:0", say=lambda *a, **k: said.append(" ".join(map(str, a))))
    try:
        assert f"?token={server.token}" in said[0]  # a random one, made for this start, is printed
    finally:
        server.close()


def test_the_nginx_recipe_keeps_the_token_out_of_its_access_log():
    from tests.conftest import REPO

    doc = (REPO / "docs" / "live-view.md").read_text()
    nginx = doc[doc.index("```nginx"):]
    nginx = nginx[:nginx.index("```", 8)]
    assert "access_log off;" in nginx


def test_a_malformed_view_address_is_one_line_before_anything_opens(capsys):
    from edge.cli import main

    rc = main(["run", "--bundle", str(GL), "--source", "synthetic:", "--view", "localhost"])
    err = capsys.readouterr().err
    assert rc == 1 and "--view 'localhost': expected PORT, ADDR:PORT" in err and "Traceback" not in err
    rc = main(["record", "--source", "synthetic:", "--paradigm", "gesture", "--out", "/nonexistent/x.xdf",
               "--view", "99999"])
    assert rc == 1 and "--view '99999'" in capsys.readouterr().err
