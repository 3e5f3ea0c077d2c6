"""Trusted LSL sources (issue 13): ambiguity refused, the producer pinned, impostors refused after a drop.

Real pylsl outlets on loopback, each test with its own stream name (and, where the selector is the
type, its own type).  An impostor is another outlet with the same name and type but another
source_id: liblsl stamps every stream with the machine's real host name, so a different hostname
cannot be faked with pylsl (docs/security.md says what that leaves open).
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from edge import config
from edge.errors import SourceError, SourceSpecError
from edge.sources import open_source
from edge.sources.lsl_config import SCOPE, SESSION, configure_liblsl, quiet_liblsl

pylsl = pytest.importorskip("pylsl")

REPO = Path(__file__).resolve().parents[2]
FS = 100.0
LEGIT, FAKE = 1.0, 666.0  # what the producer and the impostor send


def _name() -> str:
    return f"ng-trust-{uuid.uuid4().hex[:10]}"


def _outlet(name: str, source_id: str, stype: str = "EEG", n_ch: int = 2):
    info = pylsl.StreamInfo(name, stype, n_ch, FS, pylsl.cf_float32, source_id)
    info.set_channel_labels([f"C{i}" for i in range(n_ch)])
    info.set_channel_units("microvolts")
    return pylsl.StreamOutlet(info)


def _push(outlet, value: float, n: int = 5) -> None:
    outlet.push_chunk(np.full((n, outlet.get_info().channel_count()), value, np.float32))


def _uid(outlet) -> str:
    return outlet.get_info().uid()


def _drain(src, seconds: float, pushers=(), *, settle: float | None = None):
    """Read for ``seconds`` while each ``(outlet, value)`` keeps sending; the chunks and alarms seen.
    With ``settle``: stop ``settle`` seconds after the first alarm."""
    chunks, alarms, deadline = [], [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        if settle is not None and alarms and deadline - time.monotonic() > settle:
            deadline = time.monotonic() + settle
        for outlet, value in pushers:
            _push(outlet, value)
        chunk = src.read(0.02)
        if chunk is not None:
            chunks.append(chunk.copy())
        alarms += src.take_alarms()
    return chunks, alarms


def _quiet(src, quiet: float = 0.5, limit: float = 5.0):
    """Read, sending nothing, until no chunk has come for ``quiet`` seconds (at most ``limit``): what
    liblsl still holds of earlier pushes arrives late on a loaded machine; the chunks read."""
    chunks, last, deadline = [], time.monotonic(), time.monotonic() + limit
    while time.monotonic() - last < quiet and time.monotonic() < deadline:
        chunk = src.read(0.02)
        if chunk is not None:
            chunks.append(chunk.copy())
            last = time.monotonic()
    return chunks


def _values(chunks) -> set[float]:
    return set(np.unique(np.concatenate([c.samples for c in chunks]))) if chunks else set()


def test_two_streams_matching_at_start_are_refused_with_both_listed_and_how_to_pin_one():
    name, stype = _name(), f"EEG-{uuid.uuid4().hex[:6]}"
    a, b = _outlet(name, f"amp-{name}", stype), _outlet(name, f"other-{name}", stype)
    for spec in (f"lsl:name={name}", f"lsl:type={stype}"):  # same name, or same type (the old unit default)
        t0 = time.monotonic()
        with pytest.raises(SourceError) as info:
            open_source(spec)
        assert time.monotonic() - t0 < 5.0
        msg = str(info.value)
        assert msg.startswith("2 LSL streams match") and "\n" not in msg
        for outlet, sid in ((a, f"amp-{name}"), (b, f"other-{name}")):
            assert f"source_id {sid!r}" in msg and _uid(outlet) in msg
        assert f"hostname {socket.gethostname()!r}" in msg and f"type {stype!r}" in msg
        for sid in (f"amp-{name}", f"other-{name}"):  # each with its own pin; none proposed as "yours"
            assert f"pinned by --source 'lsl:name={name}&source_id={sid}&hostname=localhost'" in msg
        assert "e.g." not in msg and "pin the one you started" in msg and "docs/security.md" in msg


def test_copies_that_no_spec_tells_apart_are_listed_as_such():
    """The review: streams were listed by host name, and the first was the one the message told the user
    to pin, so a copy from a host whose name sorts first was proposed.  Identical copies get no pin."""
    name = _name()
    a, b = _outlet(name, f"amp-{name}"), _outlet(name, f"amp-{name}")  # same name, source_id, host
    with pytest.raises(SourceError) as info:
        open_source(f"lsl:name={name}")
    msg = str(info.value)
    assert msg.count("which no spec tells apart") == 2 and "pinned by" not in msg
    assert _uid(a) in msg and _uid(b) in msg


def test_a_pinned_spec_picks_its_producer_and_only_its_samples_arrive(caplog):
    name = _name()
    legit, other = _outlet(name, f"amp-{name}"), _outlet(name, f"other-{name}")
    spec = f"lsl:name={name}&source_id=amp-{name}&hostname=localhost"  # localhost: this machine's name
    with caplog.at_level(logging.WARNING, logger="edge.sources"), open_source(spec) as src:
        assert src.identity.uid == _uid(legit) and src.source_id == f"amp-{name}"
        assert src.hostname == socket.gethostname()
        assert legit.wait_for_consumers(5.0)
        chunks, alarms = _drain(src, 0.5, [(legit, LEGIT), (other, FAKE)])
    assert chunks and _values(chunks) == {LEGIT} and alarms == []
    assert "does not pin" not in caplog.text  # name, source_id and hostname: pinned, nothing to warn about
    with pytest.raises(SourceError, match="no LSL stream with .*hostname='elsewhere.invalid'"):
        open_source(f"lsl:name={name}&source_id=amp-{name}&hostname=elsewhere.invalid&timeout=0.5")


def test_after_a_drop_an_impostor_is_refused_and_alarmed_and_the_producer_is_taken_back(caplog):
    name = _name()
    legit = _outlet(name, f"amp-{name}")
    with caplog.at_level(logging.WARNING, logger="edge.sources"):
        src = open_source(f"lsl:name={name}")  # unpinned: allowed, with a warning saying how to pin
    assert "does not pin the producer" in caplog.text and f"source_id=amp-{name}" in caplog.text
    try:
        assert legit.wait_for_consumers(5.0)
        before, _ = _drain(src, 0.3, [(legit, LEGIT)])
        assert _values(before) == {LEGIT}
        first_uid = _uid(legit)
        del legit  # the producer goes away...
        gc.collect()
        impostor = _outlet(name, f"fake-{name}")  # ...and another with its name and type appears
        during, alarms = _drain(src, 10.0, [(impostor, FAKE)], settle=1.5)
        assert FAKE not in _values(during)  # not one sample of the impostor
        assert [a.kind for a in alarms] == ["impostor"], alarms  # once, not once per search
        assert f"source_id 'fake-{name}'" in alarms[0].detail and _uid(impostor) in alarms[0].detail
        assert "source_id 'fake-" in caplog.text and "refused" in caplog.text
        assert src.stalled and src.identity.uid == first_uid and src.alarms == 1

        legit = _outlet(name, f"amp-{name}")  # the producer restarts: same source_id and host, new uid
        back, alarms = [], []
        deadline = time.monotonic() + 10.0
        while not back and time.monotonic() < deadline:
            more, new_alarms = _drain(src, 0.2, [(legit, LEGIT), (impostor, FAKE)])
            back += more
            alarms += new_alarms
        assert back, "the restarted producer was not taken back within 10 s"
        after, _ = _drain(src, 0.5, [(legit, LEGIT), (impostor, FAKE)])
        assert _values(back + after) == {LEGIT} and back[0].discontinuity
        assert src.identity.uid == _uid(legit) != first_uid and not src.stalled
        # the impostor was already reported; the new outlet is reported once, as a takeover
        assert [a.kind for a in alarms] == ["takeover"] and _uid(legit) in alarms[0].detail
        assert "its producer restarted" in caplog.text and src.alarms == 1  # no refusal counted
    finally:
        src.close()


def test_clones_of_the_producer_are_ambiguous_and_a_changed_producer_is_refused():
    name = _name()
    legit = _outlet(name, f"amp-{name}")
    with open_source(f"lsl:name={name}&source_id=amp-{name}&hostname=localhost") as src:
        assert legit.wait_for_consumers(5.0)
        assert _drain(src, 0.3, [(legit, LEGIT)])[0]
        del legit
        gc.collect()
        # Two streams now claim the producer's identity: neither is taken.
        clone1, clone2 = _outlet(name, f"amp-{name}"), _outlet(name, f"amp-{name}")
        chunks, alarms = _drain(src, 10.0, [(clone1, FAKE), (clone2, FAKE)], settle=1.5)
        assert FAKE not in _values(chunks) and [a.kind for a in alarms] == ["ambiguous"]
        assert _uid(clone1) in alarms[0].detail and _uid(clone2) in alarms[0].detail
        del clone1, clone2
        gc.collect()
        # Same source_id and host, but another channel count: not the producer that was pinned.
        wider = _outlet(name, f"amp-{name}", n_ch=3)
        chunks, alarms = _drain(src, 10.0, [(wider, FAKE)], settle=0.5)
        assert chunks == [] and [a.kind for a in alarms] == ["impostor"]
        assert "channel_count 3 instead of 2" in alarms[0].detail


def test_a_silent_producer_is_checked_and_kept(monkeypatch, caplog):
    monkeypatch.setattr(config, "LSL_SILENT_CHECK_S", 0.3)
    name = _name()
    legit = _outlet(name, f"amp-{name}")
    with caplog.at_level(logging.INFO, logger="edge.sources"), \
            open_source(f"lsl:name={name}&source_id=amp-{name}&hostname=localhost") as src:
        assert legit.wait_for_consumers(5.0)
        assert _drain(src, 0.3, [(legit, LEGIT)])[0]
        uid = src.identity.uid
        # What was pushed may still be on its way: the silence starts once it has all arrived.
        assert _values(_quiet(src)) <= {LEGIT}
        chunks, alarms = _drain(src, 2.0)  # the producer says nothing for a while
        assert chunks == [] and alarms == [] and "is silent; looking for its producer" in caplog.text
        chunks, _ = _drain(src, 0.5, [(legit, LEGIT)])
        assert _values(chunks) == {LEGIT} and src.identity.uid == uid  # the same inlet, never replaced


def test_isolation_options_are_checked_and_fixed_for_the_process():
    with pytest.raises(SourceSpecError, match="scope='planet' .*machine"):
        open_source("lsl:name=x&scope=planet")
    with pytest.raises(SourceSpecError, match="session=\"a'b\" must be"):
        open_source("lsl:name=x&session=a'b")
    in_force = configure_liblsl()
    assert set(in_force) == {"ResolveScope", "SessionID"}
    other = "link" if in_force["ResolveScope"] != "link" else "machine"
    with pytest.raises(SourceSpecError, match="reads its configuration once"):
        open_source(f"lsl:name=x&scope={other}")


def test_isolation_settings_replace_the_users_own_without_duplicates(tmp_path, monkeypatch):
    monkeypatch.delenv("LSLAPICFG", raising=False)
    monkeypatch.delenv("NEUROGRIP_VERBOSE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lsl_api.cfg").write_text("[multicast]\nResolveScope = site\n[lab]\nSessionID = beta\n"
                                          "KnownPeers = {10.0.0.2}\n")
    path = quiet_liblsl({SCOPE: "machine", SESSION: "alpha"})
    text = path.read_text()
    assert text.count("ResolveScope") == 1 and text.count("SessionID") == 1  # liblsl refuses a key twice
    assert "ResolveScope = machine" in text and "SessionID = alpha" in text and "KnownPeers = {10.0.0.2}" in text
    assert text.endswith("[log]\nlevel = -1\n")


PRODUCER = textwrap.dedent("""
    import sys, pylsl
    info = pylsl.StreamInfo(sys.argv[1], "EEG", 2, 100.0, pylsl.cf_float32, "amp-" + sys.argv[1])
    outlet = pylsl.StreamOutlet(info)
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin
""")
CONSUMER = textwrap.dedent("""
    import sys
    from edge.errors import SourceError
    from edge.sources import open_source
    from edge.sources.lsl_config import configure_liblsl
    try:
        with open_source(sys.argv[1]) as src:
            print("found", src.source_id, configure_liblsl())
    except SourceError as exc:
        print("error", exc)
