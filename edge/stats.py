"""Summary statistics shared by the runtime, the scores and the benches: one key convention.

A distribution is summarised as ``{"n": count, "p50": ..., "p90": ..., "p99": ..., "max": ...}``
(milliseconds where the values are times); an empty one is ``{"n": 0}``, so a reader tests
``s.get("n")`` before it reads a percentile.  Percentiles use numpy's default (linear) method.
"""

from __future__ import annotations

import numpy as np

__all__ = ["percentiles"]


def percentiles(values, qs=(50, 90, 99)) -> dict:
    """``{"n", "p<q>" for each q in qs, "max"}`` of ``values`` (any sequence of numbers); ``{"n": 0}`` if empty."""
    a = np.asarray(values, float).ravel()
    if not a.size:
        return {"n": 0}
    out = {"n": int(a.size)}
    out.update({f"p{q:g}": float(v) for q, v in zip(qs, np.percentile(a, list(qs)))})
    out["max"] = float(a.max())
    return out
