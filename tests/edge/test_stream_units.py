"""Stream metadata and units (issue 17): what an LSL producer declares, and what the runtime does with it.

Real LSL outlets on loopback (each test its own stream name), the real grasp-lift fixture bundle,
and real EEG from ../shared/data/grasp_lift_segments when it is there (synthetic EEG otherwise).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from types import SimpleNamespace

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.commands import doctor
from edge.recordings import read_recording
from edge.recordings.synthetic import grasp_lift_series
from edge.runtime import Runtime, RuntimeConfig
from edge.signals.channels import channel_key
from edge.signals.units import parse_unit, plan_units, prepare_source
from edge.sources import ReplaySource, SourceError, SourceSpecError, channel_map, open_source, parse_spec
from edge.sources.player import Player
from tests.conftest import FIXTURE_BUNDLES, SHARED_DATA, serve_until

pylsl = pytest.importorskip("pylsl")

GL = FIXTURE_BUNDLES / "grasp-lift"
REAL = SHARED_DATA / "grasp_lift_segments" / "subj1_series1_data.csv.gz"
N = 4000  # 8 s at 500 Hz


def _name() -> str:
    return f"ng-units-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def gl():
    return load_bundle(GL)


@pytest.fixture(scope="module")
def rec():
    """Real EEG (Kaggle integers, µV) if available, stitched into one contiguous piece.

    Contiguous on purpose: the runtime restarts its chain at a chunk flagged as a discontinuity, and
    how LSL chunks a stream varies from run to run; without gaps, the windows and decisions depend
    on the samples only, so two runs can be compared exactly.
    """
    if REAL.is_file():
        r = read_recording(REAL)
    else:
        r = grasp_lift_series(1, 1, seed=0, n_trials=3)
    n = min(N, r.n_samples)
    return dataclasses.replace(r, samples=np.round(r.samples[:n]), labels=r.labels[:n],
                               segments=np.array([[0, n]]), sample_index=np.arange(n), timestamps=None)


def _wait(condition, limit=10.0, pause=0.2):
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(pause)  # the last chunk through the pipeline


def _source(channels, units=None, types=None, stream_type="EEG", unit=None, scale=None):
    n = len(channels)
    return SimpleNamespace(kind="lsl", name="fake", props={"name": "fake"}, channels=list(channels), fs=500.0,
                           units=units or [None] * n, channel_types=types or [None] * n, stream_type=stream_type,
                           unit=unit, scale=scale)


def _bundle(channels, units="uV"):
    return SimpleNamespace(channels=list(channels), manifest={"signal": {"units": units}}, fs=500.0)


# --------------------------------------------------------------------------- (a) the unit parser


@pytest.mark.parametrize("text, uv", [
    ("microvolts", 1.0), ("microvolt", 1.0), ("uV", 1.0), ("µV", 1.0), ("μV", 1.0), (" UV ", 1.0),
    ("volts", 1e6), ("volt", 1e6), ("V", 1e6), ("v", 1e6), ("mV", 1e3), ("millivolts", 1e3), ("nV", 1e-3),
    ("nanovolts", 1e-3),
    # mne-lsl writes the FIFF unit multiplier exponent of the SI unit (V for EEG)
    ("0", 1e6), ("-6", 1.0), ("-3", 1e3), ("-9", 1e-3), ("+0", 1e6),
])
def test_parse_unit_every_spelling(text, uv):
    assert parse_unit(text) == pytest.approx(uv, rel=1e-12)


@pytest.mark.parametrize("text", [None, "", "none", "n/a", "myo", "raw", "counts"])
def test_undeclared_and_non_physical_units_have_no_factor(text):
    assert parse_unit(text) is None


@pytest.mark.parametrize("text", ["furlongs", "-7", "5", "kV", "1e-6"])
def test_an_unknown_unit_is_refused_naming_it_and_the_fix(text):
    with pytest.raises(SourceError, match=rf"unknown unit '{text}'.*unit=uV.*scale=FACTOR"):
        parse_unit(text)


def test_unit_and_scale_spec_options():
    assert parse_spec("lsl:name=x&unit=V")[2] == {"name": "x", "unit": "V"}
    assert parse_spec("replay:f.csv?scale=1e6")[2] == {"scale": "1e6"}
    for spec, fix in [("lsl:name=x&unit=furlongs", "unknown unit 'furlongs'"),
                      ("lsl:name=x&unit=V&scale=2", "not both"), ("lsl:name=x&scale=0", "scale must be"),
                      ("replay:nowhere.csv?unit=none", "declares no unit"), ("synthetic:?scale=-1", "scale must be")]:
        with pytest.raises(SourceSpecError, match=fix):
            open_source(spec)
    src = open_source("synthetic:?kind=grasp-lift&trials=1&speed=max&unit=mV")
    assert src.unit == "mV" and src.scale is None


# --------------------------------------------------------------------------- (b) volts and microvolts decide alike


def _serve(rec, **player_kw):
    """The recording published over LSL and run through serve(): (summary, [(row, label, action)])."""
    name = _name()
    player = Player(rec, name=name, speed=0, wait_consumers=5.0, **player_kw)
    with player:
        s, rt = serve_until(GL, f"lsl:name={name}&timeout=5", lambda rt: rt.source.counters.samples >= rec.n_samples)
    assert rt.source.counters.samples == rec.n_samples
    rows = player.rows_at([f[0] for f in s.fired]) if s.fired else []
    return s, rt, [(int(r), label, action) for r, (_, label, action, _) in zip(rows, s.fired)]


def test_the_same_recording_in_volts_and_in_microvolts_gives_the_same_decisions(rec, caplog):
    with caplog.at_level(logging.INFO, logger="edge"):
        s_v, rt_v, fired_v = _serve(rec, unit="0", scale=1e-6)  # as mne-lsl's player: MNE exponent, volts
    assert "values × 1e+06 to uV" in caplog.text
    np.testing.assert_array_equal(rt_v.source.factors, np.full(32, 1e6))
    s_uv, rt_uv, fired_uv = _serve(rec)  # "microvolts", the player's default for EEG
    assert rt_uv.source.factors is None  # nothing to convert: the hot path does nothing more
    assert s_v.windows == s_uv.windows > 100
    assert fired_v, "no decision: the comparison would prove nothing"
    assert all(row >= 0 for row, _, _ in fired_v)
    assert fired_v == fired_uv
    assert s_v.faults == s_uv.faults == {}


def test_a_float32_stream_in_millivolts_is_scaled_in_the_copy(rec, gl):
    name = _name()
    with Player(rec, name=name, speed=0, wait_consumers=5.0, unit="mV"), \
            open_source(f"lsl:name={name}&timeout=5") as src:
        assert src.units == ["mV"] * 32 and src.channel_types == ["EEG"] * 32
        prepare_source(src, gl)
        got, deadline = [], time.monotonic() + 5
        while sum(len(c) for c in got) < 500 and time.monotonic() < deadline:
            c = src.read(0.05)
            if c is not None:
                got.append(c.samples.copy())
    x = np.concatenate(got)
    np.testing.assert_array_equal(x, rec.samples[:len(x)].astype(np.float32).astype(np.float64) * 1e3)


# --------------------------------------------------------------------------- (c) no unit declared


class _Arm:
    """Records every call: a refused source must leave it untouched."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *a, **k: self.calls.append(name)