""")


def test_liblsl_session_and_scope_keep_other_set_ups_apart(tmp_path):
    """SessionID: a stream of another session is not found at all; ResolveScope=machine finds this
    machine's.  Each end in a process of its own, as liblsl reads its configuration once."""
    name = _name()
    (tmp_path / "alpha.cfg").write_text("[lab]\nSessionID = alpha\n[log]\nlevel = -2\n")
    (tmp_path / "lsl_api.cfg").write_text("[lab]\nSessionID = beta\n[multicast]\nResolveScope = site\n")
    env = {k: v for k, v in os.environ.items() if k not in ("LSLAPICFG", "NEUROGRIP_VERBOSE")}
    env["PYTHONPATH"] = str(REPO)
    producer = subprocess.Popen([sys.executable, "-c", PRODUCER, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, env={**env, "LSLAPICFG": str(tmp_path / "alpha.cfg")})
    try:
        assert producer.stdout.readline().strip() == "ready"

        def consume(options: str) -> str:
            out = subprocess.run([sys.executable, "-c", CONSUMER, f"lsl:name={name}&timeout=1.5{options}"],
                                 capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60, check=False)
            assert out.returncode == 0, out.stderr[-2000:]
            return out.stdout.strip()

        # The user's own lsl_api.cfg (here: SessionID beta) applies: the alpha stream is not seen.
        assert consume("").startswith(f"error no LSL stream with name='{name}'")
        found = consume("&session=alpha&scope=machine")  # set over the user's file, without duplicates
        assert found.startswith(f"found amp-{name}"), found
        assert "'ResolveScope': 'machine'" in found and "'SessionID': 'alpha'" in found
    finally:
        producer.stdin.close()
        producer.wait(timeout=10)
