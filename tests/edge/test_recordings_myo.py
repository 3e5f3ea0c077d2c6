"""Myo armband EMG reader: the real dataset loads in recorded order, sessions and files split as asked,
replays see gaps only where they are, and every bad file or folder gets one RecordingError."""

from pathlib import Path

import numpy as np
import pytest

from edge.errors import EdgeError, RecordingError
from edge.recordings import (
    GESTURES,
    MAX_FILE_BYTES,
    MYO_CHANNELS,
    MYO_FS,
    N_FILES,
    find_myo_sessions,
    read_myo,
    read_myo_file,
    read_myo_session,
    read_recording,
)
from edge.recordings import myo as myo_module
from edge.sources import ReplaySource, open_source
from tests.conftest import drain


def _myo(shared_data) -> Path:
    root = shared_data / "myo_armband"
    if not root.is_dir():
        pytest.skip(f"Myo armband data not found at {root}")
    return root


def _shared_sessions():
    from tests.conftest import SHARED_DATA

    root = SHARED_DATA / "myo_armband"
    return find_myo_sessions(root) if root.is_dir() else []


# --------------------------------------------------------------------------- real data


def test_constants():
    assert MYO_FS == 200.0 and MYO_CHANNELS == tuple(f"emg{i}" for i in range(1, 9))
    assert GESTURES[0] == "neutral" and GESTURES[-1] == "hand_open" and len(GESTURES) == 7 and N_FILES == 28


@pytest.mark.parametrize("folder", _shared_sessions(), ids=lambda p: f"{p.parent.parent.name}-{p.parent.name}-{p.name}")
def test_every_shared_session_loads_28_files_of_about_5_s(folder):
    rec = read_myo_session(folder)
    assert rec.samples.shape == (rec.n_samples, 8) and rec.samples.dtype == np.float64
    assert rec.channels == MYO_CHANNELS and rec.fs == 200.0 and rec.label_names == GESTURES
    assert rec.labels.shape == (rec.n_samples, 7) and rec.labels.dtype == np.uint8
    assert np.all(rec.labels.sum(axis=1) == 1)  # one-hot
    assert rec.segments.tolist() == [[0, rec.n_samples]]
    assert 28 * 3.5 * 200 < rec.n_samples < 28 * 5.5 * 200
    assert rec.samples.min() >= -128 and rec.samples.max() <= 127
    assert rec.subject == folder.parent.name and rec.session == folder.name and rec.source == folder


def test_session_is_the_files_in_numeric_order_with_gesture_labels(shared_data):
    folder = _myo(shared_data) / "EvaluationDataset" / "Female0" / "Test0"
    rec = read_myo_session(folder, continuous=False)
    files = [read_myo_file(folder / f"classe_{k}.dat") for k in range(28)]
    bounds = np.cumsum([0] + [len(f) for f in files])
    np.testing.assert_array_equal(rec.samples, np.concatenate(files))
    assert rec.segments.tolist() == np.stack([bounds[:-1], bounds[1:]], axis=1).tolist()
    for k in range(28):
        start, stop = bounds[k], bounds[k + 1]
        assert rec.labels[start:stop, k % 7].all() and rec.labels[start:stop].sum() == stop - start
    # classe_10 comes right after classe_9 (a lexical sort would put it third)
    np.testing.assert_array_equal(rec.samples[bounds[10]:bounds[11]], files[10])
    assert not np.array_equal(rec.samples[bounds[2]:bounds[2] + 5], files[10][:5])
    np.testing.assert_array_equal(rec.sample_index, np.arange(rec.n_samples))
    assert rec.subject == "Female0" and rec.session == "Test0" and rec.state is None


def test_continuous_session_is_one_segment_per_file_session_is_28(shared_data):
    folder = _myo(shared_data) / "EvaluationDataset" / "Male3" / "training0"
    whole, split = read_myo_session(folder), read_myo_session(folder, continuous=False)
    np.testing.assert_array_equal(whole.samples, split.samples)
    assert len(whole.segments) == 1 and len(split.segments) == 28
    assert split.segments[0, 0] == 0 and split.segments[-1, 1] == split.n_samples
    assert np.all(split.segments[1:, 0] == split.segments[:-1, 1])


def test_participant_folder_gives_three_sessions_with_gaps(shared_data):
    participant = _myo(shared_data) / "EvaluationDataset" / "Female0"
    sessions = find_myo_sessions(participant)
    assert [s.name for s in sessions] == ["training0", "Test0", "Test1"]
    rec = read_myo(participant)
    parts = [read_myo_session(s) for s in sessions]
    np.testing.assert_array_equal(rec.samples, np.concatenate([p.samples for p in parts]))
    np.testing.assert_array_equal(rec.labels, np.concatenate([p.labels for p in parts]))
    ends = np.cumsum([p.n_samples for p in parts])
    assert rec.segments.tolist() == [[0, ends[0]], [ends[0], ends[1]], [ends[1], ends[2]]]
    for start, stop in rec.segments:
        assert np.all(np.diff(rec.sample_index[start:stop]) == 1)
    jumps = rec.sample_index[ends[:2]] - rec.sample_index[ends[:2] - 1]
    assert np.all(jumps > 1)
    assert rec.subject == "Female0" and rec.session == "training0+Test0+Test1" and rec.source == participant
    per_file = read_myo(participant, continuous=False)
    assert len(per_file.segments) == 3 * 28 and per_file.n_samples == rec.n_samples


