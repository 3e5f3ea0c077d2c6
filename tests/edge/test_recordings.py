"""Recording readers: every shared file loads, gaps split segments, bad input gets one typed error."""

import gzip

import numpy as np
import pytest

from edge.errors import EdgeError, RecordingError
from edge.recordings import (
    EMOTION_LABELS,
    GAMEEMO_CHANNELS,
    GRASP_LIFT_CHANNELS,
    GRASP_LIFT_EVENTS,
    MUSE_COLUMNS,
    find_grasp_lift_series,
    read_emotions_table,
    read_gameemo,
    read_grasp_lift,
    read_grasp_lift_events,
    read_muse,
    read_recording,
)

# --------------------------------------------------------------------------- real data


def _shared_files(sub, pattern):
    from tests.conftest import SHARED_DATA

    return sorted((SHARED_DATA / sub).glob(pattern)) if SHARED_DATA.is_dir() else []


@pytest.mark.parametrize("path", _shared_files("grasp_lift_segments", "*_data.csv.gz"), ids=lambda p: p.name)
def test_every_shared_grasp_lift_series_loads_with_gaps_split(path):
    rec = read_grasp_lift(path)
    assert rec.samples.shape == (rec.n_samples, 32) and rec.channels == GRASP_LIFT_CHANNELS
    assert rec.fs == 500.0 and rec.labels.shape == (rec.n_samples, 6)
    # Segments tile the rows, are contiguous inside, and every boundary is a real jump in time.
    assert rec.segments[0, 0] == 0 and rec.segments[-1, 1] == rec.n_samples
    assert np.all(rec.segments[1:, 0] == rec.segments[:-1, 1])
    for start, stop in rec.segments:
        assert np.all(np.diff(rec.sample_index[start:stop]) == 1)
    jumps = rec.sample_index[rec.segments[1:, 0]] - rec.sample_index[rec.segments[1:, 0] - 1]
    assert np.all(jumps > 1)
    assert len(rec.segments) > 10  # these files are the labelled windows only


@pytest.mark.parametrize("path", _shared_files("grasp_lift_events", "*.csv.gz"), ids=lambda p: p.name)
def test_complete_real_events_files_are_contiguous_with_34_trials(path):
    index, labels = read_grasp_lift_events(path)
    assert np.all(np.diff(index) == 1) and index[0] == 0
    rises = (np.diff(np.r_[0, labels[:, 0].astype(int)]) > 0).sum()
    assert rises == 34


@pytest.mark.parametrize("path", _shared_files("muse_mental_state", "*.csv"), ids=lambda p: p.name)
def test_every_shared_muse_file_loads(path):
    rec = read_muse(path)
    assert rec.channels == MUSE_COLUMNS[1:] and rec.fs == 256.0
    assert rec.state in ("concentrating", "neutral", "relaxed")
    measured = (rec.n_samples - 1) / (rec.timestamps[-1] - rec.timestamps[0])
    assert abs(measured - 256) < 2


@pytest.mark.parametrize("path", _shared_files("gameemo", "*.csv.gz"), ids=lambda p: p.name)
def test_every_shared_gameemo_file_loads(path):
    rec = read_gameemo(path)
    assert rec.channels == GAMEEMO_CHANNELS and rec.fs == 128.0
    assert rec.state in ("boring", "calm", "horror", "funny")
    assert rec.n_samples > 30_000  # ~5 minutes at 128 Hz


def test_find_series_sorted_numerically(shared_data):
    files = find_grasp_lift_series(shared_data / "grasp_lift_segments")
    assert files[0].name == "subj1_series1_data.csv.gz" and len(files) == 48


# --------------------------------------------------------------------------- small files


