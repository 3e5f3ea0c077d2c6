"""The edge runtime: source → fixed-point chain → windows → int8 model → decisions → arm, on budget.

One concern per module, as the style guide asks:

* :mod:`edge.runtime.pipeline` — :class:`Pipeline`, the processing of one chunk (no I/O, no
  threads) and :func:`replay_outputs`;
* :mod:`edge.runtime.loop` — :class:`Runtime`, the live loop and its safety rules;
* :mod:`edge.runtime.report` — :class:`RunSummary`, stage timings, :func:`format_report`;
* :mod:`edge.runtime.outputs` — the JSON-lines log and the LSL marker outlet;
* :mod:`edge.runtime.console` — the per-command lines a terminal shows, printed off the loop's thread;
* :mod:`edge.runtime.serve` — :func:`serve` and :func:`open_arm`, the wiring the CLI calls.

The numbers that define its behaviour are in :mod:`edge.config` (:class:`RuntimeConfig`).
"""

from edge.config import STAGES, RuntimeConfig
from edge.errors import RunError
from edge.runtime.loop import Runtime
from edge.runtime.outputs import JsonLog, MarkerOutlet
from edge.runtime.pipeline import Pipeline, WindowResult, replay_outputs
from edge.runtime.report import RunSummary, format_report, peak_rss_mb
from edge.runtime.serve import open_arm, serve

__all__ = ["STAGES", "JsonLog", "MarkerOutlet", "Pipeline", "RunError", "RunSummary", "Runtime", "RuntimeConfig",
           "WindowResult", "format_report", "open_arm", "peak_rss_mb", "replay_outputs", "serve"]
