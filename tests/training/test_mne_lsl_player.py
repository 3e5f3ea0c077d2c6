"""A real recording streamed by an MNE-based LSL player (mne-lsl's ``PlayerLSL``), once in volts
(MNE's internal unit, the player's default: unit exponent ``0``) and once in microvolts
(``set_channel_units``: data × 1e6, exponent ``-6``): neurogrip reads the declared unit, converts,
and decides the same on both (issue 17).

This lives with the training tests because MNE needs numpy ≥ 2.1, which only the workstation
environment has (the edge environment pins numpy < 2 for tflite-runtime); the runtime under test
is the edge's own, with ai-edge-litert.  The same metadata written by pylsl, as such players write
it, is tested in the edge environment (tests/edge/test_stream_units.py).
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.recordings import Recording, read_recording
from edge.sources.player import Player
from tests.conftest import FIXTURE_BUNDLES, SHARED_DATA, serve_until

mne = pytest.importorskip("mne")
mne_lsl_player = pytest.importorskip("mne_lsl.player")

GL = FIXTURE_BUNDLES / "grasp-lift"
REAL = SHARED_DATA / "grasp_lift_segments" / "subj1_series1_data.csv.gz"
N = 3000  # 6 s at 500 Hz: the player streams in real time


@pytest.fixture(scope="module")
def raw_volts():
    """Real EEG (µV in the Kaggle file) as an MNE Raw, which holds volts."""
    if not REAL.is_file():
        pytest.skip(f"{REAL} is not here (../shared/data)")
    rec = read_recording(REAL)
    bundle = load_bundle(GL)
    cols = [rec.channels.index(c) for c in bundle.channels]
    x = rec.samples[:N, cols] * 1e-6
    info = mne.create_info(list(bundle.channels), 500.0, "eeg")
    mne.set_log_level("WARNING")
    return mne.io.RawArray(x.T, info, verbose=False)


def _serve(spec: str, done) -> tuple:
    """serve() on an LSL stream until ``done()``: (summary, the source's factors, samples read,
    [(seconds after the first decision, label, action)])."""
    s, rt = serve_until(GL, spec, done, settle_s=0.5)
    fired = list(s.fired)
    t0 = fired[0][0] if fired else 0.0
    return (s, rt.source.factors, rt.source.counters.samples,
            [(round(t - t0, 3), label, action) for t, label, action, _ in fired])


def _mne_player_run(raw, microvolts: bool):
    """The recording streamed once, in real time, by mne-lsl's player."""
    name = f"ng-mne-{uuid.uuid4().hex[:10]}"
    player = mne_lsl_player.PlayerLSL(raw.copy(), chunk_size=50, n_repeat=1, name=name, source_id=name)
    if microvolts:
        player.set_channel_units({ch: "microvolts" for ch in raw.ch_names})
    player.start()
    try:
        return _serve(f"lsl:name={name}&timeout=10", lambda rt: not player.running)
    finally:
        if player.running:
            player.stop()


def _reference_run(raw, k: int):
    """The last ``k`` samples in microvolts, published by neurogrip's own player, which waits for
    its consumer, so the runtime reads exactly these samples."""
    x = raw.get_data().T[-k:] * 1e6
    rec = Recording(samples=x, channels=tuple(raw.ch_names), fs=500.0, segments=np.array([[0, k]]),
                    sample_index=np.arange(k))
    name = f"ng-ref-{uuid.uuid4().hex[:10]}"
    with Player(rec, name=name, speed=0, wait_consumers=5.0, chunk_size=50):
        return _serve(f"lsl:name={name}&timeout=10", lambda rt: rt.source.counters.samples >= k)


def test_mne_lsl_player_in_volts_and_microvolts_gives_the_same_decisions(raw_volts, caplog):
    """mne-lsl's player does not wait for a consumer: the runtime reads the recording from where it
    connected to its end (``k`` samples, different in each run).  Each run is compared with the same
    ``k`` samples in microvolts from neurogrip's own player, which waits: same windows, same
    decisions, whatever unit the MNE player declared."""
    with caplog.at_level("INFO", logger="edge"):
        s_v, factors_v, k_v, fired_v = _mne_player_run(raw_volts, microvolts=False)
    assert "× 1e+06 to uV" in caplog.text  # the player declared volts (exponent 0) and it was converted
    np.testing.assert_array_equal(factors_v, np.full(32, 1e6))
    s_uv, factors_uv, k_uv, fired_uv = _mne_player_run(raw_volts, microvolts=True)
    assert factors_uv is None  # declared microvolts: nothing to convert
    for s, k, fired in ((s_v, k_v, fired_v), (s_uv, k_uv, fired_uv)):
        assert k > N // 2, f"the runtime read only {k} of {N} samples"
        ref, _, k_ref, fired_ref = _reference_run(raw_volts, k)
        assert k_ref == k and s.windows == ref.windows > 50
        assert fired_ref, "no decision: the comparison would prove nothing"
        assert [f[1:] for f in fired] == [f[1:] for f in fired_ref]
        assert [f[0] for f in fired] == pytest.approx([f[0] for f in fired_ref], abs=2e-3)
        assert s.faults == ref.faults == {}
