"""The ADC feed: samples for the simulated arm's analog inputs, as its simulators read them.

The format (``firmware/host/adc_feed.h``, ``firmware_bridge/README.md`` § "Feeding recordings into the
simulated ADC"): one ASCII line ``NGADC1 <rate_hz> <n_channels>``, then per sample ``n_channels``
little-endian u16 millivolts, input A0 first, until the end.  :func:`write_adc_feed` writes one to a file
or a pipe from rows of millivolts (no numpy needed); :func:`firmware_bridge.sim.start` takes a file or an
:class:`AdcFeed` (``adc=``).  Turning a recording's units into millivolts (a sensor's gain and bias) is the
caller's business: ``edge/sources/arm_feed.py`` does it for any recording neurogrip reads.
"""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Iterable, Sequence

# The ADC feed (firmware/host/adc_feed.h): its first line, its limits, and the simulated ADC's reference.
ADC_FEED_MAGIC = "NGADC1"
ADC_FEED_MAX_CHANNELS = 8
ADC_FEED_MAX_RATE_HZ = 100_000.0
#: The simulated ATmega328P's AVcc (the ADC's reference) in millivolts: both simulators convert
#: ``counts = min(1023, mV * 1023 // ADC_VREF_MV)``.
ADC_VREF_MV = 5000
_MV_MAX = 0xFFFF  # a feed value is a u16


def adc_counts(mv: int) -> int:
    """The ADC counts the simulated arm (simavr and the host build) reads for ``mv`` millivolts on an input."""
    return min(1023, int(mv) * 1023 // ADC_VREF_MV)


class AdcFeed:
    """Samples for the simulated analog inputs: ``rows`` of millivolts (one value per input, A0 first),
    ``rate_hz`` rows a second in simulated time.

    Parameters
    ----------
    rows : iterable of sequences of numbers
        Millivolts, rounded to whole ones; each in 0..65535 (the ADC reads 0..5000 mV: above, 1023).
        Read once, lazily (a generator works, so a long recording is never held twice); the first row
        is read here, to know the number of inputs.
    rate_hz : float
        Rows per second (0 < rate ≤ 100 000).
    n_channels : int, optional
        Values per row (1-8); default: the first row's.

    Raises
    ------
    ValueError
        No rows, a rate or a number of inputs out of range, or (while writing) a row of another length
        or a value that is no millivolt count of a u16.
    """

    def __init__(self, rows: Iterable[Sequence[float]], rate_hz: float, n_channels: int | None = None):
        if isinstance(rate_hz, bool) or not isinstance(rate_hz, (int, float)) \
                or not 0 < rate_hz <= ADC_FEED_MAX_RATE_HZ:
            raise ValueError(f"rate_hz must be a number in (0, {ADC_FEED_MAX_RATE_HZ:g}] Hz, got {rate_hz!r}")
        it = iter(rows)
        first = next(it, None)
        if first is None:
            raise ValueError("rows is empty: an ADC feed needs at least one row of millivolts")
        n = len(first) if n_channels is None else n_channels
        if not isinstance(n, int) or not 1 <= n <= ADC_FEED_MAX_CHANNELS:
            raise ValueError(f"n_channels must be 1-{ADC_FEED_MAX_CHANNELS} (inputs A0..A7), got {n!r}")
        self.rate_hz = float(rate_hz)
        self.n_channels = n
        self._rows = itertools.chain([first], it)
        self._row = struct.Struct(f"<{n}H")

    @property
    def header(self) -> bytes:
        """The feed's first line: ``NGADC1 <rate_hz> <n_channels>``."""
        return f"{ADC_FEED_MAGIC} {self.rate_hz:.12g} {self.n_channels}\n".encode("ascii")

    def _packed(self, block: int = 256):
        """The rows, packed, ``block`` at a time (bytes); checks each row as it goes."""
        pack, n, buf = self._row.pack, self.n_channels, []
        for k, row in enumerate(self._rows):
            if len(row) != n:
                raise ValueError(f"row {k} of the ADC feed has {len(row)} values, not {n}: one per input")
            mv = [round(v) for v in row]
            if min(mv) < 0 or max(mv) > _MV_MAX:
                raise ValueError(f"row {k} of the ADC feed holds {row!r}: millivolts must be 0-{_MV_MAX} "
                                 f"(the inputs read 0-{ADC_VREF_MV} mV); scale and clip the signal first")
            buf.append(pack(*mv))
            if len(buf) == block:
                yield b"".join(buf)
                buf = []
        if buf:
            yield b"".join(buf)

    def write(self, out) -> int:
        """Write the whole feed (header, then every row) to ``out``: a path, or a binary file or pipe
        (written as it goes, flushed at the end, not closed).  Returns the rows written."""
        if isinstance(out, (str, os.PathLike)):
            with open(out, "wb") as f:
                return self.write(f)
        out.write(self.header)
        return self.write_rows(out)

    def write_rows(self, out) -> int:
        """Write the rows only (after :attr:`header`, e.g. into a simulator that read it already) to the
        binary file or pipe ``out``, flushed at the end; returns how many."""
        rows = 0
        for data in self._packed():
            out.write(data)
            rows += len(data) // self._row.size
        out.flush()
        return rows


def write_adc_feed(out, rows: Iterable[Sequence[float]], rate_hz: float, n_channels: int | None = None) -> int:
    """Write ``rows`` of millivolts at ``rate_hz`` as an ADC feed (``NGADC1``) to ``out``, a path or a
    binary file or pipe; returns the rows written.  See :class:`AdcFeed` for the arguments::

        write_adc_feed("session.ngadc", ([2500 + 100 * ch for ch in range(8)] for _ in range(1000)), 200)
    """
    return AdcFeed(rows, rate_hz, n_channels).write(out)
