"""The SAMPLES stream of the arm's analog inputs (PROTOCOL.md § 5): STREAM_START's payload, the link's
byte budget (computed exactly as the firmware computes it, ``firmware/core/ng_stream.c``), and the
SAMPLES payload with its 10-bit packing.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from firmware_bridge.config import BAUDRATE
from firmware_bridge.errors import ProtocolError
from firmware_bridge.protocol.frames import CRC_SIZE, HEADER_SIZE, MAX_PAYLOAD

# Mirrored from firmware/core/ng_config.h (tests/firmware_bridge/test_protocol.py checks they agree).
LINK_BAUD = BAUDRATE           # the firmware's UART (config.BAUDRATE), 8N1: 10 bits per byte on the wire
ADC_CHANNELS = 8               # A0..A7 (A6/A7 only on the TQFP/QFN Nano and Pro Mini)
ADC_MAX = 1023                 # 10-bit counts
STREAM_TICK_HZ = 1000          # scans start on the 1 kHz tick: a rate must divide it
STREAM_RATE_MAX_HZ = 1000
STREAM_SPAN_MS = 5             # a SAMPLES frame holds at most this much time
STREAM_RESERVE_BPS = 2000      # bytes/s kept for the replies (STATUS to heartbeats, ACKs)
STREAM_LOAD_PCT = 80           # a stream plus the reserve may use this share of the line
SAMPLES_HEADER_SIZE = 7        # first_sample u32, stream u8, channel_mask u8, n_scans u8
_SAMPLES_WIRE_OVERHEAD = HEADER_SIZE + CRC_SIZE + 2  # + the one COBS code byte and the delimiter
_SAMPLES_MAX_VALUES = (MAX_PAYLOAD - SAMPLES_HEADER_SIZE) * 8 // 10  # 20 values per frame


def channel_mask(channels: Iterable[int]) -> int:
    """The channel mask of STREAM_START for ADC inputs ``channels`` (e.g. ``range(8)`` -> 0xFF)."""
    mask = 0
    for ch in channels:
        if not isinstance(ch, int) or isinstance(ch, bool) or not 0 <= ch < ADC_CHANNELS:
            raise ValueError(f"channels must be ADC inputs 0..{ADC_CHANNELS - 1} (A0..A{ADC_CHANNELS - 1}), got {ch!r}")
        mask |= 1 << ch
    return mask


def mask_channels(mask: int) -> tuple[int, ...]:
    """The ADC inputs of a channel mask, ascending: the order of the values in every scan."""
    return tuple(ch for ch in range(ADC_CHANNELS) if mask >> ch & 1)


def _check_stream_args(channel_mask: int, rate_hz: int) -> int:
    """Validate STREAM_START's fields as the firmware does (NACK BAD_ARG); return the channel count."""
    for name, v in (("channel_mask", channel_mask), ("rate_hz", rate_hz)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if not 1 <= channel_mask < 1 << ADC_CHANNELS:
        raise ValueError(f"channel_mask must select 1 to {ADC_CHANNELS} ADC inputs (1..0x{(1 << ADC_CHANNELS) - 1:02X}, "
                         f"bit i = input Ai; channel_mask(range(n)) builds one), got 0x{channel_mask:X}")
    if not 1 <= rate_hz <= STREAM_RATE_MAX_HZ or STREAM_TICK_HZ % rate_hz:
        rates = [r for r in range(STREAM_RATE_MAX_HZ, 0, -1) if STREAM_TICK_HZ % r == 0]
        raise ValueError(f"rate_hz must divide {STREAM_TICK_HZ} (the firmware's scan tick): one of {rates[:8]} ..., "
                         f"got {rate_hz}; stream faster and let the chain decimate")
    return len(mask_channels(channel_mask))


def pack_stream_start(channel_mask: int, rate_hz: int) -> bytes:
    """Payload of STREAM_START: channel mask, reserved, rate (Hz).

    The firmware re-checks everything, the link budget included (:func:`stream_budget`): a stream
    that does not fit is refused with NACK BUDGET.

    Raises
    ------
    ValueError
        A field the firmware would refuse with NACK BAD_ARG (the message names the fix).
    """
    _check_stream_args(channel_mask, rate_hz)
    return struct.pack("<BBH", channel_mask, 0, rate_hz)


def scans_per_frame(n_channels: int, rate_hz: int) -> int:
    """Scans in each SAMPLES frame: as many as fit the payload and STREAM_SPAN_MS of time, at least 1."""
    return max(1, min(rate_hz * STREAM_SPAN_MS // 1000, _SAMPLES_MAX_VALUES // n_channels))


def samples_payload_size(n_channels: int, n_scans: int) -> int:
    """Payload length of a SAMPLES frame: the header, then ``n_scans * n_channels`` 10-bit values."""
    return SAMPLES_HEADER_SIZE + (n_scans * n_channels * 10 + 7) // 8


@dataclass(frozen=True)
class StreamBudget:
    """What a stream costs the link, computed as the firmware computes it (PROTOCOL.md section 5).

    ``needed_bps`` is what the stream sends (bytes per second on the wire, rounded up);
    ``available_bps`` what a stream may use at ``baudrate`` (STREAM_LOAD_PCT % of the line less
    STREAM_RESERVE_BPS for the replies).  The firmware refuses STREAM_START with NACK BUDGET exactly
    when ``fits`` is false.
    """

    channel_mask: int
    rate_hz: int
    baudrate: int
    n_channels: int
    scans_per_frame: int
    frame_bytes: int  # one full SAMPLES frame on the wire
    needed_bps: int
    available_bps: int

    @property
    def fits(self) -> bool:
        return self.needed_bps <= self.available_bps

    @property
    def problem(self) -> str | None:
        """None when the stream fits; otherwise why not, and the fix."""
        if self.fits:
            return None
        return (f"{self.n_channels} channels at {self.rate_hz} Hz need {self.needed_bps} B/s on the link, but "
                f"{self.baudrate} baud leaves {self.available_bps} B/s for a stream ({STREAM_LOAD_PCT} % of the "
                f"line less {STREAM_RESERVE_BPS} B/s for replies): stream fewer channels or a lower rate, or "
                f"run the link at {LINK_BAUD} baud")


def stream_budget(channel_mask: int, rate_hz: int, baudrate: int = LINK_BAUD) -> StreamBudget:
    """The link budget of streaming ``channel_mask`` at ``rate_hz`` over a ``baudrate`` UART.

    Raises
    ------
    ValueError
        The mask or rate is one the firmware refuses with NACK BAD_ARG.
    """
    n = _check_stream_args(channel_mask, rate_hz)
    if not isinstance(baudrate, int) or isinstance(baudrate, bool) or baudrate <= 0:
        raise ValueError(f"baudrate must be a positive int (the firmware's is {LINK_BAUD}), got {baudrate!r}")
    k = scans_per_frame(n, rate_hz)
    wire = samples_payload_size(n, k) + _SAMPLES_WIRE_OVERHEAD
    usable = baudrate // 10 * STREAM_LOAD_PCT // 100
    return StreamBudget(channel_mask, rate_hz, baudrate, n, k, wire, -(-rate_hz * wire // k),
                        max(0, usable - STREAM_RESERVE_BPS))


@dataclass(frozen=True)
class Samples:
    """One SAMPLES frame's payload: consecutive scans of the streamed ADC inputs.

    ``values[i][j]`` is scan ``first_sample + i`` of input ``channels[j]`` in ADC counts (0..1023,
    0 V .. the 5 V reference).  ``stream`` is the seq of the STREAM_START that began the stream; the
    frame's own seq counts the stream's frames (mod 256).  A host sees every loss as a
    ``first_sample`` that is not the previous frame's :attr:`next_sample`.
    """

    first_sample: int
    stream: int
    channel_mask: int
    values: tuple[tuple[int, ...], ...]

    @property
    def channels(self) -> tuple[int, ...]:
        return mask_channels(self.channel_mask)

    @property
    def n_scans(self) -> int:
        return len(self.values)

    @property
    def next_sample(self) -> int:
        """Index of the scan that follows this frame's last (mod 2**32)."""
        return (self.first_sample + len(self.values)) & 0xFFFFFFFF

    @classmethod
    def from_payload(cls, p: bytes) -> Samples:
        """Decode a SAMPLES payload.

        Raises
        ------
        ProtocolError
            The header is inconsistent (no channel, no scan) or the payload's length is not the one
            its header implies.
        """
        if len(p) < SAMPLES_HEADER_SIZE:
            raise ProtocolError(f"SAMPLES with {len(p)} payload bytes is shorter than its {SAMPLES_HEADER_SIZE}-byte "
                                "header: host and firmware disagree on the protocol; flash the matching firmware")
        first, stream, mask, n_scans = struct.unpack_from("<IBBB", p)
        n = len(mask_channels(mask))
        if n == 0 or n_scans == 0 or len(p) != samples_payload_size(n, n_scans):
            raise ProtocolError(f"SAMPLES header (mask 0x{mask:02X}, {n_scans} scans) does not match its "
                                f"{len(p)} payload bytes: host and firmware disagree on the protocol; flash the "
                                "matching firmware")
        acc = int.from_bytes(p[SAMPLES_HEADER_SIZE:], "little")
        flat = [(acc >> (10 * i)) & ADC_MAX for i in range(n * n_scans)]
        return cls(first, stream, mask, tuple(tuple(flat[i:i + n]) for i in range(0, len(flat), n)))


def pack_samples(first_sample: int, stream: int, channel_mask: int, scans: Sequence[Sequence[int]]) -> bytes:
    """Payload of a SAMPLES frame, as the firmware builds it (for tests and simulators)."""
    n = len(mask_channels(channel_mask))
    if not 0 <= first_sample <= 0xFFFFFFFF or not 0 <= stream <= 0xFF or n == 0 or not scans:
        raise ValueError("first_sample must be a u32, stream a u8, channel_mask non-zero and scans non-empty")
    acc, i = 0, 0
    for scan in scans:
        if len(scan) != n:
            raise ValueError(f"each scan must hold {n} values (one per channel of mask 0x{channel_mask:02X}), "
                             f"got {len(scan)}")
        for v in scan:
            if not 0 <= v <= ADC_MAX:
                raise ValueError(f"ADC values must be 0..{ADC_MAX}, got {v}")
            acc |= v << (10 * i)
            i += 1
    size = samples_payload_size(n, len(scans))
    if size > MAX_PAYLOAD:
        raise ValueError(f"{len(scans)} scans of {n} channels need {size} payload bytes, more than {MAX_PAYLOAD}")
    return struct.pack("<IBBB", first_sample, stream, channel_mask, len(scans)) + acc.to_bytes(
        size - SAMPLES_HEADER_SIZE, "little")
