"""The Myo armband EMG dataset of Côté-Allard et al. (IEEE TNSRE 27(4), 2019), read with numpy only.

Layout as published: ``PreTrainingDataset/<participant>/training0/classe_K.dat`` and
``EvaluationDataset/<participant>/{training0,Test0,Test1}/classe_K.dat``.  Each ``classe_K.dat``
is raw little-endian int16, 8 channels interleaved sample-major, 200 Hz, about 5 s of one held
gesture; ``K % 7`` is the gesture (:data:`GESTURES`), ``K // 7`` the cycle (0-3), recorded in the
order K = 0..27.

Units: the values are the Myo's own signed 8-bit EMG ADC counts (-128..127, stored as int16), not
µV; :attr:`Recording.samples` holds them unchanged as float64.  A value outside -128..127 means
the file is not in this layout (wrong byte order, another format) and is refused.

Only ``classe_K.dat`` files are ever opened: ``experiment.csv``, pickled models (``*.pt``,
``*.pkl``) and any other file next to them are ignored and never opened (nothing is unpickled).

One file is small (at most :data:`MAX_FILE_BYTES`, 524 288 values), but a folder is many: a session
of 28 files at that cap is 14.7 M values, more than calibration may hold at once.
:func:`open_myo` is :func:`read_myo` without holding the samples: they are read a file at a time.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge import config
from edge.errors import RecordingError
from edge.recordings.base import Recording
from edge.recordings.blocks import BlockReader, Blocks

MYO_FS = 200.0
MYO_CHANNELS = tuple(f"emg{i}" for i in range(1, 9))
GESTURES = ("neutral", "radial_deviation", "wrist_flexion", "ulnar_deviation", "wrist_extension",
            "hand_close", "hand_open")
N_CYCLES = 4
N_FILES = N_CYCLES * len(GESTURES)  # 28: classe_0.dat .. classe_27.dat
MAX_FILE_BYTES = 1 << 20  # 1 MiB; a 5 s file is ~16 KB.  Read at call time, so tests may patch it.
SESSION_NAMES = ("training0", "Test0", "Test1")
DATASET_NAMES = ("PreTrainingDataset", "EvaluationDataset")

FILE_NAME = re.compile(r"^classe_(\d+)\.dat$")
_ROW_BYTES = 2 * len(MYO_CHANNELS)
_SESSION_GAP = int(MYO_FS)  # samples left out between two sessions on the sample clock (real pause unknown)
_FILES = f"classe_0.dat .. classe_{N_FILES - 1}.dat"
_LAYOUT = (f"a Myo session folder ({_FILES}), a participant folder (training0/Test0/Test1), "
           "PreTrainingDataset, EvaluationDataset or the dataset root holding both")


def _file_k(path: Path) -> int:
    match = FILE_NAME.match(path.name)
    if match is None or int(match.group(1)) >= N_FILES:
        raise RecordingError(path, None, "unexpected file name",
                             f"classe_K.dat with K in 0..{N_FILES - 1} (K % 7 the gesture, K // 7 the cycle)")
    return int(match.group(1))


def _read_int16(path: str | Path) -> np.ndarray:
    """:func:`read_myo_file`'s values as stored (int16, read-only), checked the same way."""
    path = Path(path)
    _file_k(path)
    limit = MAX_FILE_BYTES
    if not path.is_file():
        raise RecordingError(path, None, "file not found", "an existing classe_K.dat file (check the path)")
    try:
        size = path.stat().st_size
        if size > limit:
            raise RecordingError(path, None, f"{size} bytes, over the {limit}-byte limit (MAX_FILE_BYTES)",
                                 f"a classe_K.dat of at most {limit} bytes (5 s at 200 Hz is ~16 KB)")
        with path.open("rb") as fh:
            data = fh.read(limit + 1)  # bounded even if the file grew since stat()
    except OSError as exc:
        raise RecordingError(path, None, f"cannot be read ({exc})", "a readable file") from exc
    if len(data) > limit:
        raise RecordingError(path, None, f"over the {limit}-byte limit (MAX_FILE_BYTES)",
                             f"a classe_K.dat of at most {limit} bytes")
    if not data:
        raise RecordingError(path, None, "empty file", f"little-endian int16 samples of {len(MYO_CHANNELS)} channels")
    if len(data) % _ROW_BYTES:
        raise RecordingError(path, None, f"odd byte count {len(data)} (not a multiple of {_ROW_BYTES})",
                             f"whole samples of {len(MYO_CHANNELS)} little-endian int16 channels "
                             f"({_ROW_BYTES} bytes each)")
    values = np.frombuffer(data, dtype="<i2").reshape(-1, len(MYO_CHANNELS))
    bad = np.argwhere((values < -128) | (values > 127))
    if bad.size:
        row, col = (int(v) for v in bad[0])
        raise RecordingError(path, None, f"value {int(values[row, col])} at sample {row}, {MYO_CHANNELS[col]}",
                             "the Myo's signed 8-bit EMG values (-128..127) as little-endian int16")
    return values


