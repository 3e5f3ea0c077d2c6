"""A causal per-subject filter-bank log-variance + logistic regression baseline for grasp-lift EEG: the
peer of the calibrated bundle in the calibration bench (issue #25, goal 3; docs/design.md §3).

Per subject, fitted on series 1–6 and tested on series 7–8, at exactly the window end points and labels
the bench scores the bundle on: both come from the bench's own code, :func:`edge.calibration.session.
read_session` and :func:`~edge.calibration.session.session_windows` with a grasp-lift bundle (the
calibrated bundle when there is one; otherwise any grasp-lift bundle, whose manifest gives the same
window geometry: 50 samples at 250 Hz, stride 12, decimation 2).  Only the end points and labels are
taken from the bundle; the features are the baseline's own, from the raw 500 Hz samples:

1. **Filter bank** — six Butterworth band-passes, 4-8, 8-12, 12-16, 16-20, 20-24, 24-30 Hz (theta, mu
   and beta in 4 Hz steps: the filter bank of FBCSP, Ang et al. 2008, cut at the 30 Hz where the
   bundle's chain stops), each of order 4 (an 8th-order band-pass, ``scipy.signal.butter(..., output=
   "sos")``), run causally with ``sosfilt`` whose state carries through each contiguous segment as a
   stream's would; never ``filtfilt``.  The stream restarts where the recording has a gap (as the
   bundle's chain and the runtime do: the shared segments are 0.3–0.7 s pieces of the series with
   gaps of up to a few seconds, and carrying state over a gap would glue unrelated moments together);
   the segment's first sample is subtracted from it first, which equals starting each filter in
   ``sosfilt_zi``'s steady state for that value (a band-pass passes no DC) and spares the filters the
   step of the electrodes' offset.
2. **Log-variance** of each channel in each band over the trailing **1 s** ending at the window's last
   sample (FBCSP's epochs are 2 s; 1 s is a common sliding window online), clipped at the
   segment's start (the stream restarted there): on these short segments the trailing window is the
   segment so far (0.2–0.7 s).  32 channels × 6 bands = 192 features.
3. **Slow trend** per channel (32 features): the mean of the last quarter of the trailing 0.2 s minus
   the mean of its first quarter, on the raw samples — the slow movement-related potential, the trend
   feature of the project's own training baseline (:func:`edge.model.inputs.window_features`, over the
   bundle's 200 ms window).  Added by the cross-validation below, not a priori.
4. **Standardisation** (mean and standard deviation per feature) fitted on the training windows only.
5. **Logistic regression**, one vs rest per event column, L2 penalty ``C = 1.0`` (scikit-learn's
   default), intercept unpenalised: scikit-learn's ``LogisticRegression(C=1.0)`` objective, minimised
   to convergence by Newton's method (:func:`fit_logistic`).  scikit-learn is not in the
   environment the bench runs in (``.venv-edge``: scipy comes with the ``dev`` extra, scikit-learn
   only with ``train``); the objective has one minimum, and tests/training/test_eeg_baseline_vs_sklearn.py
   checks that the probabilities equal scikit-learn's.

Nothing after a window's last sample is read (tests/edge/test_eeg_baseline.py alters every later
sample and checks the features), and series 7–8 play no part in the fit.  One subject takes ≈ 3 s and
≈ 170 MB peak here (all six ≈ 17 s of CPU).

Every hyper-parameter of 1, 2, 4 and 5 was fixed a priori from the literature, none on series 7–8.
Alternatives were compared only by leave-one-series-out cross-validation within series 1–6
(:func:`cross_validate`, ``python -m benchmarks.eeg_baseline --cv``; series 7–8 never read), with the
rule, written down before the first run, that the best alternative replaces the a-priori features only
if it beats them by ≥ 0.01 mean AUC over the six subjects.  Compared (mean CV AUC, :data:`CV_COMPARISON`):
the a-priori log-variance alone 0.636; a 0.2 s trailing window (the bundle's own) 0.642; a seventh band,
1-4 Hz, 0.646; one stream per file with the gaps glued (state and trailing window across gaps) 0.590;
the slow trend added 0.724, kept.  The slow trend was added to the comparison after the first three
had been run, when their CV AUC (≈ 0.64) fell far short of the ≈ 0.78 that docs/design.md §3 quotes
for this baseline; a causal 0-4 Hz low-pass value per channel in its place, tried in the same
cross-validation, gave 0.694.  With the trend, the model is fitted on 224 features.

    python -m benchmarks.eeg_baseline [--data DIR] [--subjects 1,2,...] [--cv]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Band edges in Hz (theta, mu, beta in 4 Hz steps up to the bundle chain's 30 Hz).
BANDS_HZ = ((4.0, 8.0), (8.0, 12.0), (12.0, 16.0), (16.0, 20.0), (20.0, 24.0), (24.0, 30.0))
#: Butterworth order of each band-pass prototype (the band-pass is twice that).
ORDER = 4
#: Trailing window of the log-variance, in seconds (clipped at the stream's last restart).
TRAILING_S = 1.0
#: Span of the slow-trend feature, in seconds: the bundle's 200 ms window (clipped likewise).
TREND_S = 0.2
#: Inverse L2 penalty of the logistic regression (scikit-learn's default).
C = 1.0
#: Floor of a variance before its logarithm, in µV² (a flat channel).
VAR_FLOOR = 1e-6
#: Series the baseline is fitted on and tested on (the bench's protocol).
TRAIN_SERIES = (1, 2, 3, 4, 5, 6)
TEST_SERIES = (7, 8)

#: Leave-one-series-out AUC within series 1–6, mean over the 6 subjects, of the options compared
#: (:data:`CV_OPTIONS`; ``python -m benchmarks.eeg_baseline --cv`` on 2026-12-07; see the docstring).
CV_COMPARISON = {"a priori: 6 bands 4-30 Hz, 1 s trailing": 0.6357, "0.2 s trailing (the bundle's window)": 0.6419,
                 "+ 1-4 Hz band": 0.6457, "one stream per file, gaps glued": 0.5899,
                 "+ slow trend over 0.2 s (chosen)": 0.7243}


@dataclass(frozen=True)
class Params:
    """The baseline's hyper-parameters (the module constants by default)."""

    bands: tuple = BANDS_HZ
    order: int = ORDER
    trailing_s: float = TRAILING_S
    trend_s: float | None = TREND_S   # None: no slow-trend features
    C: float = C
    restart_at_gaps: bool = True      # False: one stream over the whole file, gaps glued (compared only)

    def describe(self) -> dict:
        return {"bands_hz": [list(b) for b in self.bands], "butter_order": self.order,
                "trailing_s": self.trailing_s, "trend_s": self.trend_s, "C": self.C,
                "features": "log-variance per channel and band" + (" + slow trend per channel" if self.trend_s else ""),
                "filter": "scipy.signal.butter + sosfilt, causal, state through each contiguous segment"
                          if self.restart_at_gaps else "scipy.signal.butter + sosfilt, causal, over the glued file"}