def test_find_sessions_sorts_participants_naturally_and_root_gives_both_halves(shared_data):
    root = _myo(shared_data)
    pre = find_myo_sessions(root / "PreTrainingDataset")
    names = [s.parent.name for s in pre]
    assert all(s.name == "training0" for s in pre) and names[0] == "Female0"
    assert names.index("Male9") + 1 == names.index("Male10") and names.index("Female9") + 1 == names.index("Male0")
    assert find_myo_sessions(root / "EvaluationDataset" / "Male1" / "Test1") == [
        root / "EvaluationDataset" / "Male1" / "Test1"]
    everything = find_myo_sessions(root)
    evaluation = find_myo_sessions(root / "EvaluationDataset")
    assert everything == pre + evaluation and len(evaluation) == 3 * len({s.parent for s in evaluation})


def test_sessions_of_different_participants_have_no_common_subject(shared_data):
    rec = read_myo(_myo(shared_data) / "EvaluationDataset")
    assert rec.subject == "" and rec.session == "training0+Test0+Test1" and len(rec.segments) == 27


def test_replay_of_a_session_has_no_discontinuity_inside(shared_data):
    folder = _myo(shared_data) / "EvaluationDataset" / "Female0" / "Test0"
    with open_source(f"replay:{folder}?speed=max") as src:
        assert src.channels == list(MYO_CHANNELS) and src.fs == 200.0 and src.label_names == GESTURES
        chunks = drain(src)
    rec = read_myo_session(folder)
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), rec.samples)
    np.testing.assert_array_equal(np.concatenate([c.labels for c in chunks]), rec.labels)
    assert not any(c.discontinuity for c in chunks) and src.counters.discontinuities == 0


def test_replay_of_a_participant_has_one_discontinuity_per_session_boundary(shared_data):
    participant = _myo(shared_data) / "EvaluationDataset" / "Male0"
    rec = read_recording(participant)
    src = ReplaySource(participant, speed=0)
    chunks = drain(src)
    assert sum(c.n for c in chunks) == rec.n_samples
    flagged = [c.first_index for c in chunks if c.discontinuity]
    assert flagged == rec.segments[1:, 0].tolist() and len(flagged) == 2
    times = np.concatenate([c.timestamps for c in chunks])
    assert np.all(np.diff(times)[np.asarray(flagged) - 1] > 1.5 / 200)
    # per-file segments: nothing crosses a file boundary either
    split = ReplaySource(read_myo(participant, continuous=False), speed=0)
    drain(split)
    assert split.counters.discontinuities == 3 * 28 - 1


# --------------------------------------------------------------------------- small files


def _write(path: Path, values) -> Path:
    path.write_bytes(np.asarray(values, dtype="<i2").tobytes())
    return path