def read_myo_file(path: str | Path) -> np.ndarray:
    """Read one ``classe_K.dat``: an (n, 8) float64 array of the raw 8-bit EMG values.

    Raises
    ------
    RecordingError
        A name that is not ``classe_K.dat`` (K in 0..27), a missing or empty file, a file over
        :data:`MAX_FILE_BYTES` (refused before it is read), an odd byte count (not whole
        16-byte samples) or a value outside the Myo's -128..127.
    """
    return _read_int16(path).astype(np.float64)


def _entries(folder: Path) -> list[Path]:
    """The entries of a folder, refused beyond ``RECORDING_MAX_DIR_ENTRIES`` (counted while listing)."""
    limit, out = config.RECORDING_MAX_DIR_ENTRIES, []
    try:
        for p in folder.iterdir():
            out.append(p)
            if len(out) > limit:
                raise RecordingError(folder, None, f"more than {limit} entries",
                                     f"a Myo dataset folder of at most {limit} entries (RECORDING_MAX_DIR_ENTRIES)")
    except OSError as exc:
        raise RecordingError(folder, None, f"cannot be listed ({exc.strerror})", "a readable folder") from None
    return out


def _session_files(folder: Path) -> list[Path]:
    """The 28 ``classe_K.dat`` of a session folder in recorded order (only names are looked at)."""
    if not folder.is_dir():
        raise RecordingError(folder, None, "not a directory", f"a Myo session folder holding {_FILES}")
    by_k: dict[int, list[Path]] = {}
    misnamed = []
    for p in sorted(_entries(folder)):
        if p.suffix.lower() != ".dat":
            continue  # experiment.csv, pickles, READMEs: ignored, never opened
        match = FILE_NAME.match(p.name)
        if match is None or int(match.group(1)) >= N_FILES:
            misnamed.append(p.name)
        else:
            by_k.setdefault(int(match.group(1)), []).append(p)
    if misnamed:
        shown = ", ".join(n[:60] for n in misnamed[:5]) + (f", ... {len(misnamed) - 5} more" if len(misnamed) > 5
                                                                 else "")
        raise RecordingError(folder, None, f"unexpected .dat file(s) {shown}",
                             f"only classe_K.dat files with K in 0..{N_FILES - 1}")
    if not by_k:
        raise RecordingError(folder, None, "no classe_K.dat files", f"a Myo session folder holding {_FILES}")
    dups = [" and ".join(p.name for p in ps) for _, ps in sorted(by_k.items()) if len(ps) > 1]
    if dups:
        raise RecordingError(folder, None, f"two files for one K ({'; '.join(dups)})",
                             "exactly one classe_K.dat per K (no zero-padded copies)")
    missing = [f"classe_{k}.dat" for k in range(N_FILES) if k not in by_k]
    if missing:
        raise RecordingError(folder, None, f"{', '.join(missing)} missing", f"all {N_FILES} files {_FILES}")
    return [by_k[k][0] for k in range(N_FILES)]


def read_myo_session(folder: str | Path, *, continuous: bool = True) -> Recording:
    """Read one session folder (``training0``, ``Test0`` or ``Test1``) as a :class:`Recording`.

    The 28 files are concatenated in recorded order K = 0..27 (numeric: classe_10 after
    classe_9).  ``labels`` is a per-sample one-hot (n, 7) uint8 in :data:`GESTURES` order.
    ``continuous=True``: the session is one segment (the gestures replayed back to back, as
    recorded); ``continuous=False``: each file is its own segment, so no filter state or window
    crosses from one file to the next.  ``sample_index`` is ``arange(n)`` either way.
    """
    folder = Path(folder)
    files = _session_files(folder)
    parts = [_read_int16(p) for p in files]  # as stored: float64 only once, in place (a quarter of it)
    lengths = np.array([len(x) for x in parts], dtype=np.int64)
    bounds = np.concatenate(([0], np.cumsum(lengths)))
    n = int(bounds[-1])
    samples = np.empty((n, len(MYO_CHANNELS)), np.float64)
    for x, a, b in zip(parts, bounds[:-1], bounds[1:]):
        samples[a:b] = x
    del parts
    labels = np.zeros((n, len(GESTURES)), dtype=np.uint8)
    labels[np.arange(n), np.repeat(np.arange(N_FILES) % len(GESTURES), lengths)] = 1
    if continuous:
        segments = np.array([[0, n]], dtype=np.int64)
    else:
        segments = np.stack([bounds[:-1], bounds[1:]], axis=1).astype(np.int64)
    return Recording(
        samples=samples, channels=MYO_CHANNELS, fs=MYO_FS, segments=segments,
        sample_index=np.arange(n, dtype=np.int64), labels=labels, label_names=GESTURES, state=None,
        subject=folder.parent.name, session=folder.name, source=folder,
    )


