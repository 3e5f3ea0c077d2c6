"""Paradigms: the cues of a guided recording session, as data.

A paradigm is a list of cues (a label, how long, what the person reads), repeated.  The built-in
ones (:data:`BUILTIN`) match each task's labels; a user's own is a small TOML file::

    name = "my-gestures"
    task = "gesture"          # its labels must be the task's (or "rest"/"pause": unlabelled)
    repeat = 4
    [[cue]]
    label = "neutral"
    seconds = 5
    text = "Relax your hand"
    [[cue]]
    label = "hand_close"
    seconds = 5
    text = "Close your hand"

The built-in ``gesture`` paradigm is the Myo armband dataset's own (Côté-Allard et al. 2019): the
seven gestures in its order, 5 s each, four cycles — so a replayed ``training0`` session gets the
right cue at the right time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.errors import RecordingError
from edge.recordings.base import STOP_MARKERS
from edge.tasks import get_task, task_names

MAX_PARADIGM_BYTES = 64 << 10
MAX_CUES = 10_000


@dataclass(frozen=True)
class Cue:
    label: str      # a task label, or "pause" (unlabelled time)
    seconds: float
    text: str


@dataclass(frozen=True)
class Paradigm:
    name: str
    task: str
    cues: tuple[Cue, ...]   # already repeated

    @property
    def seconds(self) -> float:
        return float(sum(c.seconds for c in self.cues))

    def starts(self) -> list[float]:
        """Each cue's start, in seconds from the first sample."""
        out, t = [], 0.0
        for c in self.cues:
            out.append(t)
            t += c.seconds
        return out


_GESTURE_TEXT = {"neutral": "Relax your hand", "radial_deviation": "Bend your wrist towards the thumb",
                 "wrist_flexion": "Bend your wrist down", "ulnar_deviation": "Bend your wrist towards the little finger",
                 "wrist_extension": "Bend your wrist up", "hand_close": "Close your hand",
                 "hand_open": "Open your hand wide"}
_EMOTION_TEXT = {"concentrating": "Count backwards from 1000 in sevens", "neutral": "Sit still, eyes open",
                 "relaxed": "Relax, breathe slowly"}


def _builtin() -> dict[str, Paradigm]:
    gesture = get_task("gesture")
    emotion = get_task("emotion")
    g = tuple(Cue(lab, 5.0, _GESTURE_TEXT.get(lab, lab)) for lab in gesture.labels) * 4
    e = tuple(Cue(lab, 60.0, _EMOTION_TEXT.get(lab, lab)) for lab in emotion.labels) * 2
    # grasp-lift: a cue at each cued event (its label is 1 within ±EVENT_HALF_WIDTH_S of the cue, as in
    # the Kaggle files); the uncued events (FirstDigitTouch, BothStartLoadPhase) stay unlabelled
    trial = (Cue("HandStart", 2.0, "Reach for the object and grasp it"), Cue("LiftOff", 2.0, "Lift it and hold it"),
             Cue("Replace", 2.0, "Put it back down"), Cue("BothReleased", 1.5, "Let go"),
             Cue("pause", 3.0, "Rest your hand"))
    return {"gesture": Paradigm("gesture", "gesture", g), "emotion": Paradigm("emotion", "emotion", e),
            "grasp-lift": Paradigm("grasp-lift", "grasp-lift", trial * 30)}


BUILTIN = _builtin()


def _bad(path, problem: str) -> RecordingError:
    return RecordingError(path, None, problem, "a paradigm TOML file (see edge/record/paradigm.py)")


def parse_paradigm(doc: dict, where="paradigm") -> Paradigm:
    """A paradigm from its TOML document (already parsed)."""
    if not isinstance(doc, dict):
        raise _bad(where, "not a table")
    task = doc.get("task")
    if task not in task_names():
        raise _bad(where, f"task {task!r} is not one of {list(task_names())}")
    labels = set(get_task(task).labels)
    repeat = doc.get("repeat", 1)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= 1000:
        raise _bad(where, f"repeat must be a whole number 1..1000, got {repeat!r}")
    raw = doc.get("cue")
    if not isinstance(raw, list) or not raw:
        raise _bad(where, "no [[cue]] tables")
    cues = []
    for i, c in enumerate(raw):
        if not isinstance(c, dict):
            raise _bad(where, f"cue {i + 1} is not a table")
        label, secs, text = c.get("label"), c.get("seconds"), c.get("text", c.get("label"))
        if label not in labels and label not in STOP_MARKERS:
            raise _bad(where, f"cue {i + 1}: label {label!r} is not one of task {task}'s labels "
                              f"({', '.join(sorted(labels))}) nor 'pause'")
        if isinstance(secs, bool) or not isinstance(secs, (int, float)) or not 0.5 <= secs <= 3600:
            raise _bad(where, f"cue {i + 1}: seconds must be a number in 0.5..3600, got {secs!r}")
        if not isinstance(text, str) or len(text) > 200:
            raise _bad(where, f"cue {i + 1}: text must be a string of at most 200 characters")
        cues.append(Cue(label, float(secs), text))
    if len(cues) * repeat > MAX_CUES:
        raise _bad(where, f"{len(cues) * repeat} cues (at most {MAX_CUES})")
    return Paradigm(str(doc.get("name", task)), task, tuple(cues) * repeat)


def load_paradigm(name_or_path) -> Paradigm:
    """A built-in paradigm by name (:data:`BUILTIN`), or a TOML file."""
    if str(name_or_path) in BUILTIN:
        return BUILTIN[str(name_or_path)]
    path = Path(name_or_path)
    if not path.is_file():
        raise RecordingError(path, None, "no such paradigm", f"one of {', '.join(BUILTIN)} or a TOML file")
    if path.stat().st_size > MAX_PARADIGM_BYTES:
        raise _bad(path, f"over {MAX_PARADIGM_BYTES} bytes")
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise RecordingError(path, None, "paradigm files need Python >= 3.11 (tomllib)",
                             "a built-in paradigm, or Python 3.11") from None
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _bad(path, f"not valid TOML: {exc}") from None
    return parse_paradigm(doc, path)
