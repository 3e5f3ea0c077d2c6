"""EEG sources: replay and synthetic chunking, pacing, gaps, stalls, spec errors, channel mapping.

LSL sources are exercised against a real loopback stream in ``test_player.py``.
"""

import inspect
import sys
import time
import uuid
from typing import ClassVar

import numpy as np
import pytest

from edge.errors import EdgeError, RecordingError
from edge.recordings import GRASP_LIFT_CHANNELS, GRASP_LIFT_EVENTS, MUSE_COLUMNS, Recording, write_grasp_lift
from edge.recordings.synthetic import grasp_lift_series
from edge.sources import (
    Chunk,
    ReplaySource,
    SourceError,
    SourceSpecError,
    SyntheticSource,
    channel_map,
    import_pylsl,
    open_source,
    parse_spec,
)
from edge.sources.base import option_mismatches
from edge.sources.spec import SCHEMES

N = 1500
GAP_AT = 733  # deliberately not a multiple of the chunk size
GAP = 250


@pytest.fixture(scope="module")
def base_recording():
    return grasp_lift_series(1, 1, n_trials=1)


def _recording(base, n=N, gap_at=None, gap=GAP) -> Recording:
    index = np.arange(n, dtype=np.int64)
    segments = [[0, n]]
    if gap_at is not None:
        index[gap_at:] += gap
        segments = [[0, gap_at], [gap_at, n]]
    return Recording(samples=base.samples[:n].copy(), channels=base.channels, fs=base.fs,
                     segments=np.array(segments, dtype=np.int64), sample_index=index,
                     labels=base.labels[:n].copy(), label_names=base.label_names, subject="1", session="1")


@pytest.fixture(scope="module")
def gapped_file(base_recording, tmp_path_factory):
    rec = _recording(base_recording, gap_at=GAP_AT)
    data_path, _ = write_grasp_lift(rec, tmp_path_factory.mktemp("gapped"), compress=False)
    return data_path, rec


def _drain(source, timeout=0.0, limit=10.0):
    chunks, deadline = [], time.monotonic() + limit
    while not source.exhausted and time.monotonic() < deadline:
        chunk = source.read(timeout)
        if chunk is not None:
            chunks.append(chunk.copy())
    return chunks


# --------------------------------------------------------------------------- replay


def test_replay_chunks_concatenate_to_the_file_with_a_discontinuity_at_the_gap(gapped_file):
    path, rec = gapped_file
    with open_source(f"replay:{path}?speed=max") as src:
        assert isinstance(src, ReplaySource) and src.kind == "replay"
        assert src.channels == list(GRASP_LIFT_CHANNELS) and src.fs == 500.0 and src.chunk == 10
        assert src.label_names == GRASP_LIFT_EVENTS
        chunks = _drain(src)
        assert src.exhausted and src.read(0.0) is None and src.read(0.05) is None

    samples = np.concatenate([c.samples for c in chunks])
    np.testing.assert_array_equal(samples, rec.samples)
    assert samples.dtype == np.float64
    np.testing.assert_array_equal(np.concatenate([c.labels for c in chunks]), rec.labels)
    # Recording time: Kaggle ids / fs, so the gap shows in the timestamps too.
    np.testing.assert_allclose(np.concatenate([c.timestamps for c in chunks]), rec.sample_index / 500.0)
    firsts = [c.first_index for c in chunks]
    assert firsts == list(np.cumsum([0] + [c.n for c in chunks[:-1]]))
    flagged = [c.first_index for c in chunks if c.discontinuity]
    assert flagged == [GAP_AT]  # the chunk that starts after the gap, and no other
    assert all(c.n <= 10 for c in chunks)
    # No chunk straddles the gap: the chunk before it ends exactly there (a short one).
    before = next(c for c in chunks if c.first_index + c.n == GAP_AT)
    assert before.n == GAP_AT % 10
    assert src.counters.samples == N and src.counters.chunks == len(chunks)
    assert src.counters.discontinuities == 1 and src.counters.dropped == 0