#: The peer as the bench runs it.
DEFAULT = Params()


# --------------------------------------------------------------------------- features


def filter_bank(fs: float, bands=BANDS_HZ, order: int = ORDER) -> list[np.ndarray]:
    """Second-order sections of each Butterworth band-pass at rate ``fs``."""
    from scipy import signal

    nyq = fs / 2
    for lo, hi in bands:
        if not 0 < lo < hi < nyq:
            raise ValueError(f"bands: {lo}-{hi} Hz must lie strictly between 0 and the Nyquist frequency {nyq:g} Hz")
    return [signal.butter(order, [lo, hi], btype="bandpass", fs=fs, output="sos") for lo, hi in bands]


def _segment_of(segments: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Index of the segment holding each end row (ValueError when one lies in none)."""
    seg_of = np.searchsorted(segments[:, 0], ends, side="right") - 1
    if len(ends) and (np.any(seg_of < 0) or np.any(ends >= segments[np.maximum(seg_of, 0), 1])):
        raise ValueError("ends: every end row must lie inside one of the segments")
    return seg_of


def log_variance(samples: np.ndarray, segments: np.ndarray, ends: np.ndarray, fs: float, bank,
                 trailing_s: float = TRAILING_S) -> np.ndarray:
    """Log-variance features ``(len(ends), n_bands * n_channels)`` (band-major) at the rows ``ends``.

    Each band-pass of ``bank`` runs causally over each contiguous segment ``[a, b)`` of ``samples``
    (state from the segment's start, as a stream restarted there), on the segment minus its first
    sample; the variance of row ``e``'s feature is over rows ``max(a, e − W + 1) … e`` with
    ``W = round(trailing_s · fs)``.  Rows after ``e`` are never read.
    """
    from scipy import signal

    x = np.asarray(samples, np.float64)
    ends = np.asarray(ends, np.int64)
    segments = np.asarray(segments, np.int64).reshape(-1, 2)
    width = max(1, round(trailing_s * fs))
    n_ch = x.shape[1]
    out = np.empty((len(ends), len(bank) * n_ch), np.float64)
    seg_of = _segment_of(segments, ends)
    for k in np.unique(seg_of):
        a = segments[k, 0]
        pick = np.flatnonzero(seg_of == k)
        e = ends[pick] - a
        stop = int(e.max()) + 1  # nothing after the last end of this segment is filtered at all
        seg = x[a:a + stop] - x[a]
        hi = e + 1
        lo = np.maximum(0, hi - width)
        n = (hi - lo)[:, None]
        for j, sos in enumerate(bank):
            y = signal.sosfilt(sos, seg, axis=0)
            s1 = np.concatenate([np.zeros((1, n_ch)), np.cumsum(y, axis=0)])
            s2 = np.concatenate([np.zeros((1, n_ch)), np.cumsum(y * y, axis=0)])
            mean = (s1[hi] - s1[lo]) / n
            var = (s2[hi] - s2[lo]) / n - mean * mean
            out[pick, j * n_ch:(j + 1) * n_ch] = np.log(np.maximum(var, VAR_FLOOR))
    return out


def slow_trend(samples: np.ndarray, segments: np.ndarray, ends: np.ndarray, fs: float,
               span_s: float = TREND_S) -> np.ndarray:
    """The slow trend ``(len(ends), n_channels)`` at the rows ``ends``: the mean of the last quarter of
    the trailing ``span_s`` minus the mean of its first quarter (the trend of the training baseline,
    :func:`edge.model.inputs.window_features`), the span clipped at the segment's start.  Rows after
    each end are never read."""
    x = np.asarray(samples, np.float64)
    ends = np.asarray(ends, np.int64)
    segments = np.asarray(segments, np.int64).reshape(-1, 2)
    span = max(4, round(span_s * fs))
    starts = segments[_segment_of(segments, ends), 0]
    lo = np.maximum(starts, ends - span + 1)
    q = np.maximum(1, (ends + 1 - lo) // 4)
    c = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x - x[0], axis=0)])
    last = (c[ends + 1] - c[ends + 1 - q]) / q[:, None]
    first = (c[lo + q] - c[lo]) / q[:, None]
    return last - first


def features(samples: np.ndarray, segments: np.ndarray, ends: np.ndarray, fs: float, bank,
             params: Params = DEFAULT) -> np.ndarray:
    """The baseline's features at the rows ``ends``: :func:`log_variance` and (``params.trend_s``)
    :func:`slow_trend`."""
    segs = np.asarray(segments, np.int64).reshape(-1, 2)
    if not params.restart_at_gaps:
        segs = np.array([[0, len(samples)]], np.int64)
    parts = [log_variance(samples, segs, ends, fs, bank, params.trailing_s)]
    if params.trend_s:
        parts.append(slow_trend(samples, segs, ends, fs, params.trend_s))
    return np.hstack(parts)


def session_features(bundle, recs, params: Params = DEFAULT) -> tuple[np.ndarray, np.ndarray]:
    """Features and truth ``(F, Y)`` of every window the bench scores the bundle on in ``recs``.

    Each recording is read as the bench's ``_scores`` reads it (``read_session([rec], bundle)``, then
    ``session_windows``): the windows' last rows and labels are the bundle's, the features the
    baseline's own at those rows.
    """
    from edge.calibration.session_files import read_session
    from edge.calibration.windows import session_windows

    feats, truth = [], []
    bank = None
    for rec in recs:
        session = read_session([rec], bundle)[0]
        sw = session_windows(bundle, session)
        bank = bank or filter_bank(session.fs, params.bands, params.order)
        feats.append(features(session.samples, session.segments, sw.last, session.fs, bank, params))
        truth.append(sw.y)
        del sw, session
    return np.concatenate(feats), np.concatenate(truth)


# --------------------------------------------------------------------------- model


def fit_logistic(X: np.ndarray, y: np.ndarray, C: float = C, tol: float = 1e-10,
                 max_iter: int = 100) -> tuple[np.ndarray, float]:
    """Binary L2 logistic regression: scikit-learn's ``LogisticRegression(C=C)`` objective
    ``C · Σ log(1 + exp(−s·(x·w + b))) + ½‖w‖²`` (intercept unpenalised), minimised by Newton's method
    with a backtracking line search from zero until the largest gradient component of the objective
    divided by ``C·n`` is below ``tol``: deterministic, and exact where scikit-learn's solvers stop at
    their tolerance.  Returns ``(w, b)``."""
    X = np.asarray(X, np.float64)
    t = np.asarray(y, np.float64).ravel()
    n, d = X.shape
    if t.min() == t.max():  # one class only: the intercept alone (its limit is ±inf; keep it finite)
        return np.zeros(d), 30.0 if t[0] else -30.0
    A = np.hstack([X, np.ones((n, 1))])
    reg = np.full(d + 1, 1.0 / (C * n))  # the objective divided by C·n: the same minimum, O(1) scale
    reg[d] = 0.0

    def objective(theta):
        z = A @ theta
        return np.sum(np.logaddexp(0.0, z) - t * z) / n + 0.5 * np.sum(reg * theta * theta), z

    theta = np.zeros(d + 1)
    f, z = objective(theta)
    for _ in range(max_iter):
        p = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid, overflow-free
        g = A.T @ (p - t) / n + reg * theta
        if np.max(np.abs(g)) < tol:
            break
        H = (A * (p * (1.0 - p))[:, None]).T @ A / n + np.diag(reg)
        step = np.linalg.solve(H + 1e-12 * np.eye(d + 1), g)
        lr = 1.0
        while True:  # Armijo backtracking: a full Newton step almost always
            cand = theta - lr * step
            fc, zc = objective(cand)
            if fc <= f - 1e-4 * lr * (g @ step) or lr < 1e-10:
                break
            lr *= 0.5
        theta, f, z = cand, fc, zc
    return theta[:d].copy(), float(theta[d])


@dataclass
class Baseline:
    """Standardisation + one logistic regression per label column, fitted on training windows."""

    params: Params = DEFAULT
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    coef: np.ndarray | None = None       # (n_features, n_labels)
    intercept: np.ndarray | None = None  # (n_labels,)

    def fit(self, F: np.ndarray, Y: np.ndarray) -> Baseline:
        F, Y = np.asarray(F, np.float64), np.asarray(Y)
        self.mean = F.mean(axis=0)
        sd = F.std(axis=0)
        self.scale = np.where(sd > 0, sd, 1.0)
        Z = (F - self.mean) / self.scale
        fits = [fit_logistic(Z, Y[:, j], self.params.C) for j in range(Y.shape[1])]
        self.coef = np.stack([w for w, _ in fits], axis=1)
        self.intercept = np.array([b for _, b in fits])
        return self

    def predict(self, F: np.ndarray) -> np.ndarray:
        if self.coef is None:
            raise RuntimeError("Baseline.predict before fit")
        z = ((np.asarray(F, np.float64) - self.mean) / self.scale) @ self.coef + self.intercept
        return 0.5 * (1.0 + np.tanh(0.5 * z))


# --------------------------------------------------------------------------- protocols


def series_files(data: Path, subject: int, series) -> list[Path]:
    return [Path(data) / f"subj{subject}_series{k}_data.csv.gz" for k in series]


def _read(files) -> list:
    from edge.recordings import read_grasp_lift

    return [f if not isinstance(f, (str, Path)) else read_grasp_lift(f) for f in files]


def subject_baseline(bundle, train, test, params: Params = DEFAULT) -> dict:
    """Fit on ``train`` (paths or Recordings: series 1–6), score ``test`` (series 7–8) at the bundle's
    windows.  Returns ``{"probs", "truth", "auc", "train_windows", "test_windows"}``."""
    from edge.evaluation.metrics import mean_columnwise_auc

    F, Y = session_features(bundle, _read(train), params)
    model = Baseline(params).fit(F, Y)
    Ft, Yt = session_features(bundle, _read(test), params)
    probs = model.predict(Ft)
    return {"probs": probs, "truth": Yt, "auc": float(mean_columnwise_auc(Yt, probs)),
            "train_windows": len(F), "test_windows": len(Ft)}


def run_subjects(bundle, data: Path, subjects, params: Params = DEFAULT) -> dict:
    """The peer on each subject: ``{"subjects": {s: AUC}, "auc": Kaggle metric over all test windows,
    "probs": {s: ...}, "truth": {s: ...}, "seconds", "setup"}``."""
    from edge.evaluation.metrics import mean_columnwise_auc

    t0 = time.perf_counter()
    out = {"subjects": {}, "probs": {}, "truth": {}, "windows": {}}
    for s in subjects:
        r = subject_baseline(bundle, series_files(data, s, TRAIN_SERIES), series_files(data, s, TEST_SERIES), params)
        out["subjects"][s], out["probs"][s], out["truth"][s] = r["auc"], r["probs"], r["truth"]
        out["windows"][s] = {"train": r["train_windows"], "test": r["test_windows"]}
    out["auc"] = float(mean_columnwise_auc(np.concatenate(list(out["truth"].values())),
                                           np.concatenate(list(out["probs"].values()))))
    out["seconds"] = time.perf_counter() - t0
    out["setup"] = {**params.describe(), "train_series": list(TRAIN_SERIES), "test_series": list(TEST_SERIES),
                    "windows_of": getattr(bundle, "name", None) or str(getattr(bundle, "path", "")),
                    "window": {"length": int(bundle.window["length"]), "stride": int(bundle.window["stride"]),
                               "factor": int(bundle.signal_chain().factor)}}
    return out


def cross_validate(bundle, data: Path, subject: int, params: Params = DEFAULT) -> float:
    """Leave-one-series-out mean column AUC within the training series 1–6 of one subject (series
    7–8 are never read), the AUC pooled over the six held-out series."""
    from edge.evaluation.metrics import mean_columnwise_auc

    per = [session_features(bundle, _read([f]), params) for f in series_files(data, subject, TRAIN_SERIES)]
    probs, truth = [], []
    for k in range(len(per)):
        F = np.concatenate([p[0] for i, p in enumerate(per) if i != k])
        Y = np.concatenate([p[1] for i, p in enumerate(per) if i != k])
        probs.append(Baseline(params).fit(F, Y).predict(per[k][0]))
        truth.append(per[k][1])
    return float(mean_columnwise_auc(np.concatenate(truth), np.concatenate(probs)))


def geometry_bundle(candidates=()):
    """A grasp-lift bundle whose window geometry the peer uses when the bench has no calibrated one:
    the first of ``candidates`` that exists, else the test fixture's (same 50 × 12 × 2 geometry)."""
    from benchmarks.common import FIXTURE_BUNDLES
    from edge.bundle import load_bundle

    for p in [*candidates, FIXTURE_BUNDLES / "grasp-lift"]:
        if p is not None and (Path(p) / "manifest.json").is_file():
            return load_bundle(p, check_model=False)
    raise FileNotFoundError("no grasp-lift bundle for the window geometry (not even tests/fixtures/bundles/grasp-lift)")


_LOGVAR = Params(trend_s=None)
CV_OPTIONS = {
    "a priori: 6 bands 4-30 Hz, 1 s trailing": _LOGVAR,
    "0.2 s trailing (the bundle's window)": Params(trailing_s=0.2, trend_s=None),
    "+ 1-4 Hz band": Params(bands=((1.0, 4.0),) + BANDS_HZ, trend_s=None),
    "one stream per file, gaps glued": Params(trend_s=None, restart_at_gaps=False),
    "+ slow trend over 0.2 s (chosen)": DEFAULT,
}


def main(argv=None) -> int:
    from benchmarks.common import SHARED_DATA

    ap = argparse.ArgumentParser(prog="python -m benchmarks.eeg_baseline", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=SHARED_DATA / "grasp_lift_segments")
    ap.add_argument("--subjects", default="1,2,3,4,5,6")
    ap.add_argument("--bundle", type=Path, default=None, help="grasp-lift bundle giving the windows (default: fixture)")
    ap.add_argument("--cv", action="store_true", help="compare CV_OPTIONS by leave-one-series-out CV in series 1-6")
    a = ap.parse_args(argv)
    subjects = [int(s) for s in a.subjects.split(",")]
    bundle = geometry_bundle([a.bundle])
    if a.cv:
        for name, p in CV_OPTIONS.items():
            t0 = time.perf_counter()
            aucs = [cross_validate(bundle, a.data, s, p) for s in subjects]
            print(f"{name}: mean {np.mean(aucs):.4f}  " + " ".join(f"{s}:{v:.4f}" for s, v in zip(subjects, aucs))
                  + f"  ({time.perf_counter() - t0:.1f} s)")
        return 0
    r = run_subjects(bundle, a.data, subjects)
    for s, v in r["subjects"].items():
        print(f"subject {s}: AUC {v:.4f}  ({r['windows'][s]['train']} train / {r['windows'][s]['test']} test windows)")
    print(f"all: Kaggle AUC {r['auc']:.4f}; mean of subjects {np.mean(list(r['subjects'].values())):.4f}; "
          f"{r['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
