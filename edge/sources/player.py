"""Publish a recording as a live LSL stream (``neurogrip stream RECORDING``), like mne-lsl's Player.

The stream advertises the recording's rate as its nominal rate, carries float32
samples, and describes each channel in ``desc/channels/channel/{label,type,unit}``
(XDF meta-data) so an ``lsl:`` source (:mod:`edge.sources`) picks channels by name
and converts their unit to the bundle's (:mod:`edge.signals.units`).  The unit is
the recording's ("microvolts" for the EEG layouts, "myo" for the Myo armband's own
values) unless ``unit`` says otherwise; ``scale`` multiplies the published values
(``scale=1e-6, unit="V"`` publishes the recording in volts, as an MNE-based player
does), and scaled values go out as float64 so that scaling back loses nothing.  Chunks are paced
on ``time.monotonic()`` and pushed with explicit ``pylsl.local_clock()``
timestamps: sample *i* is stamped ``t0 + i / fs``, so the receiver sees the
recording's timing (at ``speed=1`` these are also the wall-clock capture times).

A gap between the recording's segments (or the wrap-around when looping) is
published as a pause of ``min(gap, max_gap)`` with the same jump in the
timestamps: receivers see a discontinuity (dropped samples) while the default
``max_gap`` (50 ms) stays below the 100 ms stall timeout.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

from edge._checks import check_int, check_number, check_type
from edge.config import PLAYER_MAX_GAP_S
from edge.errors import EdgeError
from edge.recordings import Recording, read_recording
from edge.recordings.myo import MYO_CHANNELS
from edge.sources import import_pylsl

log = logging.getLogger(__name__)

DEFAULT_NAME = "neurogrip-replay"


def recording_unit(recording: Recording) -> str:
    """The unit of a recording's values: "myo" for the Myo armband's, "microvolts" for the EEG layouts."""
    return "myo" if tuple(recording.channels) == MYO_CHANNELS else "microvolts"


def _per_channel(value, n: int, name: str) -> list:
    values = [value] * n if value is None or isinstance(value, str) else list(value)
    if len(values) != n or not all(v is None or isinstance(v, str) for v in values):
        raise ValueError(f"{name} must be a str, None or one str per channel ({n}), got {value!r}")
    return values


class Player:
    """Replay a recording as an LSL outlet from a background thread.

    Parameters
    ----------
    recording : Recording, str or Path
        What to publish (a path is read with :func:`~edge.recordings.read_recording`).
    name, stype : str
        LSL stream name and type.
    chunk_size : int
        Samples per pushed chunk (10 = 20 ms at 500 Hz).
    speed : float
        1 = real time, 2 = twice as fast, 0 = as fast as possible.
    loop : bool
        Start again at the end (with a discontinuity) instead of stopping.
    source_id : str, optional
        LSL source id; default ``neurogrip:<name>@<host>``, so a restarted
        player is the same stream to liblsl and inlets recover.  ``""``
        publishes a stream that inlets cannot recover.
    max_gap : float
        Longest pause (s) published for a gap between segments.
    wait_consumers : float
        Seconds to wait for a first inlet to connect before the clock starts
        (0: start at once, as a live device would).
    unit : str, sequence of str or None
        Each channel's declared ``unit``: "auto" (default) the recording's (:func:`recording_unit`),
        a word ("microvolts", "V") or an MNE exponent ("-6", "0"); None declares none.
    scale : float
        Published values are the recording's times this (1e-6 with unit "V": volts).
    channel_types : str, sequence of str or None
        Each channel's declared ``type``; default the stream type.
    """

    def __init__(self, recording: Recording | str | Path, name: str = DEFAULT_NAME, stype: str = "EEG",
                 chunk_size: int = 10, speed: float = 1.0, loop: bool = False, source_id: str | None = None,
                 max_gap: float = PLAYER_MAX_GAP_S, wait_consumers: float = 0.0, unit="auto", scale: float = 1.0,
                 channel_types=None):
        if isinstance(recording, (str, Path)):
            recording = read_recording(recording)
        check_type(recording, Recording, "recording", fix="or give a path")
        check_type(name, str, "name")
        if not name:
            raise ValueError("name must be a non-empty str, got ''")
        chunk_size = check_int(chunk_size, "chunk_size", lo=1)
        speed = check_number(speed, "speed", lo=0.0, fix="0 = as fast as possible")
        max_gap = check_number(max_gap, "max_gap", lo=0.0, fix="seconds")
        if recording.n_samples == 0:
            raise ValueError("recording has no samples to publish")
        scale = check_number(scale, "scale")
        if scale == 0:
            raise ValueError("scale must be a finite non-zero number, got 0")
        n_ch = len(recording.channels)
        self.units = _per_channel(recording_unit(recording) if unit == "auto" else unit, n_ch, "unit")
        self.channel_types = _per_channel(str(stype) if channel_types is None else channel_types, n_ch,
                                          "channel_types")
        self.scale = scale
        self.recording = recording
        self.name = name
        self.stype = str(stype)
        self.chunk_size = int(chunk_size)
        self.speed = speed
        self.loop = bool(loop)
        self.source_id = f"neurogrip:{name}@{socket.gethostname()}" if source_id is None else str(source_id)
        self.max_gap = float(max_gap)
        self.wait_consumers = float(wait_consumers)
        self.fs = float(recording.fs)
        self.channels = list(recording.channels)
        self.samples_pushed = 0
        self.t0_lsl: float | None = None
        self.error: BaseException | None = None
        # Scaled values as float64: x * 1e-6 in float32 would not scale back to x exactly.
        self._data = np.ascontiguousarray(recording.samples, dtype=np.float32) if scale == 1 else \
            np.ascontiguousarray(recording.samples * scale, dtype=np.float64)
        self._pylsl = None
        self._outlet = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- life cycle --------------------------------------------------------------------
    def start(self) -> Player:
        """Create the outlet (discoverable when this returns) and start publishing."""
        if self.running:
            raise RuntimeError(f"player {self.name!r} is already running; stop() it first")
        pylsl = self._pylsl = import_pylsl()
        fmt = pylsl.cf_float32 if self._data.dtype == np.float32 else pylsl.cf_double64
        info = pylsl.StreamInfo(self.name, self.stype, len(self.channels), self.fs, fmt, self.source_id)
        chans = info.desc().append_child("channels")
        for label, ch_type, unit in zip(self.channels, self.channel_types, self.units):
            ch = chans.append_child("channel")
            ch.append_child_value("label", label)
            for key, value in (("type", ch_type), ("unit", unit)):
                if value is not None:
                    ch.append_child_value(key, value)
        info.desc().append_child_value("manufacturer", "neurogrip")
        self._outlet = pylsl.StreamOutlet(info, self.chunk_size)
        self.samples_pushed = 0
        self.error = None
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"lsl-player-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop publishing and destroy the outlet (inlets see the stream go away)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._outlet = None  # the last reference: liblsl destroys the outlet now

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a non-looping replay to finish; True if it did."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- publishing --------------------------------------------------------------------
    def rows_at(self, timestamps) -> np.ndarray:
        """Recording rows published at these LSL timestamps (first pass; -1 before the start).

        The player's timestamps are ``t0_lsl + slot / fs`` with one slot per row and a few
        empty slots per gap, so a receiver's timestamp maps back to the row exactly.
        """
        if self.t0_lsl is None:
            raise RuntimeError("the player has not published yet")
        slots, slot, last_row = [], 0, None
        for start, stop in self.recording.segments.tolist():
            if last_row is not None:
                slot += self._gap_slots(last_row, start)
            slots.append(np.arange(slot, slot + stop - start))
            slot += stop - start
            last_row = stop - 1
        slot_of_row = np.concatenate(slots)
        want = np.round((np.asarray(timestamps, float) - self.t0_lsl) * self.fs).astype(np.int64)
        rows = np.searchsorted(slot_of_row, want)
        ok = (rows < len(slot_of_row)) & (slot_of_row[np.minimum(rows, len(slot_of_row) - 1)] == want)
        return np.where(ok, rows, -1)

    def _gap_slots(self, before: int, after: int) -> int:
        """Sample slots to leave empty between row ``before`` and row ``after``."""
        index = self.recording.sample_index
        missing = int(index[after] - index[before] - 1) if after > before else 1 << 30
        return max(1, min(missing, round(self.max_gap * self.fs)))

    def _run(self) -> None:
        try:
            self._publish()
        except Exception as exc:  # noqa: BLE001 - reported via .error and the log, not lost in a thread
            self.error = exc
            log.error("player %r stopped: %s", self.name, exc)

    def _publish(self) -> None:
        outlet, fs, speed = self._outlet, self.fs, self.speed
        deadline = time.monotonic() + self.wait_consumers
        while time.monotonic() < deadline and not outlet.wait_for_consumers(0.05):
            if self._stop.is_set():
                return
        t0_mono = time.monotonic()
        t0_lsl = self.t0_lsl = self._pylsl.local_clock()
        slot = 0  # published sample slots so far (rows + gap slots)
        last_row = None
        while True:
            for start, stop in self.recording.segments.tolist():
                if last_row is not None:
                    slot += self._gap_slots(last_row, start)
                for a in range(start, stop, self.chunk_size):
                    b = min(a + self.chunk_size, stop)
                    last = slot + (b - a) - 1  # slot of the chunk's last sample
                    if speed > 0:
                        delay = t0_mono + last / (fs * speed) - time.monotonic()
                        if delay > 0 and self._stop.wait(delay):
                            return
                    elif self._stop.is_set():
                        return
                    # One timestamp (of the last sample); liblsl stamps the others 1/fs apart.
                    outlet.push_chunk(self._data[a:b], t0_lsl + last / fs)
                    self.samples_pushed += b - a
                    slot = last + 1
                last_row = stop - 1
            if not self.loop or self._stop.is_set():
                return

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Player {self.name!r} {len(self.channels)} ch @ {self.fs:g} Hz, {state}>"


# --------------------------------------------------------------------------- CLI


def _speed(text: str) -> float:
    if text.strip().lower() == "max":
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a speed; use 1 (real time), 2, or max") from None
    return check_number(value, "speed", lo=0.0, exc=argparse.ArgumentTypeError, fix="1 is real time, max as fast as possible")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neurogrip stream",
                                description="Publish a recording as a live LSL stream (Ctrl-C to stop).")
    p.add_argument("recording", help="Kaggle _data.csv[.gz], Muse CSV or GAMEEMO CSV file")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"LSL stream name (default {DEFAULT_NAME})")
    p.add_argument("--type", default="EEG", dest="stype", help="LSL stream type (default EEG)")
    p.add_argument("--chunk", type=int, default=10, help="samples per pushed chunk (default 10)")
    p.add_argument("--speed", type=_speed, default=1.0, help="1 = real time (default), 2, ..., or max")
    p.add_argument("--loop", action="store_true", help="start again at the end")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--source-id", help="LSL source id (default neurogrip:NAME@HOST)")
    p.add_argument("--unit", default="auto", help="declared channel unit: auto (the recording's: microvolts, or "
                   "myo for the Myo armband), a word (microvolts, V) or an MNE exponent (-6, 0); '' declares none")
    p.add_argument("--scale", type=float, default=1.0,
                   help="publish the values times this (e.g. --scale 1e-6 --unit V for volts)")
    return p


def main(argv=None) -> int:
    """``neurogrip stream``: publish until the end (or --duration, Ctrl-C, SIGTERM); 0 on success."""
    args = build_parser().parse_args(argv)
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    player = None
    try:
        player = Player(args.recording, name=args.name, stype=args.stype, chunk_size=args.chunk,
                        speed=args.speed, loop=args.loop, source_id=args.source_id, unit=args.unit or None,
                        scale=args.scale)
        rec = player.recording
        player.start()
        print(f"publishing LSL stream '{player.name}' (type {player.stype}, {len(player.channels)} ch @ "
              f"{player.fs:g} Hz, {rec.n_samples / rec.fs:.1f} s{', looping' if player.loop else ''}) "
              f"from {rec.source}; read it with --source lsl:name={player.name}; Ctrl-C to stop", flush=True)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while player.running and not stop.is_set():
            left = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
            if left <= 0:
                break
            stop.wait(left)
    except KeyboardInterrupt:
        pass
    except (EdgeError, ValueError) as exc:
        print(f"neurogrip stream: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if player is not None:
            player.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if player is None:  # Ctrl-C while reading the recording
        return 130
    if player.error is not None:
        print(f"neurogrip stream: error: {player.error}", file=sys.stderr)
        return 1
    print(f"stopped after {player.samples_pushed} samples", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