def test_no_unit_and_volts_range_data_is_refused_before_any_command(rec, gl):
    name = _name()
    arm = _Arm()
    with Player(rec, name=name, speed=0, wait_consumers=5.0, unit=None, scale=1e-6), \
            open_source(f"lsl:name={name}&timeout=5") as src:
        assert src.units == [None] * 32
        t0 = time.monotonic()
        with pytest.raises(SourceError) as info:
            Runtime(gl, src, arm)
        assert time.monotonic() - t0 < 2.0
    msg = str(info.value)
    assert "\n" not in msg and "declares no unit" in msg and "looks like V" in msg
    assert f"lsl:name={name}&unit=V" in msg and "scale=" in msg
    assert arm.calls == []


def test_no_unit_and_microvolt_data_runs_and_loses_no_sample(rec, gl):
    name = _name()
    with Player(rec, name=name, speed=0, wait_consumers=5.0, unit=None), \
            open_source(f"lsl:name={name}&timeout=5") as src:
        rt = Runtime(gl, src, None, RuntimeConfig(budget_ms=60_000, stream_speed=0))  # published at once: not paced
        assert src._pending[0].shape[0] >= 500  # the first second (or more), read for the check ...
        at_end = {}

        def stop_at_the_end():
            _wait(lambda: src.counters.samples >= rec.n_samples, pause=0.05)
            at_end.update(rt.summary.faults, safe=rt.summary.safe_state_entries)
            rt.stop()

        threading.Thread(target=stop_at_the_end, daemon=True).start()
        s = rt.run(max_seconds=10)
    assert src.counters.samples == rec.n_samples  # ... and delivered: nothing lost
    assert s.windows + s.dropped_windows > 100  # (published at once: stale windows dropped)
    assert at_end == {"safe": 0}  # no stall or fault while the check held the data


