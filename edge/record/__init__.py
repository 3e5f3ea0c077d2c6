"""Guided recording sessions (``neurogrip record``): paradigms of cues, shown on the terminal,
recorded with the signal into an XDF file that ``calibrate``, ``train``, ``evaluate`` and
``replay:`` read."""

from edge.record.paradigm import BUILTIN, Cue, Paradigm, load_paradigm, parse_paradigm
from edge.record.recorder import Recorder, RecordResult, record

__all__ = ["BUILTIN", "Cue", "Paradigm", "RecordResult", "Recorder", "load_paradigm", "parse_paradigm", "record"]