def test_replay_chunk_arrays_are_read_only_views_until_copied(base_recording):
    rec = _recording(base_recording, n=40)
    src = ReplaySource(rec, speed=0)
    chunk = src.read()
    assert isinstance(chunk, Chunk) and chunk.n == 10 and chunk.t_received <= time.monotonic()
    for array in (chunk.samples, chunk.timestamps, chunk.labels):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1
    kept = chunk.copy()
    kept.samples[0, 0] = rec.samples[0, 0] + 1.0  # a copy is the caller's own
    assert chunk.samples[0, 0] == rec.samples[0, 0] == base_recording.samples[0, 0]


def test_replay_at_speed_1_is_paced_in_real_time(base_recording):
    rec = _recording(base_recording, n=150)  # 0.3 s
    src = ReplaySource(rec, speed=1)
    t0 = time.monotonic()
    first = src.read(0.1)
    assert first is not None and first.n == 10
    assert src.read(0.0) is None  # the next 20 ms have not happened yet
    chunks = [first] + _drain(src, timeout=0.1, limit=3.0)
    elapsed = time.monotonic() - t0
    assert sum(c.n for c in chunks) == 150
    assert 0.25 <= elapsed < 0.6, elapsed
    # Each chunk is handed out no earlier than its last sample's time.
    for c in chunks:
        assert c.t_received - t0 >= (c.first_index + c.n) / 500.0 - 0.02 - 0.005


def test_replay_at_speed_2_takes_half_the_time(base_recording):
    src = ReplaySource(_recording(base_recording, n=150), speed=2.0)
    t0 = time.monotonic()
    _drain(src, timeout=0.1, limit=3.0)
    assert 0.12 <= time.monotonic() - t0 < 0.4


def test_replay_at_max_speed_is_fast(base_recording):
    src = ReplaySource(base_recording, speed="max", chunk=10)  # ~9 s of EEG
    t0 = time.perf_counter()
    n = sum(c.n for c in _drain(src))
    elapsed = time.perf_counter() - t0
    assert n == base_recording.n_samples > 4000
    assert elapsed < n / 500.0 / 50  # at least 50x real time, even on a loaded machine


def test_replay_stall_is_flagged_and_cleared_without_raising(base_recording):
    # 100 ms chunks at real time: between chunks the source is stalled for a 20 ms timeout.
    src = ReplaySource(_recording(base_recording, n=100), speed=1, chunk=50, stall_timeout=0.02)
    assert src.read(0.2) is not None
    assert not src.stalled
    deadline = time.monotonic() + 1.0
    while not src.stalled and time.monotonic() < deadline:
        assert src.read(0.005) is None
    assert src.stalled and src.seconds_since_last_sample() > 0.02
    assert src.counters.stalls == 1
    assert src.read(0.2) is not None and not src.stalled and src.exhausted
    assert src.counters.stalls == 1


def test_replay_default_chunk_is_20_ms(tmp_path):
    from edge.recordings import write_muse
    from edge.recordings.synthetic import muse_recording

    path = write_muse(muse_recording(duration_s=1.0), tmp_path / "subjecta-relaxed-1.csv")
    src = open_source(f"replay:{path}?speed=max")
    assert src.chunk == 5 and src.fs == 256.0 and src.channels == list(MUSE_COLUMNS[1:])
    chunk = src.read()
    assert chunk.labels is None and chunk.timestamps[0] > 1e9  # the file's own timestamps


def test_replay_missing_file_raises_recording_error(tmp_path):
    with pytest.raises(RecordingError, match="file not found"):
        open_source(f"replay:{tmp_path / 'subj1_series1_data.csv'}")


# --------------------------------------------------------------------------- synthetic


def test_synthetic_grasp_lift_source_replays_the_generator():
    src = open_source("synthetic:?kind=grasp-lift&subject=2&series=3&seed=1&trials=1&speed=max")
    assert isinstance(src, SyntheticSource) and src.kind == "synthetic"
    expected = grasp_lift_series(2, 3, seed=1, n_trials=1)
    chunks = _drain(src)
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), expected.samples)
    np.testing.assert_array_equal(np.concatenate([c.labels for c in chunks]), expected.labels)
    assert not any(c.discontinuity for c in chunks)


