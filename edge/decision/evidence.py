"""The ``"accumulate"`` decision filter: multi-class evidence summed over windows until it is enough.

Today's filter (``"vote"``, the default) waits a fixed time for every new class: a confidence
rejection, a majority vote and a dwell, however clear the windows are.  The accumulate filter
instead sums each window's evidence and commits as soon as the sum is enough — sooner on clear
windows, later on unclear ones (a sequential probability-ratio test; Page's CUSUM for the quickest
detection of a change).  Per window, with ``l_c = ln max(p_c, evidence_floor)``:

* every class ``c`` other than the published state gains its log-probability ratio against its
  strongest competitor, ``l_c - max_{d != c} l_d`` (negative unless ``c`` is the top class), on an
  evidence that decays with time constant ``leak_ms`` (0: none) and never drops below 0::

      S_c = max(0, S_c * exp(-dt / leak_ms) + l_c - max_{d != c} l_d)

* the class with the largest ``S_c`` commits once ``S_c >= commit_nats``: it becomes the published
  state (its command fires, as with the vote filter: refractory time, neutral holds the arm), and
  every evidence restarts from 0.  The state is latched: leaving it takes a full ``commit_nats``
  again for another class (neutral included), which is the hysteresis.

A window's evidence is at most ``ln(1 / evidence_floor)``; the policy refuses a ``commit_nats``
that one window could reach, so a single window never commits, however sharp.  A window whose top
probability is below ``reject_below`` adds nothing (its evidence only decays); an invalid window or
an interruption clears all evidence.  Everything is per window and in the windows' own times, so the
decisions do not depend on how the windows are chunked.  The threshold counts windows' evidence, so
it belongs to the stride it was chosen with (a calibrated EMG bundle: ``CALIBRATION_EMG_STRIDE_MS``).
"""

from __future__ import annotations

import math

from edge._checks import check_number, check_option
from edge.config import DECISION_ACCUMULATE
from edge.errors import DecisionError

FILTERS = ("vote", "accumulate")
#: The accumulate filter's parameters (defaults: :data:`edge.config.DECISION_ACCUMULATE`).
ACCUMULATE_KEYS = ("commit_nats", "evidence_floor", "leak_ms")


def overlay_decision(decision: dict, overlay: dict | None) -> dict:
    """A manifest's ``decision`` with ``overlay``'s values (e.g. ``CALIBRATION_EMG_DECISION``) put over it.

    An overlay that does not name a ``filter`` sets the vote filter's own parameters (vote, dwell), so
    it also means the vote filter: an accumulate base's filter and its parameters are dropped, else the
    overlaid vote and dwell would make a policy the accumulate filter refuses.
    """
    out = dict(decision)
    if overlay:
        if "filter" not in overlay:
            out.pop("filter", None)
            for k in ACCUMULATE_KEYS:
                out.pop(k, None)
        out.update(overlay)
    return out


def check_filter(filter_: str, mode: str, vote: int, min_dwell_ms: float, params: dict, key) -> dict:
    """Validate a policy's filter and its parameters; returns them (``None`` each for ``"vote"``).

    ``params`` maps each of :data:`ACCUMULATE_KEYS` to its value or None (the default); ``key``
    names a manifest key in messages.
    """
    check_option(filter_, key("filter"), FILTERS, exc=DecisionError)
    given = [k for k in ACCUMULATE_KEYS if params.get(k) is not None]
    if filter_ == "vote":
        if given:
            raise DecisionError(f"{key(given[0])} applies to filter 'accumulate' only; remove it or set "
                                f"{key('filter')} to 'accumulate'")
        return dict.fromkeys(ACCUMULATE_KEYS)
    if mode != "multiclass":
        raise DecisionError(f"{key('filter')} 'accumulate' is for mode 'multiclass' (one distribution per "
                            f"window); mode {mode!r} uses thresholds with hysteresis: use filter 'vote'")
    if vote != 1 or min_dwell_ms != 0:
        raise DecisionError(f"{key('filter')} 'accumulate' replaces the vote and the dwell: set {key('vote')} "
                            f"to 1 and {key('min_dwell_ms')} to 0 (got {vote} and {min_dwell_ms:g})")
    v = {k: DECISION_ACCUMULATE[k] if params.get(k) is None else params[k] for k in ACCUMULATE_KEYS}
    floor = check_number(v["evidence_floor"], key("evidence_floor"), lo=0.0, hi=0.5, lo_open=True,
                         exc=DecisionError, fix="the smallest probability a window's evidence counts, e.g. 0.01")
    commit = check_number(v["commit_nats"], key("commit_nats"), lo=0.0, hi=1000.0, lo_open=True, exc=DecisionError)
    most = -math.log(floor)
    if commit <= most:
        raise DecisionError(f"{key('commit_nats')} {commit:g} can be reached by one window (at most "
                            f"ln(1/evidence_floor) = {most:.3g} nats): a single window must never commit; "
                            f"raise commit_nats above {most:.3g} or the evidence_floor")
    leak = check_number(v["leak_ms"], key("leak_ms"), lo=0.0, hi=600_000.0, exc=DecisionError, fix="0 = no leak")
    return {"commit_nats": commit, "evidence_floor": floor, "leak_ms": leak}


class Evidence:
    """Per-class accumulated evidence (module docstring); plain floats, a handful of classes.

    Parameters
    ----------
    n : int
        The number of classes.
    commit_nats, evidence_floor, leak_ms : float
        As validated by :func:`check_filter`.
    """

    def __init__(self, n: int, commit_nats: float, evidence_floor: float, leak_ms: float):
        self._n, self._commit, self._floor, self._leak = n, commit_nats, evidence_floor, leak_ms
        self._log_floor = math.log(evidence_floor)
        self.reset()

    def reset(self) -> None:
        """Clear every class's evidence (a commit, an invalid window, an interruption)."""
        self.s = [0.0] * self._n
        self._t: float | None = None

    @property
    def pending(self) -> bool:
        """Whether some class holds evidence (it is accumulating towards a commit)."""
        return any(self.s)

    def _decay(self, t: float) -> float:
        # a stamp that steps back decays nothing (never a factor above 1)
        d = 1.0 if self._leak <= 0.0 or self._t is None else math.exp(-max(0.0, t - self._t) / self._leak)
        self._t = t
        return d

    def hold(self, t: float) -> None:
        """A rejected window at ``t`` ms: no evidence, only the decay."""
        d = self._decay(t)
        if d != 1.0:
            self.s = [v * d for v in self.s]

    def add(self, r: list, t: float, state: int | None) -> int | None:
        """Add the evidence of one window (probabilities ``r``, time ``t`` ms) for every class but
        ``state``; returns the class that commits (the largest evidence at the threshold, ties: the
        first), or None."""
        d = self._decay(t)
        floor, lf = self._floor, self._log_floor
        ln = [math.log(v) if v > floor else lf for v in r]
        first = max(range(self._n), key=ln.__getitem__)  # the first of equal maxima
        top = ln[first]
        second = max((v for i, v in enumerate(ln) if i != first), default=top)
        s, best, best_s = self.s, None, 0.0
        for c in range(self._n):
            if c == state:
                s[c] = 0.0
                continue
            v = s[c] * d + ln[c] - (second if c == first else top)
            s[c] = v = max(0.0, v)
            if v >= self._commit and v > best_s:
                best, best_s = c, v
        return best