def test_replay_without_unit_is_checked_and_unit_V_converts(rec, gl):
    volts = dataclasses.replace(rec, samples=rec.samples * 1e-6)
    with pytest.raises(SourceError, match=r"looks like V: add unit=V .*replay:.*\?unit=V"):
        Runtime(gl, ReplaySource(volts, speed=0), None)
    src = ReplaySource(volts, speed=0, unit="V")
    prepare_source(src, gl)
    np.testing.assert_allclose(src.read().samples, rec.samples[:10], rtol=1e-12)


# --------------------------------------------------------------------------- (d) non-signal streams


@pytest.mark.parametrize("stype, match", [("Markers", "type 'Markers'"), ("ACC", "type 'ACC'")])
def test_a_marker_or_accelerometer_stream_picked_by_mistake_is_refused(rec, gl, stype, match):
    name = _name()
    with Player(rec, name=name, stype=stype, speed=0, wait_consumers=5.0), \
            open_source(f"lsl:name={name}&timeout=5") as src, \
            pytest.raises(SourceError, match=f"{match}.*carries no EEG/EMG.*doctor --source"):
        Runtime(gl, src, None)


def test_a_string_marker_outlet_is_refused():
    name = _name()
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "Markers", 1, 0, pylsl.cf_string, name))
    with pytest.raises(SourceError, match="carries strings"):
        open_source(f"lsl:name={name}&timeout=3")
    del outlet


def test_channel_types_only_the_bundle_channels_matter():
    eeg = ["Fp1", "Fp2", "Cz"]
    mixed = _source(eeg + ["TRIG"], types=["EEG"] * 3 + ["trigger"], units=["uV"] * 3 + [None], stream_type="")
    plan = plan_units(mixed, _bundle(eeg))
    assert plan.idx.tolist() == [0, 1, 2] and plan.factors is None and plan.unchecked == []
    assert plan_units(_source(eeg, types=[None, None, "trigger"]), _bundle(eeg[:2])).idx.tolist() == [0, 1]
    with pytest.raises(SourceError, match=r"declares only non-signal channels \(types accelerometer\)"):
        plan_units(_source(eeg, types=["accelerometer"] * 3, stream_type=""), _bundle(eeg))
    with pytest.raises(SourceError, match=r"channel\(s\) 'Cz' \(stim\) that the model needs as non-signal"):
        plan_units(_source(eeg, types=["EEG", "EEG", "stim"]), _bundle(eeg))