def _natural_key(name: str) -> tuple:
    """Female0 < Female1 < ... < Male9 < Male10."""
    return tuple(int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name)))


def _is_session(path: Path) -> bool:
    return any(p.suffix.lower() == ".dat" and p.name.lower().startswith("classe_") for p in _entries(path))


def _participant_sessions(path: Path) -> list[Path]:
    return [path / s for s in SESSION_NAMES if (path / s).is_dir()]


def _dataset_sessions(path: Path) -> list[Path]:
    children = sorted((p for p in _entries(path) if p.is_dir()), key=lambda p: _natural_key(p.name))
    return [s for p in children for s in _participant_sessions(p)]


def find_myo_sessions(path: str | Path) -> list[Path]:
    """The session folders under ``path``, in order.

    ``path`` may be a session folder itself; a participant folder (its training0, Test0, Test1,
    whichever exist, in that order); ``PreTrainingDataset`` or ``EvaluationDataset`` (every
    participant, sorted naturally: Male10 after Male9); or the dataset root (PreTrainingDataset
    then EvaluationDataset).  Only names are looked at; no file is opened.
    """
    path = Path(path)
    if not path.is_dir():
        raise RecordingError(path, None, "not a directory", _LAYOUT)
    if _is_session(path):
        return [path]
    sessions = _participant_sessions(path) or _dataset_sessions(path)
    if not sessions:
        sessions = [s for name in DATASET_NAMES if (path / name).is_dir() for s in _dataset_sessions(path / name)]
    if not sessions:
        raise RecordingError(path, None, "no Myo armband sessions found", _LAYOUT)
    return sessions


def _int16_bytes(sessions: list[Path]) -> int:
    """The bytes of the sessions' ``classe_K.dat`` files, from their sizes (nothing is read)."""
    total = 0
    for folder in sessions:
        for p in _session_files(folder):
            try:
                total += p.stat().st_size
            except OSError as exc:
                raise RecordingError(p, None, f"cannot be read ({exc.strerror})", "a readable file") from None
    return total


def myo_values(path: str | Path) -> int:
    """How many values (samples × 8 channels) :func:`read_myo` would read under ``path``, from the files'
    sizes (:func:`find_myo_sessions`; its errors)."""
    return _int16_bytes(find_myo_sessions(path)) // 2


def _check_total_size(path: Path, sessions: list[Path]) -> None:
    """Refuse, before reading, sessions whose samples would take more than ``RECORDING_MAX_BYTES``
    in memory (float64: 4 times the files' int16 bytes)."""
    limit, total = config.RECORDING_MAX_BYTES, _int16_bytes(sessions) * 4
    if total > limit:
        raise RecordingError(path, None, f"{len(sessions)} sessions of {total} bytes as float64 samples, over the "
                             f"{limit}-byte limit", "fewer sessions at once (RECORDING_MAX_BYTES)")


