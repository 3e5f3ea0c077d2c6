"""Pipeline: one chunk through the bundle's processing, with no I/O and no threads.

Channel mapping by name, sample validation, :class:`edge.chain.signal_chain.SignalChain`,
:class:`edge.chain.signal_chain.WindowBuffer`, the model input (:mod:`edge.model.inputs`),
:class:`edge.model.inference.Int8Model` and :class:`edge.decision.Decider`.  Each window's stage times
are recorded.  Tests feed it chunks and assert on what comes out; the live loop
(:mod:`edge.runtime.loop`) and offline evaluation both run it.

A window with NaN/inf or out-of-range samples never produces a command: the chain and window
buffer restart after such samples, as after a gap, and the fault is counted.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from edge.bundle import Bundle
from edge.config import FLAT_PTP
from edge.decision import ArmState, Decider
from edge.errors import DecisionError, RunError
from edge.model.inference import dequantise
from edge.sources import ReplaySource, channel_map

log = logging.getLogger(__name__)


@dataclass
class WindowResult:
    """One window through the pipeline."""

    t_end: float                 # stream timestamp (s) of the window's last sample
    index_end: int               # source sample index of the window's last sample
    t_received: float            # time.monotonic() when its last chunk arrived
    outputs: np.ndarray          # raw int8 model outputs
    probs: np.ndarray            # dequantised
    decision: object             # edge.decision.Decision
    # filter: the chunk through the chain and the window buffer; infer: model input, invoke and
    # dequantisation; decide: the decision policy (infer and decide per window of the chunk).
    stages_ms: dict = field(default_factory=dict)
    labels: np.ndarray | None = None  # truth at the last sample when replaying a labelled recording


class Pipeline:
    """Bundle-driven processing of chunks (no I/O).

    Parameters
    ----------
    bundle : Bundle
    source_channels : sequence of str
        The stream's channel names; the bundle's channels are picked by name.
    fs : float
        The stream's nominal rate; must equal the bundle's.
    drop_stale : bool
        When a chunk yields several windows, run only the newest (the live rule).  Offline
        evaluation turns this off to get every window.
    """

    def __init__(self, bundle: Bundle, source_channels, fs: float, *, drop_stale: bool = True,
                 num_threads: int = 1, reference_kernels: bool = False):
        if abs(float(fs) - bundle.fs) > 1e-6 * bundle.fs:
            raise RunError(f"the stream runs at {fs:g} Hz but the bundle expects {bundle.fs:g} Hz; "
                                "use a bundle trained for this headset or resample upstream")
        self.bundle = bundle
        self.idx = channel_map(list(source_channels), bundle.channels)
        self._identity = bool(np.array_equal(self.idx, np.arange(len(source_channels))))
        self.chain = bundle.signal_chain()
        self.buf = bundle.window_buffer()
        self.model_input = bundle.model_input_stage()
        self.model = bundle.model(num_threads=num_threads, reference_kernels=reference_kernels)
        policy = bundle.decision_policy()
        self.decider = Decider(policy)
        # The arm's state (edge.decision.sequence): a command not valid next is held, not sent.
        # Without an arm (offline, or arm "none") a passed command counts as done at once; with one,
        # the runtime confirms it when the arm acknowledged it (auto_confirm False).
        self.arm_state = ArmState(policy.sequence)
        self.auto_confirm = True
        if policy.moves_arm and policy.sequence is None:
            log.warning("bundle %s drives the arm but carries no arm-state rules (decision.sequence): every command "
                        "is valid in every state; re-export it with this neurogrip to get them", bundle.path)
        # int8 → probability as a 256-entry table (indexed by the byte): the same numbers as
        # dequantise(), without its per-call overhead.
        self._dequantise = dequantise(np.arange(256, dtype=np.uint8).view(np.int8), *bundle.output_quant)
        self.factor = self.chain.factor
        self.drop_stale = drop_stale
        self.faults: Counter = Counter()
        self.dropped_windows = 0
        self.windows = 0
        self._reset_index = 0  # source sample index where the chain was last reset
        self._next_index = None
        self._last_t = -float("inf")  # the newest timestamp accepted
        self._max_step = 1.5 / bundle.fs  # a larger timestamp step inside a chunk is a gap
        self.valid_samples = 0  # finite, in-range samples seen (the runtime's "EEG is flowing" clock)
        # Set by the runtime for a chunk whose data are too old (or ahead of time: edge/runtime/rate.py):
        # its windows go through chain and model and reach the decider as invalid windows (its
        # no-decision path: votes and dwell forgotten, latches and refractory times kept).
        self.untimely = False

    def filtered_tail(self, since: int) -> tuple[np.ndarray, int]:
        """A copy of the chain's output (decimated) written to the window buffer after its sample count
        ``since`` (as much of it as the buffer still holds), and the count now: the live view reads the
        signal at its own rate (edge/view/feed.py), so nothing is copied per chunk."""
        buf = self.buf
        count, fill = buf.count, buf._fill
        n = min(count - since if 0 <= since <= count else count, fill)
        return buf._buf[fill - n:fill].copy(), count

    def reset(self, at_index: int) -> None:
        """Restart chain and windows after a gap or bad samples.

        The decision stage only loses its hysteresis, votes and dwell (:meth:`Decider.interrupt`):
        latches and refractory times survive, so a glitchy electrode cannot re-arm a command.
        """
        self.chain.reset()
        self.buf.reset()
        self.decider.interrupt()
        self._reset_index = at_index

    def process(self, chunk) -> list[WindowResult]:
        """Run one source chunk; returns the windows it completed (with decisions)."""
        t0 = time.perf_counter()
        n = chunk.n
        ts = chunk.timestamps
        # Time must move forward: a clock that jumps back or repeats (a misbehaving producer) gives
        # windows of unknown timing, so the chunk is dropped, counted, and the chain restarts.
        if n:  # first and last only (numpy per chunk would cost more than the check is worth);
            # disorder inside a chunk is caught by the Decider's own check, in _windows
            first, last = float(ts[0]), float(ts[-1])
            # written as "not (later)" so that a NaN stamp (liblsl passes them through) is refused too
            if not first > self._last_t or (n > 1 and not last > first):
                return self._bad_time(chunk)
            self._last_t = last
        x = chunk.samples if self._identity else chunk.samples[:, self.idx]
        if chunk.discontinuity or (self._next_index is not None and chunk.first_index != self._next_index):
            self._next_index = chunk.first_index + n
            return self._after_gap(chunk, x, t0)
        self._next_index = chunk.first_index + n
        # The usual case, one C call: validate, quantise, filter, decimate (None: a bad sample).
        y = self.chain.process_valid(x)
        if y is None:
            return self._clean(chunk, x, 0, n, t0)
        self.valid_samples += n
        return self._windows(chunk, y, t0)

    def _bad_time(self, chunk) -> list[WindowResult]:
        self.faults["timestamps"] += 1
        backwards = float(chunk.timestamps[0]) < self._last_t
        self._next_index = chunk.first_index + chunk.n
        self.reset(self._next_index)
        if backwards:  # a new time base (the producer's clock was reset): decisions restart with it
            self.decider.reset()
        finite = chunk.timestamps[np.isfinite(chunk.timestamps)]
        if len(finite):  # NaN stamps move nothing: the next chunk is judged against the last real time
            self._last_t = max(self._last_t, float(finite.max())) if not backwards else float(finite.max())
        return []

    def _after_gap(self, chunk, x, t0: float) -> list[WindowResult]:
        self.faults["discontinuity"] += 1
        self.reset(chunk.first_index)
        # Samples may be missing inside the chunk too (an LSL read that spans a drop): restart
        # at every timestamp step as well, so no window or filter state bridges a gap.
        cuts = np.flatnonzero(np.diff(chunk.timestamps) > self._max_step) + 1
        bounds = [0, *cuts.tolist(), chunk.n]
        results: list[WindowResult] = []
        for k, (a, b) in enumerate(itertools.pairwise(bounds)):
            if k:
                self.reset(chunk.first_index + a)
            results += self._clean(chunk, x, a, b, t0 if k == 0 else time.perf_counter())
        return results

    def _clean(self, chunk, x, a: int, b: int, t0: float) -> list[WindowResult]:
        """Rows a..b of a chunk: valid samples run, NaN/inf/out-of-range ones restart the chain."""
        xs = x[a:b]
        y = self.chain.process_valid(xs)
        if y is not None:
            self.valid_samples += b - a
            return self._windows(chunk, y, t0)
        bad = ~np.isfinite(xs).all(axis=1)
        finite = np.where(bad[:, None], 0.0, xs)
        bad |= (np.abs(finite) >= self.chain.input_limit).any(axis=1)  # the int32 input would saturate
        first, last = int(np.argmax(bad)), int(len(bad) - 1 - np.argmax(bad[::-1]))
        n_nan = int((~np.isfinite(xs[bad])).any(axis=1).sum())
        if n_nan:
            self.faults["nan"] += n_nan
        if int(bad.sum()) - n_nan:
            self.faults["saturated"] += int(bad.sum()) - n_nan
        self.valid_samples += first + (len(bad) - 1 - last)
        results = self._run(chunk, xs[:first], t0)
        self.reset(chunk.first_index + a + last + 1)
        results += self._run(chunk, xs[last + 1:], time.perf_counter())
        return results

    def _run(self, chunk, x, t0: float) -> list[WindowResult]:
        """Filter, window, infer and decide on contiguous valid rows ``x`` of ``chunk``."""
        if x.shape[0] == 0:
            return []
        y = self.chain.process_valid(x)
        if y is None:  # _clean() checked these rows; reaching here is a bug, not bad input
            raise RunError("internal: rows checked as valid were refused by the signal chain")
        return self._windows(chunk, y, t0)

    def _windows(self, chunk, y, t0: float) -> list[WindowResult]:
        """Window the chain's output ``y`` (float32, decimated), infer and decide.

        Window positions come from ``_reset_index``, the source index of the last restart."""
        windows, ends = self.buf.process(y)
        if not len(ends):
            return []
        t1 = time.perf_counter()
        if self.drop_stale and len(ends) > 1:
            self.dropped_windows += len(ends) - 1
            windows, ends = windows[-1:], ends[-1:]
        # A channel flat over a whole window (electrode off, amplifier railed at a constant) is no
        # signal: such a window is counted and never decided on (once the filter's response to the
        # step into the constant has settled: a few windows).
        # First a cheap screen (a flat channel ends where it starts), then the whole window.
        first = windows[0]
        if (float(np.abs(first[-1] - first[0]).min()) <= FLAT_PTP if len(windows) == 1
                else bool((np.abs(windows[:, -1] - windows[:, 0]) <= FLAT_PTP).any())):
            flat = ((windows.max(axis=1) - windows.min(axis=1)) <= FLAT_PTP).any(axis=1)
            if flat.any():
                self.faults["flat"] += int(flat.sum())
                windows, ends = windows[~flat], ends[~flat]
                if not len(ends):
                    return []
        xq = self.model_input.process(windows)
        outs = self.model.run_batch_int8(xq)
        probs = self._dequantise[outs.view(np.uint8)]
        t2 = time.perf_counter()
        k = len(ends)
        index_end = [self._reset_index + e * self.factor + self.factor - 1 for e in ends.tolist()]
        rel = [i - chunk.first_index for i in index_end]
        t_end = [float(chunk.timestamps[r]) for r in rel]
        timely = not self.untimely
        try:
            if k == 1:  # the live case: one window per chunk
                decisions = [self.decider.step(probs[0], t_end[0] * 1000.0, timely)]
            else:  # all timestamps checked before any decision changes state
                decisions = self.decider.process(probs, np.array(t_end) * 1000.0,
                                                 None if timely else np.zeros(k, bool))
        except DecisionError:  # time went back inside the chunk: no decision on windows of unknown timing
            return self._bad_time(chunk)
        if self.arm_state.rules is not None and timely:
            decisions = [self.arm_state.gate(d, self.auto_confirm) for d in decisions]
        t3 = time.perf_counter()
        self.windows += k
        stages = {"filter": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3 / k, "decide": (t3 - t2) * 1e3 / k}
        return [WindowResult(t_end[i], index_end[i], chunk.t_received, outs[i], probs[i], decisions[i], stages,
                             None if chunk.labels is None else chunk.labels[rel[i]].copy()) for i in range(k)]


def replay_outputs(bundle: Bundle, recording, chunk: int | None = None,
                   reference_kernels: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every window of a recording through the live pipeline: (int8 outputs (n, k), sample index (n,)).

    The chain is integer arithmetic and identical everywhere; with ``reference_kernels`` the model
    is too, so the emulated Pi check compares these arrays between x86-64 and aarch64.
    """
    src = ReplaySource(recording, speed=0, chunk=chunk)
    pipe = Pipeline(bundle, src.channels, src.fs, drop_stale=False, reference_kernels=reference_kernels)
    outs, idx = [], []
    while (c := src.read()) is not None:
        for r in pipe.process(c):
            outs.append(r.outputs)
            idx.append(r.index_end)
    n_out = len(bundle.labels)
    return (np.array(outs, np.int8).reshape(-1, n_out), np.array(idx, np.int64))