def test_units_per_channel_and_the_myo_bundle(rec):
    eeg = ["Fp1", "Fp2", "Cz"]
    plan = plan_units(_source(eeg + ["TRIG"], units=["V", "-6", None, "furlongs"]), _bundle(eeg))
    assert plan.factor == [1e6, 1.0, 1.0] and plan.unchecked == [2]  # TRIG's unit does not matter
    np.testing.assert_array_equal(plan.factors, [1e6, 1, 1, 1])
    with pytest.raises(SourceError, match=r"'Fp2' \(bundle channel Fp2\) declares an unknown unit 'furlongs'"):
        plan_units(_source(eeg, units=["uV", "furlongs", "uV"]), _bundle(eeg))
    with pytest.raises(SourceError, match=r"declares 'counts', which has no conversion to uV.*scale=FACTOR"):
        plan_units(_source(eeg, units=["counts"] * 3), _bundle(eeg))
    assert plan_units(_source(eeg, units=["counts"] * 3, scale=0.5), _bundle(eeg)).factor == [0.5] * 3
    assert plan_units(_source(eeg, units=["uV"] * 3, unit="V"), _bundle(eeg)).factor == [1e6] * 3
    myo = load_bundle(FIXTURE_BUNDLES / "gesture")
    emg = list(myo.channels)
    for units in (["myo"] * 8, [None] * 8, ["raw"] * 8, ["counts"] * 8):
        plan = plan_units(_source(emg, units=units), myo)
        assert plan.factors is None and plan.unchecked == []  # passed through, no amplitude check
    with pytest.raises(SourceError, match="declares 'microvolts', but the bundle's signal is in 'myo'.*unit=myo"):
        plan_units(_source(emg, units=["microvolts"] * 8), myo)


def test_the_player_declares_the_recordings_unit():
    from edge.recordings.myo import MYO_CHANNELS

    eeg = grasp_lift_series(1, 1, n_trials=1)
    assert Player(eeg).units == ["microvolts"] * 32 and Player(eeg).channel_types == ["EEG"] * 32
    emg = dataclasses.replace(eeg, samples=eeg.samples[:, :8], channels=MYO_CHANNELS)
    assert Player(emg).units == ["myo"] * 8
    p = Player(eeg, unit=None, channel_types=["EEG"] * 31 + ["stim"], scale=1e-6)
    assert p.units == [None] * 32 and p.channel_types[-1] == "stim" and p._data.dtype == np.float64
    with pytest.raises(ValueError, match="unit must be"):
        Player(eeg, unit=["uV"])
    with pytest.raises(ValueError, match="scale must be"):
        Player(eeg, scale=0)


# --------------------------------------------------------------------------- (e) aliases


def test_channel_aliases_case_prefix_reference_and_spaces(caplog):
    stream = ["EEG Fp1-REF", "fp2-A1", " Cz ", "EEG-O1-Ref", "C3", "TRIGGER"]
    with caplog.at_level(logging.INFO, logger="edge"):
        idx = channel_map(stream, ["Fp1", "Fp2", "Cz", "O1", "C3"])
        channel_map(stream, ["Fp1", "Fp2", "Cz", "O1", "C3"])
    assert idx.tolist() == [0, 1, 2, 3, 4]
    lines = [r.getMessage() for r in caplog.records if "alias" in r.getMessage()]
    assert len(lines) == 1  # said once
    assert "bundle channel Fp1 ← stream channel 'EEG Fp1-REF'" in lines[0]
    assert "bundle channel Cz ← stream channel ' Cz '" in lines[0] and "C3" not in lines[0]  # C3 is exact
    assert [channel_key(c) for c in ("EEG Fp1-REF", "Fp1-M2", "FP1", "EMG_1", "emg1", "C3-Cz")] == \
        ["fp1", "fp1", "fp1", "1", "emg1", "c3-cz"]  # a bipolar "-Cz" is not a reference suffix