def read_myo(path: str | Path, *, continuous: bool = True) -> Recording:
    """Read every session under ``path`` (see :func:`find_myo_sessions`) as one :class:`Recording`.

    One session: :func:`read_myo_session`.  Several: the sessions one after another, each its own
    segment(s) (``continuous`` applies within a session; nothing bridges two sessions), and
    ``sample_index`` jumps by one second (200 samples left out) at each session boundary, so a
    replay reports a discontinuity there.  ``subject`` is the participant when all sessions are
    one participant's folder, else ""; ``session`` joins the distinct session names
    ("training0+Test0+Test1"); ``source`` is ``path``.
    """
    path = Path(path)
    sessions = find_myo_sessions(path)
    _check_total_size(path, sessions)
    if len(sessions) == 1:
        return read_myo_session(sessions[0], continuous=continuous)
    recs = [read_myo_session(s, continuous=continuous) for s in sessions]
    offsets = np.cumsum([0] + [r.n_samples for r in recs[:-1]])
    clock = np.cumsum([0] + [r.n_samples + _SESSION_GAP for r in recs[:-1]])
    participants = {s.parent for s in sessions}
    return Recording(
        samples=np.concatenate([r.samples for r in recs]), channels=MYO_CHANNELS, fs=MYO_FS,
        segments=np.concatenate([r.segments + off for r, off in zip(recs, offsets)]),
        sample_index=np.concatenate([r.sample_index + c for r, c in zip(recs, clock)]),
        labels=np.concatenate([r.labels for r in recs]), label_names=GESTURES, state=None,
        subject=sessions[0].parent.name if len(participants) == 1 else "",
        session="+".join(dict.fromkeys(r.session for r in recs)), source=path,
    )


def as_continuous(rec: Recording) -> Recording:
    """The same session as one segment (``read_myo_session(..., continuous=True)``) without reading it
    again: the gestures back to back, as recorded."""
    return replace(rec, segments=np.array([[0, rec.n_samples]], dtype=np.int64))


class _MyoRows(BlockReader):
    """The sessions' files one after another, a file (float64, as :func:`read_myo_file`) a block."""

    def __init__(self, files: list[Path], bounds: np.ndarray):
        super().__init__(int(bounds[-1]), len(MYO_CHANNELS))
        self._files, self._bounds = files, bounds
        self.path = files[0].parent if files else "the Myo session"  # named by a read error

    def block(self, row: int) -> tuple[int, np.ndarray]:
        k = int(np.searchsorted(self._bounds, row, side="right")) - 1
        x = read_myo_file(self._files[k])
        if len(x) != self._bounds[k + 1] - self._bounds[k]:
            raise RecordingError(self._files[k], None, f"{len(x)} samples where it held "
                                 f"{self._bounds[k + 1] - self._bounds[k]} when it was opened",
                                 "a session that is no longer being written to")
        return int(self._bounds[k]), x


def _file_rows(path: Path) -> int:
    """A ``classe_K.dat``'s samples from its size, checked as :func:`read_myo_file` checks it."""
    _file_k(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise RecordingError(path, None, f"cannot be read ({exc.strerror})", "a readable file") from None
    if not size or size > MAX_FILE_BYTES or size % _ROW_BYTES:
        _read_int16(path)  # raises what the read would
    return size // _ROW_BYTES


def open_myo(path: str | Path, *, continuous: bool = True) -> Recording:
    """:func:`read_myo`'s recording without its samples in memory: ``samples`` is a
    :class:`~edge.recordings.blocks.Blocks` read a ``classe_K.dat`` at a time (a value outside
    -128..127 is then refused as the read refuses it), ``sample_index`` an empty array; every other
    field is :func:`read_myo`'s."""
    path = Path(path)
    sessions = find_myo_sessions(path)
    _check_total_size(path, sessions)
    files, segments, labels, n = [], [], [], 0
    for folder in sessions:
        names = _session_files(folder)
        lengths = np.array([_file_rows(p) for p in names], np.int64)
        bounds = n + np.concatenate(([0], np.cumsum(lengths)))
        segments.append([[n, int(bounds[-1])]] if continuous else np.stack([bounds[:-1], bounds[1:]], axis=1))
        labels.append(np.repeat(np.arange(N_FILES) % len(GESTURES), lengths))
        files.append((names, bounds[:-1]))
        n = int(bounds[-1])
    y = np.zeros((n, len(GESTURES)), dtype=np.uint8)
    y[np.arange(n), np.concatenate(labels)] = 1
    participants = {s.parent for s in sessions}
    one = len(sessions) == 1
    rows = _MyoRows([p for names, _ in files for p in names], np.append(np.concatenate([b for _, b in files]), n))
    return Recording(
        samples=Blocks(rows), channels=MYO_CHANNELS, fs=MYO_FS,
        segments=np.concatenate(segments).astype(np.int64), sample_index=np.zeros(0, np.int64), labels=y,
        label_names=GESTURES, state=None,
        subject=sessions[0].parent.name if one or len(participants) == 1 else "",
        session=sessions[0].name if one else "+".join(dict.fromkeys(s.name for s in sessions)),
        source=sessions[0] if one else path,
    )
