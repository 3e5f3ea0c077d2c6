"""``neurogrip record``: a guided session — cues on the terminal, the signal and the cue markers
written to an XDF file as they come (:class:`edge.recordings.xdf_writer.XdfWriter`).

Cue timing follows the *stream's* clock (its timestamps), not the wall clock: a cue starts when
the sample of its time arrives, so a replayed session (``replay:...?speed=max``) gets the same
cues, at the same samples, as a live one.  Markers are written with the timestamp of the first
sample of each cue.  What can go wrong is written into the file, never bridged:

* samples missing (a gap in timestamps, a dropped LSL chunk): a ``gap`` marker where it was
  noticed; the samples' own timestamps show the hole;
* the stream stalls: a ``stall`` marker, and ``resume`` when data returns; the cue schedule
  pauses with the stream's clock;
* Ctrl-C or SIGTERM: the file is closed valid, its footer says ``partial`` and why;
* the disk fills (or ``ulimit -f``): :class:`~edge.errors.RecordingWriteError`; the file keeps every
  complete chunk written before it (pyxdf and neurogrip read it), and has no footer when there was
  no room left for one;
* rows with NaN or infinite values (a dropped packet, a lead off) are written as they came and
  counted: the footer's ``invalid_rows``, the summary says so, and ``calibrate`` leaves them out.
"""

from __future__ import annotations

import bisect
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.errors import RecordingWriteError
from edge.record.display import CueDisplay
from edge.record.paradigm import Paradigm
from edge.recordings.xdf_writer import XdfWriter
from edge.tasks import get_task

INTERRUPTED = "interrupted (Ctrl-C)"
TERMINATED = "terminated (SIGTERM)"


@dataclass
class RecordResult:
    path: Path
    samples: int = 0
    seconds: float = 0.0
    cues_done: int = 0
    cues_total: int = 0
    gaps: int = 0
    stalls: int = 0
    dropped: int = 0
    invalid_rows: int = 0  # rows with NaN or infinite values, written as they came
    partial: bool = False
    reason: str = ""
    markers: list = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        """Stopped by Ctrl-C or SIGTERM."""
        return self.partial and self.reason in (INTERRUPTED, TERMINATED)

    def summary(self) -> str:
        state = f"PARTIAL ({self.reason})" if self.partial else "complete"
        invalid = (f"; {self.invalid_rows} row(s) with NaN or infinite values (calibrate leaves them out; "
                   "check the electrodes)") if self.invalid_rows else ""
        return (f"{self.path}: {state}; {self.samples} samples ({self.seconds:.1f} s), cues {self.cues_done}/"
                f"{self.cues_total}, {self.gaps} gap(s), {self.stalls} stall(s), {self.dropped} sample(s) "
                f"dropped{invalid}")