def _kaggle(tmp_path, ids=(0, 1, 2, 5, 6), subject=1, series=2, header=None, ev_header=None,
            cell=None, ev_ids=None, gz=False):
    """Write a small Kaggle pair; ``cell=(row, col, text)`` overrides one data cell."""
    stem = f"subj{subject}_series{series}"
    header = header or ",".join(("id",) + GRASP_LIFT_CHANNELS)
    rows = []
    for r, i in enumerate(ids):
        vals = [str(100 + r + c) for c in range(32)]
        if cell and cell[0] == r:
            vals[cell[1]] = cell[2]
        rows.append(f"{stem}_{i}," + ",".join(vals))
    ev_ids = ids if ev_ids is None else ev_ids
    ev_rows = [f"{stem}_{i}," + ",".join("1" if (r + k) % 4 == 0 else "0" for k in range(6))
               for r, i in enumerate(ev_ids)]
    ev_header = ev_header or ",".join(("id",) + GRASP_LIFT_EVENTS)
    suffix = ".csv.gz" if gz else ".csv"
    data = tmp_path / f"{stem}_data{suffix}"
    events = tmp_path / f"{stem}_events{suffix}"
    for path, text in ((data, header + "\n" + "\n".join(rows) + "\n"),
                       (events, ev_header + "\n" + "\n".join(ev_rows) + "\n")):
        if gz:
            with gzip.open(path, "wt") as fh:
                fh.write(text)
        else:
            path.write_text(text)
    return data


def test_small_gapped_kaggle_pair_parses_exactly(tmp_path):
    rec = read_grasp_lift(_kaggle(tmp_path, gz=True))
    assert rec.samples[0, 0] == 100 and rec.samples[4, 31] == 100 + 4 + 31
    assert rec.sample_index.tolist() == [0, 1, 2, 5, 6]
    assert rec.segments.tolist() == [[0, 3], [3, 5]]
    assert rec.labels[0].tolist() == [1, 0, 0, 0, 1, 0] and rec.subject == "1" and rec.session == "2"


def test_windows_line_endings_are_accepted(tmp_path):
    path = _kaggle(tmp_path)
    for p in (path, path.with_name(path.name.replace("_data", "_events"))):
        p.write_bytes(p.read_bytes().replace(b"\n", b"\r\n"))
    assert read_grasp_lift(path).n_samples == 5


def _expect(path_or_callable, fragment, line=None, reader=read_grasp_lift):
    with pytest.raises(RecordingError) as info:
        reader(path_or_callable)
    err = info.value
    assert isinstance(err, EdgeError) and isinstance(err, ValueError)
    assert fragment in str(err), str(err)
    if line is not None:
        assert err.line == line, str(err)
    assert str(err.path) in str(err)
    return err


def test_missing_file(tmp_path):
    _expect(tmp_path / "subj1_series1_data.csv", "file not found")


def test_missing_events_file(tmp_path):
    path = _kaggle(tmp_path)
    path.with_name(path.name.replace("_data", "_events")).unlink()
    err = _expect(path, "file not found")
    assert err.path.name == "subj1_series2_events.csv"


def test_wrong_header(tmp_path):
    header = ",".join(("id",) + GRASP_LIFT_CHANNELS[:-1] + ("XX",))
    _expect(_kaggle(tmp_path, header=header), "wrong header", line=1)


def test_reordered_header(tmp_path):
    ch = list(GRASP_LIFT_CHANNELS)
    ch[0], ch[1] = ch[1], ch[0]
    _expect(_kaggle(tmp_path, header=",".join(["id"] + ch)), "reordered", line=1)


def test_reordered_events_header(tmp_path):
    ev = list(GRASP_LIFT_EVENTS)[::-1]
    _expect(_kaggle(tmp_path, ev_header=",".join(["id"] + ev)), "reordered", line=1)


def test_non_numeric_cell_names_line_and_column(tmp_path):
    err = _expect(_kaggle(tmp_path, cell=(3, 4, "abc")), "non-numeric cell 'abc' in column 6", line=5)
    assert "expected a number" in str(err)


def test_empty_cell(tmp_path):
    _expect(_kaggle(tmp_path, cell=(1, 0, "")), "non-numeric cell ''", line=3)


def test_nan_cell(tmp_path):
    _expect(_kaggle(tmp_path, cell=(2, 7, "nan")), "non-finite", line=4)


def test_missing_cell(tmp_path):
    path = _kaggle(tmp_path)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0]
    path.write_text("\n".join(lines) + "\n")
    _expect(path, "32 cells", line=3)


def test_duplicated_ids(tmp_path):
    _expect(_kaggle(tmp_path, ids=(0, 1, 1, 2)), "duplicated id", line=4)


def test_decreasing_ids(tmp_path):
    _expect(_kaggle(tmp_path, ids=(0, 1, 5, 3)), "decreasing id", line=5)


