"""The cue screen of ``neurogrip record``: the cue in large letters, a countdown to the next one
and a progress bar, redrawn at most ``fps`` times a second; on a non-terminal (a log, a test) one
line per cue."""

from __future__ import annotations

import time

_BAR = 40


class CueDisplay:
    """Shows cues on ``stream`` (a text file: a terminal gets the full-screen view)."""

    def __init__(self, stream, fps: float = 5.0):
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._period = 1.0 / fps
        self._last = 0.0
        self._cue = None

    def show(self, paradigm, cue: int, t: float, stalled: bool = False) -> None:
        """Cue ``cue`` is on, ``t`` seconds into the session."""
        new = cue != self._cue
        now = time.monotonic()
        if not new and not stalled and now - self._last < self._period:
            return
        self._last, self._cue = now, cue
        c = paradigm.cues[cue]
        starts = paradigm.starts()
        left = max(0.0, starts[cue] + c.seconds - t)
        if not self.tty:
            if new:
                self.stream.write(f"[record] {t:7.1f} s  cue {cue + 1}/{len(paradigm.cues)}: {c.text} "
                                  f"({c.label}, {c.seconds:g} s)\n")
            elif stalled:
                self.stream.write("[record] the stream stalled: waiting for data (marked in the file)\n")
            self.stream.flush()
            return
        frac = min(1.0, t / paradigm.seconds) if paradigm.seconds else 1.0
        nxt = paradigm.cues[cue + 1].text if cue + 1 < len(paradigm.cues) else "the end"
        bar = "#" * int(frac * _BAR) + "-" * (_BAR - int(frac * _BAR))
        lines = ["\x1b[2J\x1b[H", "",
                 # DEC double-height lines (top half, bottom half): large letters in any VT100-like terminal
                 f"\x1b#3\x1b[1m  {c.text.upper()}\x1b[0m",
                 f"\x1b#4\x1b[1m  {c.text.upper()}\x1b[0m", "",
                 f"  {left:4.1f} s left     next: {nxt}", "",
                 (f"  [{bar}] {frac:4.0%}   cue {cue + 1}/{len(paradigm.cues)}   "
                 f"{t:5.0f} / {paradigm.seconds:.0f} s")]
        if stalled:
            lines.append("\n  \x1b[33mTHE STREAM STALLED: waiting for data (marked in the file)\x1b[0m")
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()

    def done(self, result) -> None:
        self.stream.write(("\n" if self.tty else "") + f"[record] {result.summary()}\n")
        self.stream.flush()
