"""The task registry: a task is data, not branches.

A task says what a bundle decodes and how its outputs are read: the modality and signal unit,
the label names, whether labels are independent events (``multilabel``: one sigmoid per label,
ROC AUC) or exclusive classes (``multiclass``: softmax, accuracy), the default label → arm
command map, the default signal chain and window, and the default model.  Training reads the
chain/window defaults from here to build a bundle; the bundle's manifest then carries every
value the edge needs (channels, rate, chain, window, model input, labels, decision policy), and
the runtime runs any bundle whose task is registered without knowing which task it is.

Adding a task is one :func:`register` call here (plus a reader in :mod:`edge.recordings`, its
loader and held-out part in :mod:`edge.evaluation.held_out`, its splits in ``training.protocols``),
not a branch in the runtime.  Filter steps are plain data
(``{"kind", "freqs", "order", "q"}``, as :class:`training.filter_design.FilterSpec` takes them):
designing them needs scipy, which the edge never imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from edge._checks import check_option, check_type
from edge.errors import TaskError

MODES = ("multilabel", "multiclass")
MODALITIES = ("eeg", "emg")


@dataclass(frozen=True)
class Task:
    """One decoding task.

    Attributes
    ----------
    name : str
        The manifest's ``task`` value.
    modality : {"eeg", "emg"}
    unit : str
        The signal unit the chain's input format is designed for (``"uV"``).
    mode : {"multilabel", "multiclass"}
        Independent events (sigmoid outputs, columnwise ROC AUC) or exclusive classes (softmax,
        accuracy and macro-F1).  Also the decision policy's mode.
    labels : tuple of str
        Default label names in model output order (a dataset may bring its own, e.g. Muse mental
        states; the bundle manifest's labels rule at run time).
    commands : mapping label → arm action name (or None)
        The default label → command map written into a new bundle's decision section.
    filters : tuple of dict
        The default filter chain at the input rate (high-pass, notch, low-pass...).
    factor : int
        The largest decimation factor (a lower input rate decimates less; see training).
    window_ms, stride_ms : float
        Window length and the decision cadence at run time (≤ 50 ms, docs/design.md § 3).
    train_stride_ms : float
        Stride of training windows (neighbours are near duplicates; may be sparser).
    clip : float or None
        Bound of the normalised input, in channel scales (≈ σ).
    features : bool
        The model takes band-power window features instead of the raw window.
    default_model : str
        The architecture trained when none is asked for.
    sequence : mapping, optional
        The arm-state rules written into new bundles (:class:`edge.decision.sequence.SequenceRules`):
        which command is valid next in each state of the arm.
    description : str
        One line for help texts.
    """

    name: str
    modality: str
    mode: str
    labels: tuple[str, ...]
    commands: Mapping[str, str | None] = field(default_factory=dict)
    filters: tuple[Mapping, ...] = ()
    factor: int = 1
    window_ms: float = 200.0
    stride_ms: float = 48.0
    train_stride_ms: float = 48.0
    clip: float | None = 8.0
    features: bool = False
    default_model: str = "cnn"
    unit: str = "uV"
    description: str = ""
    sequence: Mapping | None = None

    def __post_init__(self):
        check_option(self.mode, f"task {self.name!r}: mode", MODES, exc=TaskError)
        check_option(self.modality, f"task {self.name!r}: modality", MODALITIES, exc=TaskError)
        unknown = sorted(set(self.commands) - set(self.labels))
        if unknown:
            raise TaskError(f"task {self.name!r}: commands name unknown labels {unknown}")
        object.__setattr__(self, "commands", MappingProxyType(dict(self.commands)))
        object.__setattr__(self, "filters", tuple(MappingProxyType(dict(f)) for f in self.filters))
        if self.sequence is not None:
            from edge.decision.sequence import SequenceRules

            SequenceRules.from_manifest(self.sequence)  # refuse bad rules at registration

    @property
    def multilabel(self) -> bool:
        return self.mode == "multilabel"

    def commands_for(self, labels) -> dict[str, str | None]:
        """The task's label → command map restricted to ``labels`` (a dataset's own label set)."""
        return {lab: self.commands[lab] for lab in labels if lab in self.commands}

    @property
    def moves_arm(self) -> bool:
        """Whether the task's decisions may command the arm (some label maps to an action)."""
        return any(a is not None for a in self.commands.values())

    @property
    def activation(self) -> str:
        """The model's output activation: ``sigmoid`` per event or ``softmax`` over classes."""
        return "sigmoid" if self.multilabel else "softmax"

    @property
    def metric(self) -> str:
        """The headline metric: ``auc`` (mean columnwise ROC AUC) or ``accuracy``."""
        return "auc" if self.multilabel else "accuracy"

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every scalar metric reported for the task."""
        return ("auc",) if self.multilabel else ("accuracy", "macro_f1")


_REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add a task to the registry (a name is registered once)."""
    check_type(task, Task, "task")
    if task.name in _REGISTRY:
        raise TaskError(f"task {task.name!r} is already registered")
    _REGISTRY[task.name] = task
    return task