class Recorder:
    """Record ``source`` under ``paradigm`` into ``out`` (an .xdf file).

    Parameters
    ----------
    source : edge.sources.Source
        Already open.
    paradigm : Paradigm
    out : path
    display : CueDisplay, optional
        Where cues are shown (default: the terminal, stderr).
    """

    def __init__(self, source, paradigm: Paradigm, out, display: CueDisplay | None = None):
        self.source, self.paradigm, self.out = source, paradigm, Path(out)
        self.display = display or CueDisplay(sys.stderr)
        self._tap = getattr(self.display, "chunk", None)  # a display that also shows the signal (the live view)
        self._starts = paradigm.starts()

    def run(self, read_timeout: float = 0.1) -> RecordResult:
        """Record until the paradigm ends, the source is exhausted, or Ctrl-C."""
        self.result = res = RecordResult(self.out, cues_total=len(self.paradigm.cues))
        self._t_first = self._last_ts = None
        self._cue, self._in_stall = -1, False
        self._writer = XdfWriter(self.out)
        try:
            self._open_streams()
            while self._step(self.source.read(read_timeout)):
                pass
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (neurogrip record raises it with its reason)
            res.partial, res.reason = True, (str(exc.args[0]) if exc.args else INTERRUPTED)
        except BaseException as exc:  # a write that failed, a source that failed: the file is closed valid
            res.partial, res.reason = True, f"stopped: {exc}"
            raise
        finally:
            self._close()
        self.display.done(res)
        return res

    def _open_streams(self) -> None:
        src, par = self.source, self.paradigm
        task = get_task(par.task)
        # an undeclared unit is the task's own, as the runtime assumes for an undeclared stream
        chans = [{"label": c, "unit": (src.units[i] if i < len(src.units) and src.units[i] else task.unit),
                  "type": task.modality.upper()} for i, c in enumerate(src.channels)]
        self._sig = self._writer.add_stream(f"neurogrip-{par.task}", task.modality.upper(), len(src.channels),
                                            src.fs, channels=chans, source_id=f"neurogrip-record-{src.kind}",
                                            desc={"paradigm": par.name, "task": par.task})
        self._mk = self._writer.add_stream("neurogrip-cues", "Markers", 1, 0.0, "string",
                                           source_id="neurogrip-record-cues", desc={"paradigm": par.name})

    def _marker(self, ts: float, text: str) -> None:
        self._writer.write_samples(self._mk, np.array([ts]), [[text]])
        self.result.markers.append((ts, text))

    def _step(self, chunk) -> bool:
        """Handle one read; False when the recording is over."""
        src, par, res = self.source, self.paradigm, self.result
        if chunk is None:
            if src.exhausted:
                if self._cue < len(par.cues) - 1 or self._t_first is None:
                    res.partial, res.reason = True, "the source ended before the paradigm"
                elif self._last_ts is not None:  # it ended inside the last cue: that cue is done
                    self._marker(self._last_ts, "end")
                return False
            if src.stalled and not self._in_stall and self._last_ts is not None:
                self._in_stall = True
                res.stalls += 1
                self._marker(self._last_ts, "stall")
            t = 0.0 if self._t_first is None else self._last_ts - self._t_first
            self.display.show(par, max(self._cue, 0), t, stalled=self._in_stall)
            return True
        ts = chunk.timestamps
        if self._t_first is None:
            self._t_first = float(ts[0])
        if self._in_stall:
            self._in_stall = False
            self._marker(float(ts[0]), "resume")
        if chunk.discontinuity and self._last_ts is not None:
            res.gaps += 1
            self._marker(float(ts[0]), "gap")
        # the cues that start inside this chunk, each at its own first sample
        rel = ts - self._t_first
        end_cue = bisect.bisect_right(self._starts, float(rel[-1])) - 1
        for k in range(self._cue + 1, end_cue + 1):
            i = int(np.searchsorted(rel, self._starts[k] - 1e-9))
            self._marker(float(ts[min(i, len(ts) - 1)]), par.cues[k].label)
        keep = rel < par.seconds
        if keep.any():
            kept = chunk.samples[keep]
            res.invalid_rows += int((~np.isfinite(kept).all(axis=1)).sum())
            self._writer.write_samples(self._sig, ts[keep], kept)
            self._last_ts = float(ts[keep][-1])
        res.samples += int(keep.sum())
        if self._tap is not None:
            self._tap(chunk)
        self._cue = min(end_cue, len(par.cues) - 1)
        res.cues_done = self._cue + 1 if self._cue >= 0 else 0
        self.display.show(par, max(self._cue, 0), float(rel[-1]))
        if keep.all():
            return True
        self._marker(float(ts[int(np.argmin(keep))]), "end")
        res.cues_done = len(par.cues)
        return False

    def _close(self) -> None:
        res = self.result
        res.dropped = int(getattr(self.source.counters, "dropped", 0))
        res.seconds = (0.0 if self._t_first is None or self._last_ts is None
                       else self._last_ts - self._t_first + 1.0 / self.source.fs)
        footer = {"paradigm": self.paradigm.name, "cues_done": str(res.cues_done), "cues_total": str(res.cues_total),
                  "gaps": str(res.gaps), "stalls": str(res.stalls), "dropped": str(res.dropped),
                  "invalid_rows": str(res.invalid_rows),
                  "partial": "true" if res.partial else "false"}
        if res.reason:
            footer["reason"] = res.reason
        try:
            self._writer.close(footer=footer)
        except RecordingWriteError:
            pass  # the writer keeps what it wrote readable; the first failure is what the user sees


def record(source_spec: str, paradigm, out, *, display: CueDisplay | None = None, view: str | None = None) -> RecordResult:
    """Open ``source_spec``, record ``paradigm`` (a :class:`Paradigm`, a built-in name or a TOML
    file) into ``out``; the source is closed at the end.  ``view``: ``[ADDR:]PORT`` of the live view
    (the cue on a phone, :func:`edge.view.record_view`)."""
    from edge.record.paradigm import load_paradigm
    from edge.sources import open_source

    par = paradigm if isinstance(paradigm, Paradigm) else load_paradigm(paradigm)
    if view is not None:
        from edge.view import parse_address

        parse_address(view)  # a malformed address is refused before the source opens
    src = open_source(source_spec)
    try:
        if view is None:
            return Recorder(src, par, out, display).run()
        from edge.view import record_view

        with record_view(view, src, par, display or CueDisplay(sys.stderr)) as shown:
            return Recorder(src, par, out, shown).run()
    finally:
        src.close()