def test_foreign_id_prefix(tmp_path):
    path = _kaggle(tmp_path)
    text = path.read_text().replace("subj1_series2_2,", "subj9_series2_2,")
    path.write_text(text)
    _expect(path, "id 'subj9_series2_2'", line=4)


def test_events_with_fewer_rows(tmp_path):
    _expect(_kaggle(tmp_path, ev_ids=(0, 1, 2, 5)), "4 event rows for 5 data rows")


def test_events_with_other_ids(tmp_path):
    _expect(_kaggle(tmp_path, ev_ids=(0, 1, 2, 5, 7)), "id subj1_series2_7", line=6)


def test_truncated_gzip(tmp_path):
    path = _kaggle(tmp_path, gz=True)
    path.write_bytes(path.read_bytes()[:-12])
    _expect(path, "cannot be read")


def test_header_only(tmp_path):
    path = tmp_path / "subj1_series1_data.csv"
    path.write_text(",".join(("id",) + GRASP_LIFT_CHANNELS) + "\n")
    _expect(path, "no data rows", line=2)


MUSE_HEADER = ",".join(MUSE_COLUMNS)


def _muse(tmp_path, times, name="subjectz-relaxed-1.csv", header=MUSE_HEADER):
    path = tmp_path / name
    rows = [f"{t:.3f},1,2,3,4,5" for t in times]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_muse_gap_splits_segments(tmp_path):
    t = np.r_[np.arange(100) / 256, 1.0 + np.arange(50) / 256]
    rec = read_muse(_muse(tmp_path, 1000 + t))
    assert rec.segments.tolist() == [[0, 100], [100, 150]]
    assert rec.state == "relaxed" and rec.subject == "z"


def test_muse_decreasing_timestamp(tmp_path):
    _expect(_muse(tmp_path, [1.0, 1.004, 1.002]), "decreasing timestamp", line=4, reader=read_muse)


def test_muse_duplicated_timestamp(tmp_path):
    _expect(_muse(tmp_path, [1.0, 1.004, 1.004]), "duplicated timestamp", line=4, reader=read_muse)


def test_muse_wrong_header(tmp_path):
    _expect(_muse(tmp_path, [1.0, 1.004], header="timestamps,TP9,AF7,AF8,TP10"), "wrong header",
            line=1, reader=read_muse)


def test_gameemo_trailing_commas_and_state(tmp_path):
    path = tmp_path / "S03G3AllChannels.csv"
    header = ",".join(f'"{c}"' for c in GAMEEMO_CHANNELS) + ","
    rows = [",".join(str(float(i + c)) for c in range(14)) + "," for i in range(4)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    rec = read_recording(path)
    assert rec.samples.shape == (4, 14) and rec.samples[3, 13] == 16.0
    assert rec.state == "horror" and rec.subject == "03"


def test_gameemo_bad_cell(tmp_path):
    path = tmp_path / "S03G1AllChannels.csv"
    header = ",".join(f'"{c}"' for c in GAMEEMO_CHANNELS) + ","
    rows = ["1," * 14, "1," * 13 + "x,"]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    _expect(path, "non-numeric cell 'x' in column 14", line=3, reader=read_gameemo)


def _emotions(tmp_path, labels):
    path = tmp_path / "emotions.csv"
    names = ["# mean_0_a", "mean_1_a", "fft_0_b"]
    rows = [f"{i}.5,{-i},{i * 2}e-1,{lab}" for i, lab in enumerate(labels)]
    path.write_text(",".join(names + ["label"]) + "\n" + "\n".join(rows) + "\n")
    return path


def test_emotions_table(tmp_path):
    table = read_emotions_table(_emotions(tmp_path, ["NEGATIVE", "POSITIVE", "NEUTRAL"]))
    assert table.feature_names == ("mean_0_a", "mean_1_a", "fft_0_b")
    assert table.features.shape == (3, 3) and table.features[1, 2] == pytest.approx(0.2)
    assert [table.label_names[i] for i in table.labels] == ["NEGATIVE", "POSITIVE", "NEUTRAL"]
    assert table.label_names == EMOTION_LABELS


def test_emotions_bad_label(tmp_path):
    _expect(_emotions(tmp_path, ["NEGATIVE", "HAPPY"]), "label 'HAPPY'", line=3, reader=read_emotions_table)


def test_unknown_layout(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    _expect(path, "unknown layout", line=1, reader=read_recording)