def get_task(name) -> Task:
    """The registered task called ``name``; :class:`TaskError` listing the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise TaskError(f"unknown task {name!r}; this version of neurogrip knows {', '.join(task_names())}: "
                        "upgrade neurogrip or use a bundle made for one of these") from None


def task_names() -> tuple[str, ...]:
    """Names of the registered tasks, in registration order."""
    return tuple(_REGISTRY)


GRASP_LIFT_EVENTS = ("HandStart", "FirstDigitTouch", "BothStartLoadPhase", "LiftOff", "Replace", "BothReleased")
EMOTION_LABELS = ("NEGATIVE", "NEUTRAL", "POSITIVE")

# Grasp-lift (Kaggle WAY-EEG-GAL, 32 ch at 500 Hz): 200 ms windows (150–250 ms is the optimal
# controller window, Smith et al. 2011) fit inside the real shared segments (300–600 ms); the
# 30 Hz low-pass doubles as the anti-aliasing filter for 500 → 250 Hz.  No high-pass: a
# 0.1–1 Hz high-pass restarted at every short segment would ring for seconds; per-window mean
# removal (edge.model.inputs.normalise_windows) removes offsets.  A decision every 48 ms.
register(Task(
    name="grasp-lift", modality="eeg", mode="multilabel", labels=GRASP_LIFT_EVENTS,
    # docs/design.md § 2: each event moves the arm a step through the grasp-and-lift sequence
    commands={"HandStart": "OPEN", "FirstDigitTouch": "GRASP", "BothStartLoadPhase": "GRASP",
              "LiftOff": "LIFT", "Replace": "LOWER", "BothReleased": "RELEASE"},
    filters=({"kind": "lowpass", "freqs": (30.0,), "order": 4},), factor=2,
    window_ms=200.0, stride_ms=48.0, train_stride_ms=48.0, clip=8.0, default_model="cnn",
    # reach/open → grasp → lift → lower → release; from rest the half-open gripper may grasp
    # directly; holding, it may put down (release) or re-open without lifting.
    sequence={"initial": "ready",
              "transitions": {"ready": {"OPEN": "open", "GRASP": "holding"},
                              "open": {"GRASP": "holding"},
                              "holding": {"LIFT": "lifted", "RELEASE": "ready", "OPEN": "open"},
                              "lifted": {"LOWER": "lowered"},
                              "lowered": {"RELEASE": "ready", "LIFT": "lifted"}}},
    description="6 overlapping grasp-and-lift events from 32-channel EEG (Kaggle WAY-EEG-GAL)"))

# Emotion / mental state (Muse 4 ch at 256 Hz, GAMEEMO 14 ch at 128 Hz): 2 s windows of the
# 1–40 Hz band at 128 Hz, a 50 Hz mains notch; band log-power per channel → the feature GRU.
# Published as a state, never a command: the emotion output may gate behaviour, not move the arm.
register(Task(
    name="emotion", modality="eeg", mode="multiclass", labels=EMOTION_LABELS, commands={},
    filters=({"kind": "highpass", "freqs": (1.0,), "order": 2}, {"kind": "notch", "freqs": (50.0,), "q": 30.0},
             {"kind": "lowpass", "freqs": (40.0,), "order": 4}), factor=2,
    window_ms=2000.0, stride_ms=250.0, train_stride_ms=250.0,
    clip=20.0,  # mental states show in large eye/muscle activity: keep 20 σ of it
    features=True, default_model="gru",
    description="NEGATIVE / NEUTRAL / POSITIVE state from a Muse headband or GAMEEMO"))

GESTURES = ("neutral", "radial_deviation", "wrist_flexion", "ulnar_deviation", "wrist_extension", "hand_close",
            "hand_open")

# Gesture (surface EMG; the Myo armband of Côté-Allard et al. 2019, 8 ch at 200 Hz): a 260 ms
# causal window (the paper's 52 samples; 150–250 ms is the optimal controller window, Smith et al.
# 2011) and a decision every 50 ms.  The band: a 20 Hz high-pass (4th order) removes DC, electrode
# offsets and motion artefact, whose power lies below 10–20 Hz (De Luca et al. 2010 recommend a
# 20 Hz corner), while EMG power lies between 20 and 150 Hz; the Myo's 200 Hz sampling ends the
# band at 100 Hz, so there is no low-pass and no decimation.  Mains (60 Hz where the dataset was
# recorded, Québec) lies inside the band at 200 Hz: a notch there.  A 50 Hz country changes that
# one number (the chain is data and travels in the bundle).  Hand close/open drive the gripper,
# wrist flexion/extension the second joint; neutral holds; radial/ulnar deviation map to nothing.
register(Task(
    name="gesture", modality="emg", mode="multiclass", labels=GESTURES,
    commands={"neutral": None, "radial_deviation": None, "wrist_flexion": "LOWER", "ulnar_deviation": None,
              "wrist_extension": "LIFT", "hand_close": "GRASP", "hand_open": "OPEN"},
    filters=({"kind": "highpass", "freqs": (20.0,), "order": 4}, {"kind": "notch", "freqs": (60.0,), "q": 30.0}),
    factor=1, window_ms=260.0, stride_ms=50.0, train_stride_ms=50.0,
    clip=10.0,  # a strong contraction is several times the typical one: keep 10 σ of it
    default_model="cnn", unit="myo",  # the Myo's own 8-bit EMG units
    # a hand that holds cannot grasp again (a repeated GRASP is held); opening is always allowed
    # (the user opens on purpose); the second joint moves in either state, and a held grasp
    # survives neutral (neutral commands nothing).
    sequence={"initial": "empty",
              "transitions": {"empty": {"GRASP": "holding", "OPEN": "empty", "LIFT": "empty", "LOWER": "empty"},
                              "holding": {"OPEN": "empty", "LIFT": "holding", "LOWER": "holding"}}},
    description="7 hand/wrist gestures from 8-channel forearm EMG (Myo armband, Côté-Allard et al. 2019)"))