def test_synthetic_muse_source_and_keyword_defaults():
    src = open_source("synthetic:muse?state=relaxed&duration=0.5", speed=0, stall_timeout=0.2)
    assert src.fs == 256.0 and src.channels == list(MUSE_COLUMNS[1:]) and src.speed == 0
    assert src.stall_timeout == 0.2 and src.recording.state == "relaxed"
    assert sum(c.n for c in _drain(src)) == 128


# --------------------------------------------------------------------------- specs


def test_parse_spec_forms():
    assert parse_spec("lsl:name=X&type=EEG") == ("lsl", "", {"name": "X", "type": "EEG"})
    assert parse_spec("LSL:?type=EEG") == ("lsl", "", {"type": "EEG"})
    assert parse_spec("replay:a/b.csv?speed=1&chunk=5") == ("replay", "a/b.csv", {"speed": "1", "chunk": "5"})
    assert parse_spec("synthetic:") == ("synthetic", "", {"kind": "grasp-lift"})
    assert parse_spec("synthetic:kind=muse&seed=2")[2] == {"kind": "muse", "seed": "2"}


@pytest.mark.parametrize("spec, fix", [
    ("eeg:foo", "scheme must be one of lsl, replay, synthetic"),
    ("subj1_series1_data.csv", "scheme must be one of"),
    ("replay:", "write replay:PATH"),
    ("replay:x.csv?speed=fast", "speed=max"),
    ("replay:x.csv?speed=-1", "speed must be >= 0"),
    ("replay:x.csv?sped=1", "allowed: speed, chunk, stall_timeout"),
    ("replay:x.csv?speed", "key=value pairs"),
    ("replay:x.csv?chunk=0", "chunk must be >= 1"),
    ("replay:x.csv?chunk=2.5", "chunk='2.5'.*whole number"),
    ("replay:x.csv?speed=1&speed=2", "given twice"),
    ("replay:x.csv?speed=", "write speed=VALUE"),
    ("lsl:", "at least one of name, type, source_id"),
    ("lsl:name=x&timeout=soon", "timeout='soon'.*not a number"),
    ("lsl:name=x&timeout=0", "timeout must be > 0"),
    ("lsl:nme=x", "allowed: name, type, source_id"),
    ("synthetic:?kind=eeg", "kind=grasp-lift or kind=muse"),
    ("synthetic:?kind=muse&trials=3", "does not apply to synthetic kind 'muse'"),
    ("synthetic:muse?kind=grasp-lift", "two kinds"),
    ("synthetic:?stall_timeout=0", "stall_timeout must be > 0"),
])
def test_bad_specs_raise_a_typed_error_naming_the_fix(spec, fix):
    with pytest.raises(SourceSpecError, match=fix) as info:
        open_source(spec)
    assert isinstance(info.value, SourceError) and isinstance(info.value, EdgeError)
    assert isinstance(info.value, ValueError)