def test_an_exact_name_wins_and_an_ambiguous_alias_lists_the_candidates():
    assert channel_map(["EEG Fp1-REF", "Fp1"], ["Fp1"]).tolist() == [1]
    with pytest.raises(SourceError, match=r"match bundle channel\(s\) by alias: Fp1 \('EEG Fp1-REF', 'FP1-A1'\)"):
        channel_map(["EEG Fp1-REF", "FP1-A1", "Cz"], ["Fp1", "Cz"])


# --------------------------------------------------------------------------- (f) doctor --source


def test_doctor_source_shows_what_the_stream_declares_and_what_will_happen(rec, capsys):
    name = _name()
    labelled = dataclasses.replace(rec, channels=("EEG Fp1-REF",) + tuple(rec.channels[1:]))
    with Player(labelled, name=name, speed=0, wait_consumers=5.0, unit="V", scale=1e-6):
        rc = doctor.main(["--bundle", str(GL), "--source", f"lsl:name={name}&timeout=5"])
    lines = capsys.readouterr().out.splitlines()
    src = next(line for line in lines if line.startswith("OK   source:"))
    assert f"LSL stream '{name}', type 'EEG', source_id 'neurogrip:{name}@" in src and "32 ch @ 500 Hz" in src
    assert "OK   channel 1: label 'EEG Fp1-REF', type EEG, unit 'V' (x1e+06 to uV) → bundle channel Fp1" in lines
    assert "OK   channel 32: label 'PO10', type EEG, unit 'V' (x1e+06 to uV) → bundle channel PO10" in lines
    assert "OK   input: the bundle's 32 channel(s) found by name (1 by alias); values x1e+06 to uV" in lines
    assert rc in (0, 1)  # the machine checks above may fail here; the source lines are what is tested

    name = _name()
    with Player(rec, name=name, speed=0, wait_consumers=5.0, unit=None, scale=1e-6):
        checks = doctor.check_source(f"lsl:name={name}&timeout=5")
    assert checks[1].line() == "OK   channel 1: label 'Fp1', type EEG, unit not declared"
    assert checks[-2].line() == "OK   input: 32 signal channel(s) found by name; values unchanged"
    assert checks[-1].line().startswith("FAIL amplitude:") and f"lsl:name={name}&unit=V" in checks[-1].detail


def test_doctor_source_says_why_a_stream_would_be_refused(rec):
    name = _name()
    with Player(rec, name=name, stype="Markers", speed=0, wait_consumers=5.0, unit="-6"):
        checks = doctor.check_source(f"lsl:name={name}&timeout=5", str(GL))
    assert checks[0].ok and "type 'Markers'" in checks[0].detail
    assert "unit '-6' (MNE exponent: 1e-6 V, x1 to uV)" in checks[1].detail
    assert not checks[-1].ok and checks[-1].name == "input" and "carries no EEG/EMG" in checks[-1].detail
    missing = doctor.check_source(f"lsl:name={_name()}&timeout=0.3")
    assert len(missing) == 1 and not missing[0].ok and "no LSL stream" in missing[0].detail


def test_stream_cli_publishes_in_volts(rec, tmp_path):
    from edge.recordings import write_grasp_lift
    from edge.sources.player import main

    path = write_grasp_lift(dataclasses.replace(rec, samples=rec.samples[:1000], labels=rec.labels[:1000],
                                                segments=np.array([[0, 1000]]), sample_index=np.arange(1000)),
                            tmp_path, compress=False)[0]
    name = _name()
    cli = threading.Thread(target=main, args=([str(path), "--name", name, "--loop", "--duration", "4",
                                               "--unit", "V", "--scale", "1e-6"],), daemon=True)
    cli.start()
    try:
        with open_source(f"lsl:name={name}&timeout=5") as src:
            assert src.units == ["V"] * 32
            chunk = None
            while chunk is None:
                chunk = src.read(0.5)
            assert np.abs(chunk.samples).max() < 1e-2  # volts on the wire
    finally:
        cli.join(10)