def _session(folder: Path, ks=range(28), n=5) -> Path:
    """A session folder whose file K holds n samples, channel c of sample i = K + c + i (mod 100)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in ks:
        _write(folder / f"classe_{k}.dat", (k + np.arange(n)[:, None] + np.arange(8)) % 100)
    return folder


def _expect(call, arg, fragment, where=None):
    with pytest.raises(RecordingError) as info:
        call(arg)
    err = info.value
    assert isinstance(err, EdgeError) and isinstance(err, ValueError)
    assert fragment in str(err) and "expected" in str(err), str(err)
    assert str(where or arg) in str(err) and err.line is None
    return err


def test_small_session_parses_exactly(tmp_path):
    rec = read_myo_session(_session(tmp_path / "P" / "Test1", n=3), continuous=False)
    assert rec.n_samples == 28 * 3 and rec.samples[3 * 10, 0] == 10 and rec.samples[3 * 10 + 2, 7] == 19
    assert rec.labels[3 * 10].tolist() == [0, 0, 0, 1, 0, 0, 0]  # K = 10 -> 10 % 7 = 3
    assert rec.segments[:2].tolist() == [[0, 3], [3, 6]] and rec.subject == "P" and rec.session == "Test1"


def test_missing_file(tmp_path):
    _expect(read_myo_file, tmp_path / "classe_3.dat", "file not found")


def test_empty_file(tmp_path):
    path = tmp_path / "classe_3.dat"
    path.write_bytes(b"")
    _expect(read_myo_file, path, "empty file")


def test_odd_byte_count(tmp_path):
    path = tmp_path / "classe_3.dat"
    path.write_bytes(bytes(16 * 4 + 7))
    err = _expect(read_myo_file, path, "odd byte count 71")
    assert "16 bytes" in err.expected


def test_value_outside_8_bit_range(tmp_path):
    values = np.zeros((4, 8))
    values[2, 5] = 300  # e.g. a big-endian file
    _expect(read_myo_file, _write(tmp_path / "classe_3.dat", values), "value 300 at sample 2, emg6")


def test_file_over_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "classe_3.dat"
    path.write_bytes(bytes(MAX_FILE_BYTES + 16))
    _expect(read_myo_file, path, f"over the {MAX_FILE_BYTES}-byte limit")
    monkeypatch.setattr(myo_module, "MAX_FILE_BYTES", 32)

    def no_open(self, *args, **kwargs):
        raise AssertionError(f"{self} was opened")

    _write(path, np.zeros((3, 8)))  # 48 bytes
    monkeypatch.setattr(Path, "open", no_open)
    _expect(read_myo_file, path, "48 bytes, over the 32-byte limit")


@pytest.mark.parametrize("name", ["classe_28.dat", "emg.dat", "classe_.dat", "classe_1.bin", "Classe_1.dat"])
def test_misnamed_file(tmp_path, name):
    _expect(read_myo_file, _write(tmp_path / name, np.zeros((2, 8))), "unexpected file name")


@pytest.mark.parametrize("name", ["classe_28.dat", "notes.dat", "Classe_3.DAT"])
def test_misnamed_dat_in_a_session(tmp_path, name):
    folder = _session(tmp_path / "S")
    _write(folder / name, np.zeros((2, 8)))
    _expect(read_myo_session, folder, f"unexpected .dat file(s) {name}")


def test_missing_k_lists_every_missing_file(tmp_path):
    folder = _session(tmp_path / "S", ks=[k for k in range(28) if k not in (13, 20)])
    _expect(read_myo_session, folder, "classe_13.dat, classe_20.dat missing")


def test_zero_padded_duplicate_is_refused(tmp_path):
    folder = _session(tmp_path / "S")
    (folder / "classe_05.dat").write_bytes((folder / "classe_5.dat").read_bytes())
    _expect(read_myo_session, folder, "classe_05.dat and classe_5.dat")


def test_a_bad_file_in_a_session_names_the_file(tmp_path):
    folder = _session(tmp_path / "S")
    (folder / "classe_17.dat").write_bytes(b"\x00" * 5)
    _expect(read_myo_session, folder, "odd byte count 5", where=folder / "classe_17.dat")


def test_not_a_directory(tmp_path):
    path = _write(tmp_path / "classe_1.dat", np.zeros((2, 8)))
    _expect(read_myo_session, path, "not a directory")
    _expect(find_myo_sessions, tmp_path / "nowhere", "not a directory")
    _expect(read_myo, tmp_path / "nowhere", "not a directory")


def test_folders_without_sessions(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "experiment.csv").write_text("a,b\n")
    _expect(read_myo_session, tmp_path / "x", "no classe_K.dat files")
    err = _expect(find_myo_sessions, tmp_path / "x", "no Myo armband sessions found")
    assert "participant folder" in err.expected and "PreTrainingDataset" in err.expected
    _expect(read_recording, tmp_path / "x", "no Myo armband sessions found")


def test_other_files_are_ignored_and_never_opened(tmp_path, monkeypatch):
    folder = _session(tmp_path / "Male0" / "training0")
    (folder / "model.pt").write_bytes(b"\x80\x04garbage that is no pickle")
    (folder / "model.pkl").write_bytes(b"\x80\x04garbage")
    (folder / "experiment.csv").write_text("not,read\n")
    (folder / "README").write_text("hello")
    (tmp_path / "Male0" / "experiment.csv").write_text("not,read\n")
    opened = []
    real_open = Path.open

    def spy(self, *args, **kwargs):
        opened.append(self.name)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", spy)
    monkeypatch.setattr("pickle.load", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr("pickle.loads", lambda *a, **k: pytest.fail("unpickled"))
    rec = read_recording(tmp_path / "Male0")
    assert rec.n_samples == 28 * 5 and rec.subject == "Male0" and rec.session == "training0"
    assert sorted(opened) == sorted(f"classe_{k}.dat" for k in range(28))


def test_natural_order_and_session_order_from_names_only(tmp_path):
    half = tmp_path / "PreTrainingDataset"
    for p in ("Male10", "Male9", "Female1", "Male0", "Female0"):
        for s in ("Test1", "training0", "Test0"):
            (half / p / s).mkdir(parents=True)
    (half / "Male9" / "notes").mkdir()
    found = find_myo_sessions(half)
    assert [(s.parent.name, s.name) for s in found[:4]] == [
        ("Female0", "training0"), ("Female0", "Test0"), ("Female0", "Test1"), ("Female1", "training0")]
    assert [s.parent.name for s in found[::3]] == ["Female0", "Female1", "Male0", "Male9", "Male10"]
    (tmp_path / "EvaluationDataset" / "Female0" / "Test0").mkdir(parents=True)
    assert find_myo_sessions(tmp_path) == found + [tmp_path / "EvaluationDataset" / "Female0" / "Test0"]


def test_read_recording_keeps_its_file_errors(tmp_path):
    _expect(read_recording, tmp_path / "nothing.csv", "file not found")
