"""Training data: a task's configuration (:class:`TaskConfig`) and the windows of recordings through
the chain it designs.

The chain is designed here (scipy, :mod:`training.filter_design`); everything after it is the
edge's: the windows are cut by :func:`edge.evaluation.windows.window_recordings`, the function
``neurogrip evaluate`` cuts a bundle's windows with, and the recordings are read by
:mod:`edge.evaluation.datasets`.  So no second preprocessing path exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.chain.signal_chain import SignalChain
from edge.evaluation.windows import WindowSet, window_recordings
from edge.tasks import Task, get_task
from training.filter_design import FilterSpec, design_signal_chain


@dataclass(frozen=True)
class TaskConfig:
    """What defines a task's inputs; stored in the bundle through the chain and window sections.

    ``window_ms`` and ``stride_ms`` are converted to output-rate samples.  ``eval_stride_ms`` is
    the decision cadence the runtime uses (≤ 50 ms, docs/design.md §3); training may subsample
    windows more sparsely (``train_stride_ms``) since neighbours are near duplicates.
    """

    task: str
    filters: tuple[FilterSpec, ...]
    factor: int
    window_ms: float
    stride_ms: float
    train_stride_ms: float
    clip: float | None = 8.0  # normalised input bound (≈ 8 σ): see edge.model.inputs.normalise_windows
    features: bool = False    # model input = edge.model.inputs window features instead of raw windows

    @classmethod
    def of(cls, task: Task) -> TaskConfig:
        """The training configuration of a registered task (:mod:`edge.tasks`)."""
        return cls(task.name, tuple(FilterSpec(**dict(f)) for f in task.filters), task.factor, task.window_ms,
                   task.stride_ms, task.train_stride_ms, task.clip, task.features)

    def factor_for(self, fs: float) -> int:
        """The decimation factor for input rate ``fs``: at most ``factor``, and never so large that
        the chain's low-pass would alias (GAMEEMO's 128 Hz is not decimated; Muse's 256 Hz is)."""
        lows = [f.freqs[0] for f in self.filters if f.kind == "lowpass"]
        if not lows:
            return 1
        return max(1, min(self.factor, int(0.8 * fs / (2 * min(lows)))))

    def window_samples(self, fs: float) -> int:
        return round(self.window_ms * 1e-3 * fs / self.factor_for(fs))

    def stride_samples(self, fs: float, train: bool = False) -> int:
        ms = self.train_stride_ms if train else self.stride_ms
        return max(1, round(ms * 1e-3 * fs / self.factor_for(fs)))


# The tasks' chains and windows are data in the edge's task registry (edge/tasks.py, where the
# reasons for each number are); training designs the filters with scipy.
GRASP_LIFT = TaskConfig.of(get_task("grasp-lift"))
EMOTION = TaskConfig.of(get_task("emotion"))
TASKS = {cfg.task: cfg for cfg in (GRASP_LIFT, EMOTION)}


def build_windows(recordings, config: TaskConfig, label_names, *, train: bool = False,
                  classes: bool = False) -> tuple[WindowSet, SignalChain]:
    """Windows for a list of recordings (all with the same channels and rate) through the chain
    ``config`` designs for their rate, at ``config``'s window geometry (its training stride with
    ``train``): :func:`edge.evaluation.windows.window_recordings`, whose ``classes`` it takes.
    Returns the windows and the chain (the bundle's)."""
    recordings = list(recordings)
    if not recordings:
        raise ValueError("recordings: nothing to window")
    first = recordings[0]
    chain = design_signal_chain(config.filters, first.fs, len(first.channels), config.factor_for(first.fs))
    length, stride = config.window_samples(first.fs), config.stride_samples(first.fs, train)
    return window_recordings(recordings, chain, length, stride, label_names, classes=classes), chain