def _spec_with(scheme, key):
    if scheme == "lsl":
        return f"lsl:name=x&{key}=1" if key != "name" else "lsl:name=x"
    if scheme == "replay":
        return f"replay:x.csv?{key}=1"
    if scheme == "brainflow":
        return f"brainflow:board=synthetic&{key}=1" if key != "board" else "brainflow:board=synthetic"
    if scheme == "arm":
        return f"arm:/dev/ttyACM0?{key}=1"
    kind = next((k for k, opts in SyntheticSource.KINDS.items() if key in opts), "grasp-lift")
    return f"synthetic:?kind={kind}" + (f"&{key}=1" if key != "kind" else "")


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_every_constructor_keyword_is_a_spec_option_or_excluded_with_a_reason(scheme):
    cls = SCHEMES[scheme]
    assert option_mismatches(cls) == []
    keywords = [n for n, p in inspect.signature(cls.spec_factory()).parameters.items()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    assert keywords
    for key in keywords:
        if key in cls.NOT_IN_SPEC:
            assert cls.NOT_IN_SPEC[key].strip(), key
            continue
        assert key in parse_spec(_spec_with(scheme, key))[2], key


def test_a_source_whose_options_disagree_with_its_constructor_is_refused():
    with pytest.raises(TypeError, match="'max_buflen'.*neither in OPTIONS"):
        class _Bad(ReplaySource):
            OPTIONS: ClassVar[dict] = {"speed": str}

            def __init__(self, recording, speed=1.0, max_buflen=10):
                super().__init__(recording, speed)


def test_lsl_spec_sets_max_buflen():
    pylsl = import_pylsl()
    name = f"buflen-{uuid.uuid4().hex[:8]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 2, 500.0, pylsl.cf_float32, name))
    with open_source(f"lsl:name={name}&max_buflen=5&timeout=5") as src:
        assert src.max_buflen == 5 and src.channels == ["ch0", "ch1"]
    del outlet
    with pytest.raises(SourceSpecError, match="max_buflen='x'.*whole number"):
        open_source("lsl:name=x&max_buflen=x")
    with pytest.raises(SourceSpecError, match="max_buflen must be an int >= 1"):
        open_source("lsl:name=x&max_buflen=0")


def test_non_string_spec_is_a_type_error():
    with pytest.raises(TypeError, match="spec must be str"):
        open_source(42)


def test_no_lsl_stream_found_names_what_was_searched_and_the_fix():
    name = f"absent-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()
    with pytest.raises(SourceError) as info:
        open_source(f"lsl:name={name}&type=EEG&timeout=0.3")
    assert time.monotonic() - t0 < 2.0
    msg = str(info.value)
    assert f"name='{name}' and type='EEG'" in msg and "0.3 s" in msg
    assert "neurogrip stream FILE" in msg and "headset app" in msg


def test_missing_pylsl_module_names_the_install_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "pylsl", None)  # makes `import pylsl` fail
    with pytest.raises(SourceError, match=r"pip install 'neurogrip\[edge\]'.*PYLSL_LIB"):
        import_pylsl()


def test_missing_liblsl_names_the_raspberry_pi_fix(monkeypatch, tmp_path):
    # A stand-in package that fails the way pylsl does when it finds no liblsl.
    (tmp_path / "pylsl").mkdir()
    (tmp_path / "pylsl" / "__init__.py").write_text(
        "raise RuntimeError('LSL binary library file was not found.\\n more')\n")
    for mod in [m for m in sys.modules if m == "pylsl" or m.startswith("pylsl.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SourceError) as info:
        open_source("lsl:type=EEG")
    msg = str(info.value)
    assert "LSL binary library file was not found" in msg and "more" not in msg
    assert "64-bit Raspberry Pi" in msg and "liblsl releases .deb" in msg and "PYLSL_LIB" in msg


# --------------------------------------------------------------------------- channel_map


def test_channel_map_reorders_by_name():
    idx = channel_map(["TP9", "AF7", "AF8", "TP10", "Right AUX"], ["AF8", "TP9", "TP10"])
    assert idx.tolist() == [2, 0, 3]
    data = np.arange(10).reshape(2, 5)
    assert data[:, idx].tolist() == [[2, 0, 3], [7, 5, 8]]


def test_channel_map_names_missing_and_present_channels():
    with pytest.raises(SourceError) as info:
        channel_map(["ch0", "ch1", "Cz"], ["C3", "Cz", "C4"])
    msg = str(info.value)
    assert "C3, C4" in msg and "ch0, ch1, Cz" in msg and "Cz," not in msg.split("lacks")[1].split(";")[0]


def test_channel_map_refuses_an_ambiguous_wanted_channel():
    assert channel_map(["a", "a", "b"], ["b"]).tolist() == [2]
    with pytest.raises(SourceError, match="more than once"):
        channel_map(["a", "a", "b"], ["a"])
