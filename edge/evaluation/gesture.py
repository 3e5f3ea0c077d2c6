"""``neurogrip evaluate`` of a gesture bundle on Myo armband sessions, on the Pi (numpy and the edge
path only): window accuracy per file, and continuous use with the bundle's own decision policy.

The sessions are replayed through the runtime's own path (:mod:`edge.evaluation.replay`) and scored
as a user feels them (:mod:`edge.evaluation.scoring`).  :func:`edge.evaluation.evaluate.evaluate`
hands a gesture bundle with a Myo dataset folder here.
"""

from __future__ import annotations

from edge.bundle import load_bundle
from edge.errors import EvaluationError
from edge.evaluation.replay import continuous_score, window_accuracy
from edge.evaluation.scoring import brief, combine, score_line
from edge.progress import Progress
from edge.recordings.myo import as_continuous, find_myo_sessions, read_myo_session


def _log(progress, msg: str) -> None:
    if progress:
        progress(msg)


def evaluate_gesture(bundle_path, data, *, quick: bool = False, progress=print) -> dict:
    """A gesture bundle on Myo sessions through the edge path: window accuracy (each file's own
    windows) and continuous use (each session replayed as one stream with the bundle's policy).

    ``data``: a session folder (``EvaluationDataset/Female0/Test0``), a participant folder or a
    folder of them; every session found is used (``quick``: the first two).
    """
    bundle = load_bundle(bundle_path)
    if bundle.task != "gesture":
        raise EvaluationError(f"{bundle_path} is a {bundle.task!r} bundle, not a gesture bundle")
    sessions = find_myo_sessions(data)[: 2 if quick else None]
    correct = total = 0
    scores, per_session = [], {}
    with Progress(len(sessions), "sessions", progress, leave=False) as bar:  # a bar on a terminal, else lines
        for s in sessions:
            key = f"{s.parent.name}/{s.name}"
            rec = read_myo_session(s, continuous=False)
            c, n = window_accuracy(bundle, rec)
            correct, total = correct + c, total + n
            sc = continuous_score(bundle, as_continuous(rec))
            scores.append(sc)
            per_session[key] = {"accuracy": c / n if n else None, "continuous": brief(sc)}
            bar.done(f"[evaluate] {key}: int8 accuracy {c / max(n, 1):.4f}; {score_line(sc)}")
    if not total:
        raise EvaluationError(f"{data}: no windows to evaluate")
    model = bundle.model()
    result = {"bundle": str(bundle_path), "content_hash": bundle.content_hash, "task": "gesture",
              "protocol": "the given sessions: window accuracy per file; continuous use with the bundle's policy",
              "interpreter": f"{model.backend} {model.backend_version}", "n_windows": total,
              "int8": {"accuracy": correct / total}, "continuous": brief(combine(scores)),
              "sessions": per_session, "bundle_metrics": bundle.manifest.get("metrics")}
    _log(progress, f"[evaluate] int8 accuracy {correct / total:.4f} over {len(sessions)} session(s)")
    return result
