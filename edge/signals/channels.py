"""Channels: what a stream declares about them, and picking the ones a model needs by name.

:func:`lsl_channel_info` reads an LSL stream's ``desc/channels/channel/{label,type,unit}`` (the XDF
meta-data conventions, https://github.com/sccn/xdf/wiki/Meta-Data).  :func:`channel_map` picks the
bundle's channels by name: exactly, else by a common alias (case, a modality prefix "EEG Fp1", a
reference suffix "Fp1-REF"/"Fp1-A1", surrounding spaces).  :func:`check_signal_types` refuses a
stream, or a picked channel, that its producer declares as something other than a signal (markers,
triggers, an accelerometer).
"""

from __future__ import annotations

import logging
import re

import numpy as np

from edge.errors import SourceError

log = logging.getLogger(__name__)

# Declared stream or channel types (lower case) that carry no EEG/EMG: event markers and triggers
# (LSL "Markers", MNE "stim", mne-lsl's "annotations" stream) and motion or housekeeping sensors.
NON_SIGNAL_TYPES = frozenset({
    "marker", "markers", "stim", "trigger", "triggers", "trig", "event", "events", "annotation", "annotations",
    "acc", "accel", "accelerometer", "gyro", "gyroscope", "imu", "orientation", "quaternion", "battery",
    "status",
})
_PREFIX = re.compile(r"^(?:eeg|emg|exg|eog|ecg)[\s_:.-]+", re.IGNORECASE)  # "EEG Fp1", "EEG-Fp1"
# A reference after the name ("Fp1-REF", "Fp1-A1", "FP1-LE").  Not "-Cz": "C3-Cz" may be bipolar.
_REFERENCE = re.compile(r"[\s_-]+(?:ref|a1|a2|a1a2|m1|m2|m1m2|le|re|lm|rm|avg|ave|ar|car)$", re.IGNORECASE)
_aliases_logged: set[tuple] = set()


def lsl_channel_info(info, n_channels: int) -> tuple[list[str] | None, list[str | None], list[str | None]]:
    """``(labels, types, units)`` from an LSL stream info's ``desc/channels/channel``.

    Labels are None unless every channel has a distinct non-empty one; a type or unit is None where
    it is absent, and all are None when the description lists other than one entry per channel.
    """
    rows = []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty():
        rows.append([ch.child_value(key).strip() for key in ("label", "type", "unit")])
        ch = ch.next_sibling("channel")
    if len(rows) != n_channels:
        return None, [None] * n_channels, [None] * n_channels
    labels, types, units = ([row[k] for row in rows] for k in range(3))
    if not all(labels) or len(set(labels)) != n_channels:
        labels = None
    return labels, [t or None for t in types], [u or None for u in units]


def is_non_signal(declared_type) -> bool:
    """True for a declared type that carries no EEG/EMG (:data:`NON_SIGNAL_TYPES`)."""
    return declared_type is not None and str(declared_type).strip().lower() in NON_SIGNAL_TYPES


def check_signal_types(what: str, stream_type, channel_types, channels, picked=None) -> None:
    """Refuse a stream of a non-signal type, one whose channels are all declared non-signal, or (with
    ``picked``, the source columns a model reads) one whose picked channel is declared non-signal."""
    fix = "select the EEG/EMG stream (e.g. lsl:type=EEG or lsl:name=...; 'neurogrip doctor --source SPEC' shows it)"
    if is_non_signal(stream_type):
        raise SourceError(f"{what} is of type {stream_type!r}, which carries no EEG/EMG signal; {fix}")
    types = list(channel_types or [])
    if types and all(is_non_signal(t) for t in types):
        raise SourceError(f"{what} declares only non-signal channels (types {', '.join(sorted(set(types)))}); {fix}")
    bad = [f"{channels[j]!r} ({types[j]})" for j in (picked if types and picked is not None else [])
           if is_non_signal(types[j])]
    if bad:
        raise SourceError(f"{what} declares channel(s) {', '.join(bad)} that the model needs as non-signal; "
                          f"{fix}, or label the signal channels with the model's names")


def channel_key(name: str) -> str:
    """The name a channel is matched by when no stream channel has its exact name."""
    s = str(name).strip()
    s = _PREFIX.sub("", s, count=1) or s
    s = _REFERENCE.sub("", s) or s
    return s.strip().casefold()


def channel_map(source_channels, wanted_channels) -> np.ndarray:
    """Column indices that pick ``wanted_channels`` (in that order) out of ``source_channels``.

    An exact name always wins; a wanted channel without one is matched by :func:`channel_key`
    (e.g. bundle channel ``Fp1`` ← stream channel ``'EEG Fp1-REF'``), said once at INFO level.

    Raises
    ------
    SourceError
        Naming every wanted channel the source lacks, and the channels it has; a wanted channel
        that several stream channels match by alias (listing them); a wanted name given twice.
    """
    source_channels = [str(c) for c in source_channels]
    wanted_channels = [str(c) for c in wanted_channels]
    position: dict[str, int] = {}
    for i, name in enumerate(source_channels):
        position.setdefault(name, i)
    by_key: dict[str, list[int]] = {}
    if any(c not in position for c in wanted_channels):
        for i, name in enumerate(source_channels):
            by_key.setdefault(channel_key(name), []).append(i)
    idx, aliased, missing, ambiguous = [], [], [], []
    for c in wanted_channels:
        found = [position[c]] if c in position else by_key.get(channel_key(c), [])
        if len(found) == 1:
            idx.append(found[0])
            if c not in position:
                aliased.append((c, source_channels[found[0]]))
        elif found:
            ambiguous.append(f"{c} ({', '.join(repr(source_channels[i]) for i in found)})")
        else:
            missing.append(c)
    if missing:
        raise SourceError(f"the source lacks channel(s) {', '.join(missing)} that the model needs; it has "
                          f"{', '.join(source_channels) or 'no channels'}. Stream the montage the model "
                          "was trained on (or label the LSL channels with those names)")
    if ambiguous:
        raise SourceError(f"several stream channels match bundle channel(s) by alias: {'; '.join(ambiguous)}; "
                          "label the stream's channels with the model's exact names (or drop the duplicates)")
    dupes = sorted({c for c in source_channels if source_channels.count(c) > 1} & set(wanted_channels))
    if dupes:
        raise SourceError(f"the source has channel(s) {', '.join(dupes)} more than once; channel names "
                          "must be unique to pick channels by name")
    if aliased and tuple(aliased) not in _aliases_logged:
        _aliases_logged.add(tuple(aliased))
        log.info("matched by alias: %s", "; ".join(f"bundle channel {w} ← stream channel {s!r}" for w, s in aliased))
    return np.array(idx, dtype=np.intp)
