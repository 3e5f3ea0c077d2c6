"""A BrainFlow board (``brainflow:`` specs): OpenBCI Cyton/Ganglion, Muse 2/S, BrainFlow's synthetic and
playback-file boards, or any other board of BrainFlow's ``BoardIds``.

What the board is comes from BrainFlow's board description (``BoardShim.get_board_descr``: the rows
of its EEG or EMG channels, their names, the sampling rate, the timestamp row).  BrainFlow returns EXG
channels in microvolts ("For EXG channels BrainFlow returns uV wherever possible", its data-format
page): every channel declares ``uV``, which :mod:`edge.signals.units` converts like a declared LSL
unit.  Unnamed channels (the Ganglion's) are ``eeg1``..``eegN``, EMG channels ``emg1``..``emgN``.

Timing: timestamps are BrainFlow's timestamp row (Unix seconds).  Most boards stamp samples when
they reach this machine, in bursts (a USB-serial read, a BLE packet), so samples are missing only
when a whole chunk falls behind: each chunk's earliest-in-phase sample (timestamp minus running
index / fs) is compared with the previous chunk's, and a step of more than ``drop_tolerance``
nominal periods counts the missing samples and flags a discontinuity; a step back in time flags
one, as for LSL.  BrainFlow has no blocking read: ``read(timeout)`` polls its ring buffer.

The native library: pip's ``brainflow`` is one wheel for every platform that carries x86-64 Linux
libraries only; on a Raspberry Pi (aarch64) they cannot load and BrainFlow must be built from source
(docs/deploy-pi.md).  :func:`load_brainflow` says so instead of ctypes' "No such file or directory".
BrainFlow's console log is off unless ``NEUROGRIP_VERBOSE=1`` (``neurogrip --verbose``).
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import platform
import re
import time
from pathlib import Path
from typing import ClassVar

import numpy as np

from edge import config
from edge._checks import check_int, check_option
from edge.config import BRAINFLOW_DROP_TOLERANCE, LSL_MAX_CHUNK, STALL_TIMEOUT_S
from edge.errors import SourceError, SourceSpecError
from edge.signals.units import check_unit_options
from edge.sources.base import Chunk, Source, check_min, check_stall_timeout

log = logging.getLogger(__name__)

FIX_INSTALL = "install it with pip install 'neurogrip[edge]' (or pip install brainflow)"
FIX_NATIVE = ("pip's brainflow carries Linux libraries for x86-64 only: on a Raspberry Pi build BrainFlow from "
              "source and install its python_package into this environment (docs/deploy-pi.md, BrainFlow)")
#: Spellings of a board besides BrainFlow's BoardIds names (case and '-' are ignored, "_BOARD" optional).
ALIASES = {"PLAYBACK": "PLAYBACK_FILE_BOARD", "PLAYBACK_FILE": "PLAYBACK_FILE_BOARD", "STREAMING": "STREAMING_BOARD"}
#: Boards whose data come through a USB dongle: BrainFlow needs its serial port (its supported-boards page).
SERIAL_PORT_BOARDS = frozenset({"CYTON_BOARD", "CYTON_DAISY_BOARD", "GANGLION_BOARD", "MUSE_2_BLED_BOARD",
                                "MUSE_S_BLED_BOARD", "MUSE_2016_BLED_BOARD", "BRAINBIT_BLED_BOARD",
                                "FREEEEG32_BOARD", "FREEEEG128_BOARD"})
#: Boards reached over this machine's own Bluetooth LE adapter.
NATIVE_BLE_BOARDS = frozenset({"MUSE_2_BOARD", "MUSE_S_BOARD", "MUSE_2016_BOARD", "GANGLION_NATIVE_BOARD"})
FILE_BOARDS = frozenset({"PLAYBACK_FILE_BOARD", "STREAMING_BOARD"})  # take master_board= (and file=)
EXAMPLES = "synthetic, playback, cyton, cyton_daisy, ganglion, ganglion_native, muse_2, muse_s, muse_*_bled"
_ELF_MACHINES = {3: "i686", 0x28: "armv7l", 0x3E: "x86_64", 0xB7: "aarch64"}  # e_machine → platform.machine()


def _elf_machine(path: Path) -> str | None:
    """The machine an ELF library is built for (its header's e_machine), None if it is no ELF file."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)  # e_ident (16 bytes), e_type, e_machine
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    code = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return _ELF_MACHINES.get(code, f"machine {code}")


def _module_files(anchor: str):
    # brainflow asks importlib.resources.files() for its *module* (brainflow.board_shim), which Python < 3.12
    # refuses; brainflow then falls back to pkg_resources, gone from setuptools >= 81.  The libraries live
    # in the package's lib/ folder: ask for the package.
    return importlib.resources.files(anchor.rpartition(".")[0] if anchor.startswith("brainflow.") else anchor)


def load_brainflow():
    """``(board_shim module or None, problem or None, fix)``: brainflow imported, its native library
    loaded, and its console log off (unless ``NEUROGRIP_VERBOSE=1``)."""
    try:
        from brainflow import board_shim, data_filter, ml_model
    except ImportError as exc:
        absent = isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "brainflow"
        why = "the Python package brainflow is not installed" if absent else f"cannot import brainflow ({exc})"
        return None, why, FIX_INSTALL
    for mod in (board_shim, data_filter, ml_model):
        if hasattr(mod, "files"):
            mod.files = _module_files
    shim = board_shim.BoardShim
    try:
        if os.environ.get("NEUROGRIP_VERBOSE") == "1":
            shim.get_version()  # loads the library; BrainFlow keeps its own log level
        else:
            shim.disable_board_logger()
        return board_shim, None, FIX_NATIVE
    except (OSError, AttributeError) as exc:  # FileNotFoundError, a foreign ELF, a missing symbol
        lib = Path(str(_module_files("brainflow.board_shim"))) / "lib" / "libBoardController.so"
        arch, here = _elf_machine(lib), platform.machine()
        why = f"{lib} is built for {arch}, this machine is {here}" if arch not in (None, here) else \
            (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, f"BrainFlow's native library cannot be loaded ({why})", FIX_NATIVE


def import_brainflow():
    """brainflow's ``board_shim`` module, or a :class:`SourceError` naming the fix (see :func:`load_brainflow`)."""
    module, problem, fix = load_brainflow()
    if problem:
        raise SourceError(f"{problem}; {fix}")
    return module


def resolve_board(value, board_ids) -> tuple[int, str]:
    """``(id, BoardIds name)`` of a board given by name (``cyton``, ``muse_2``, ``SYNTHETIC_BOARD``) or number."""
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        try:
            member = board_ids(int(text))
            return int(member), member.name
        except ValueError:
            pass
    key = text.upper().replace("-", "_").replace(" ", "_")
    key = ALIASES.get(key, key)
    for name in (key, f"{key}_BOARD"):
        if name in board_ids.__members__ and name != "NO_BOARD":
            return int(board_ids[name]), name
    raise SourceSpecError(f"unknown BrainFlow board {text!r}; use one of {EXAMPLES}, or any name or number of "
                          "BrainFlow's BoardIds (https://brainflow.readthedocs.io/en/stable/SupportedBoards.html)")


def _open_failed(name: str, params) -> str:
    """What to do when BrainFlow could not open board ``name``."""
    if name in SERIAL_PORT_BOARDS:
        return (f"check that the dongle is plugged in at serial_port={params.serial_port} (ls /dev/ttyUSB* "
                "/dev/ttyACM* /dev/serial/by-id/), the board is switched on, no other program (the OpenBCI GUI) "
                "holds the port, and this user may open it ('neurogrip doctor --port PORT')")
    if name in NATIVE_BLE_BOARDS:
        return ("switch the headset on and disconnect it from phones and other apps, check that Bluetooth is on "
                "(bluetoothctl show), pick the device with serial_number= or mac_address=, or raise timeout=")
    if name in FILE_BOARDS:
        return "check that file= was written by BrainFlow for master_board= (DataFilter.write_file, a streamer)"
    return f"check the connection options BrainFlow's supported-boards page lists for {name}"


class BrainFlowSource(Source):
    """A BrainFlow board (``brainflow:`` specs; see the module docstring).

    Parameters
    ----------
    board : str or int
        A ``BoardIds`` name (``cyton``, ``ganglion``, ``muse_2``, ``muse_s_bled``; case, ``-`` and the
        ``_BOARD`` suffix optional), ``synthetic``, ``playback`` or a board number.
    serial_port, mac_address, serial_number, ip_address, ip_port, timeout : optional
        BrainFlow's connection fields (``BrainFlowInputParams``); a dongle board needs ``serial_port``.
    file, master_board : optional
        The playback board's file (written by BrainFlow) and the board that recorded it.
    signal : {"eeg", "emg"}
        Which of the board's channel groups to deliver.
    stall_timeout, drop_tolerance, max_chunk : optional
        As for :class:`~edge.sources.lsl.LSLSource`; ``drop_tolerance`` applies to whole chunks here.
    unit, scale : optional
        Override BrainFlow's µV (:mod:`edge.signals.units`).
    """

    kind = "brainflow"
    live = True
    OPTIONS: ClassVar[dict] = {"board": str, "serial_port": str, "mac_address": str, "serial_number": str,
                               "ip_address": str, "ip_port": int, "timeout": int, "file": str, "master_board": str,
                               "signal": str, "stall_timeout": float, "drop_tolerance": float, "max_chunk": int,
                               "unit": str, "scale": float}

    def __init__(self, board, serial_port: str | None = None, mac_address: str | None = None,
                 serial_number: str | None = None, ip_address: str | None = None, ip_port: int | None = None,
                 timeout: int | None = None, file: str | None = None, master_board=None, signal: str = "eeg",
                 stall_timeout: float = STALL_TIMEOUT_S, drop_tolerance: float = BRAINFLOW_DROP_TOLERANCE,
                 max_chunk: int = LSL_MAX_CHUNK, unit: str | None = None, scale: float | None = None):
        # The options first: no board is touched for a spec that is wrong anyway.
        signal = check_option(str(signal).lower(), "signal", ("eeg", "emg"), exc=SourceSpecError)
        check_stall_timeout(stall_timeout)
        self.drop_tolerance = check_min(drop_tolerance, "drop_tolerance", 1, "nominal period", above=True)
        self._cap = check_min(max_chunk, "max_chunk", 1, "sample", integer=True)
        if ip_port is not None:
            check_int(ip_port, "ip_port", lo=1, hi=65535, exc=SourceSpecError)
        if timeout is not None:
            check_int(timeout, "timeout", lo=1, exc=SourceSpecError, fix="BrainFlow's discovery timeout, in seconds")
        unit, scale = check_unit_options(unit, scale)
        bs = import_brainflow()
        self._error = bs.BrainFlowError
        board_id, name = resolve_board(board, bs.BoardIds)
        params = bs.BrainFlowInputParams()
        for key, value in (("serial_port", serial_port), ("mac_address", mac_address), ("ip_port", ip_port),
                           ("serial_number", serial_number), ("ip_address", ip_address), ("timeout", timeout)):
            if value is not None:
                setattr(params, key, value)
        master_id, master = board_id, name
        if name in FILE_BOARDS:
            if master_board is None or (name == "PLAYBACK_FILE_BOARD" and file is None):
                need = "master_board=NAME&file=PATH" if name == "PLAYBACK_FILE_BOARD" else "master_board=NAME"
                raise SourceSpecError(f"board={board} needs {need} (the board that recorded the data, e.g. "
                                      "brainflow:board=playback&master_board=muse_2&file=rec.csv)")
            master_id, master = resolve_board(master_board, bs.BoardIds)
            if master in FILE_BOARDS:
                raise SourceSpecError(f"master_board={master_board} must be the board that recorded the data, "
                                      "not a playback or streaming board")
            params.master_board = master_id
        elif file is not None or master_board is not None:
            raise SourceSpecError(f"file= and master_board= apply to board=playback (or streaming), not {board}")
        if name in SERIAL_PORT_BOARDS and not serial_port:
            raise SourceSpecError(f"board={board} needs serial_port= (its USB dongle, e.g. brainflow:board={board}&"
                                  "serial_port=/dev/ttyUSB0; ls /dev/ttyUSB* /dev/ttyACM* /dev/serial/by-id/ "
                                  "lists them)")
        try:
            descr = bs.BoardShim.get_board_descr(master_id)
        except self._error as exc:
            raise SourceSpecError(f"BrainFlow {bs.BoardShim.get_version()} has no description of {master} ({exc}); "
                                  "update brainflow or pick another board") from None
        if f"{signal}_channels" not in descr:
            raise SourceSpecError(f"{master} has no {signal.upper()} channels; use signal=eeg")
        self._rows = [int(r) for r in descr[f"{signal}_channels"]]
        names = str(descr.get("eeg_names", "")).split(",") if signal == "eeg" else []
        if len(names) != len(self._rows) or len(set(names)) != len(names):
            names = [f"{signal}{k + 1}" for k in range(len(self._rows))]
        if file is not None:
            params.file = str(self._check_file(file, int(descr["num_rows"]), master))
        self._ts_row = int(descr["timestamp_channel"])
        fs = float(descr["sampling_rate"])
        self._board = shim = bs.BoardShim(board_id, params)
        self.board_name, self.device = name, str(descr.get("name", master))
        try:
            shim.prepare_session()
        except self._error as exc:
            self._release(shim)
            raise SourceError(f"BrainFlow could not open {name} ({exc}); {_open_failed(name, params)}") from None
        try:
            shim.start_stream(max(1024, round(config.BRAINFLOW_BUFFER_S * fs)))
        except self._error as exc:
            self._release(shim)
            raise SourceError(f"BrainFlow opened {name} but could not start its stream ({exc}); switch the board "
                              "off and on, and try again") from None
        super().__init__(names, fs, stall_timeout)
        self.units, self.channel_types = ["uV"] * len(names), [signal.upper()] * len(names)
        self.stream_type, self.unit, self.scale, self.signal = signal.upper(), unit, scale, signal
        # BrainFlow stamps samples with this machine's Unix time as they arrive: their age is measurable
        # (edge/runtime/rate.py).  (time.time, not monotonic: the stamps are BrainFlow's.)
        self.stream_clock = time.time
        self._phase: float | None = None  # time of running sample 0 by the previous chunk's earliest sample
        self._last_ts: float | None = None
        self._failing = False

    @staticmethod
    def _check_file(file, n_rows: int, master: str) -> Path:
        """The playback file, checked before BrainFlow reads it: there, bounded, ``master``'s number of columns."""
        path = Path(file).expanduser()
        if not path.is_file():
            raise SourceError(f"BrainFlow playback file {path} does not exist; give file= the path of a file written "
                              "by BrainFlow (DataFilter.write_file, or a board's file streamer)")
        size = path.stat().st_size
        if size > config.RECORDING_MAX_BYTES:
            raise SourceError(f"{path} is {size} bytes, more than a recording may be ({config.RECORDING_MAX_BYTES}); "
                              "split it or raise edge.config.RECORDING_MAX_BYTES")
        with open(path, "rb") as f:
            first = f.readline(config.RECORDING_MAX_HEADER_BYTES).decode("ascii", "replace").strip()
        cols = len(first.split("\t")) if first else 0
        if cols != n_rows:
            raise SourceError(f"{path} has {cols} column(s) but {master} writes {n_rows}; give the master_board= "
                              "that recorded the file")
        return path

    # -- reading ---------------------------------------------------------------------
    def _available(self, timeout: float) -> int:
        """Samples in BrainFlow's buffer, polling up to ``timeout`` s for a first one; 0 if it fails."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                n = int(self._board.get_board_data_count())
                self._failing = False
            except self._error as exc:  # a board that went away: a stall, not an exception
                if not self._failing:
                    log.error("BrainFlow %s: reading failed (%s); treated as no data", self.board_name, exc)
                self._failing, n = True, 0
            left = deadline - time.monotonic()
            if n or left <= 0:
                return n
            time.sleep(min(config.BRAINFLOW_POLL_S, left))

    def read(self, timeout: float = 0.0) -> Chunk | None:
        self._check_open()
        n = self._available(timeout)
        try:
            data = self._board.get_board_data(min(n, self._cap)) if n else None
        except self._error:
            data = None
        if data is None or data.shape[1] == 0:
            self._check_stall()
            return None
        x = np.ascontiguousarray(data[self._rows].T)
        if self.factors is not None:
            x *= self.factors
        ts = data[self._ts_row]
        return self._deliver(x, ts, self._check_timing(ts))

    def _check_timing(self, ts: np.ndarray) -> bool:
        """Whether samples are missing before this chunk, or its time went back (module docstring)."""
        low = float(np.min(ts - (self.counters.samples + np.arange(len(ts))) / self.fs))
        prev, self._phase = self._phase, low
        prev_t, self._last_ts = self._last_ts, float(ts[-1])
        if prev is None:
            return False
        tol, gap = self.drop_tolerance / self.fs, False
        if low - prev > tol:
            missing = max(1, round((low - prev) * self.fs))
            self.counters.dropped += missing
            log.debug("BrainFlow %s: %d sample(s) missing before sample %d", self.board_name, missing,
                      self.counters.samples)
            gap = True
        if float(ts[0]) - prev_t < -tol or (len(ts) > 1 and float(np.min(np.diff(ts))) < -tol):
            gap = True  # the clock went back
        return gap

    # -- the rest --------------------------------------------------------------------
    @classmethod
    def check_spec(cls, target, params, spec):
        params = cls.target_option("board", target, params, spec)  # "brainflow:cyton?serial_port=..."
        if not params.get("board"):
            raise SourceSpecError(f"source {spec!r} names no board; write e.g. brainflow:board=synthetic or "
                                  "brainflow:board=cyton&serial_port=/dev/ttyUSB0")
        return "", params

    def _release(self, shim) -> None:
        for step in (shim.stop_stream, shim.release_session):
            try:
                step()
            except self._error as exc:  # not streaming, or already released
                log.debug("BrainFlow %s: %s", self.board_name, exc)

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        shim, self._board = self._board, None
        self._release(shim)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.board_name} ({self.device}) {len(self.channels)} "
                f"{self.signal.upper()} ch @ {self.fs:g} Hz>")
