"""Where EEG/EMG comes from on the Pi: a live LSL stream, a BrainFlow board, the arm's own analog inputs,
a recording replay, or synthetic EEG.

A source is chosen by one URL-like spec string (:func:`open_source`; the format is in
:mod:`edge.sources.spec`)::

    lsl:type=EEG
    replay:rec/subj1_series7_data.csv.gz?speed=1&chunk=10
    synthetic:muse?state=relaxed&duration=30
    brainflow:board=cyton&serial_port=/dev/ttyUSB0
    arm:/dev/ttyACM0?channels=0-7&rate=200

Every source has the same small API (:class:`~edge.sources.base.Source`): ``channels``, ``fs``,
``kind``, ``read(timeout) -> Chunk | None``, ``close()``, its counters and its stall state.

Modules: :mod:`~edge.sources.base` (the API, stall logic), :mod:`~edge.sources.lsl` (live
streams, LSL timing), :mod:`~edge.sources.replay` (recordings and synthetic EEG, replay timing),
:mod:`~edge.sources.boards` (BrainFlow boards), :mod:`~edge.sources.arm` (the arm's microcontroller as the
front end; its clock mapping in :mod:`~edge.sources.arm_clock`), :mod:`~edge.sources.spec` (spec strings),
:mod:`~edge.signals.channels` (:func:`channel_map`).
"""

from edge.errors import SourceError, SourceSpecError
from edge.signals.channels import channel_map
from edge.sources.arm import ArmSource
from edge.sources.base import Chunk, Source, SourceCounters
from edge.sources.boards import BrainFlowSource, import_brainflow
from edge.sources.lsl import LSLSource, import_pylsl, lsl_channel_labels
from edge.sources.replay import ReplaySource, SyntheticSource
from edge.sources.spec import SCHEMES, open_source, parse_spec

__all__ = [
    "SCHEMES", "ArmSource", "BrainFlowSource", "Chunk", "LSLSource", "ReplaySource", "Source", "SourceCounters",
    "SourceError", "SourceSpecError", "SyntheticSource", "channel_map", "import_brainflow", "import_pylsl",
    "lsl_channel_labels", "open_source", "parse_spec",
]
