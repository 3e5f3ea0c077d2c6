"""What the benchmark sections share: the run context, the bundles and recordings they measure,
percentile summaries and the forced decision policy used to make commands flow.

Recordings: the shared real data (``../shared/data`` next to the repository, or
``$NEUROGRIP_SHARED_DATA``) when present, else synthetic EEG from :mod:`edge.recordings.synthetic`; every
result names which one it used (``"real"`` / ``"synthetic"``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.stats import percentiles

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NEUROGRIP_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_BUNDLES = REPO / "build" / "bundles"
FIXTURE_BUNDLES = REPO / "tests" / "fixtures" / "bundles"
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"

# Percentile levels of every latency CDF stored in the JSON ({"levels": CDF_LEVELS, "ms": [...]}).
CDF_LEVELS = [float(v) for v in range(100)] + [99.5, 99.9, 100.0]

GL_HELDOUT = [(s, k) for s in range(1, 7) for k in (7, 8)]  # (subject, series) of the held-out part
GL_QUICK = [(1, 8)]


# --------------------------------------------------------------------------- bundles & context


@dataclass
class BundleRef:
    """A bundle to measure: where it is, its task, and where its training report lives."""

    path: Path
    task: str
    origin: str  # "build" (make bundles), "fixture" (tests/fixtures) or "given" (--bundle)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def report_dir(self) -> Path:
        """``<bundle>.report/`` next to the bundle (written by ``neurogrip train``)."""
        return self.path.parent / (self.path.name + ".report")

    def info(self) -> dict:
        manifest_size = 0
        if self.path.is_dir():
            size = sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
            manifest_size = (self.path / "manifest.json").stat().st_size
        else:
            size = self.path.stat().st_size
        from edge.bundle import load_bundle

        b = load_bundle(self.path, check_model=False)
        return {"path": str(self.path), "name": self.name, "task": self.task, "origin": self.origin,
                "content_hash": b.content_hash, "model_bytes": len(b.model_bytes), "bundle_bytes": size,
                "manifest_bytes": manifest_size or None}


def _task_of(path: Path) -> str:
    from edge.bundle import load_bundle

    return load_bundle(path, check_model=False).task


def find_bundles(given=None) -> list[BundleRef]:
    """``given`` paths, else every bundle under build/bundles, else the test fixtures."""
    if given:
        return [BundleRef(Path(p).resolve(), _task_of(Path(p)), "given") for p in given]
    for root, origin in ((DEFAULT_BUNDLES, "build"), (FIXTURE_BUNDLES, "fixture")):
        if not root.is_dir():
            continue
        found = [p for p in sorted(root.iterdir())
                 if (p.is_dir() and (p / "manifest.json").is_file()) or p.suffix == ".zip"]
        if found:
            return [BundleRef(p, _task_of(p), origin) for p in found]
    return []


@dataclass
class Context:
    """What every section's ``run(quick, ctx)`` gets."""

    quick: bool = False
    bundles: list = field(default_factory=list)  # [BundleRef]
    plots_dir: Path | None = None
    shared_data: Path = SHARED_DATA
    train_python: Path | None = None
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="neurogrip-bench-")))

    @classmethod
    def create(cls, quick: bool = False, bundles=None, plots_dir=None) -> Context:
        return cls(quick=quick, bundles=find_bundles(bundles), plots_dir=None if plots_dir is None else Path(plots_dir),
                   train_python=TRAIN_PYTHON if TRAIN_PYTHON.exists() else None)

    def bundle(self, task: str) -> BundleRef | None:
        """The first bundle of ``task``."""
        return next((b for b in self.bundles if b.task == task), None)


# --------------------------------------------------------------------------- recordings


def grasp_lift_file(ctx: Context, subject: int = 1, series: int = 8) -> tuple[Path, str]:
    """A Kaggle-layout grasp-lift data file: the shared real one, else a synthetic one (written once)."""
    real = ctx.shared_data / "grasp_lift_segments" / f"subj{subject}_series{series}_data.csv.gz"
    if real.is_file():
        return real, "real"
    from edge.recordings import write_grasp_lift
    from edge.recordings.synthetic import grasp_lift_series

    out = ctx.tmp / f"synthetic-gl-{subject}-{series}"
    data = out / f"subj{subject}_series{series}_data.csv.gz"
    if not data.is_file():
        write_grasp_lift(grasp_lift_series(subject, series, seed=0, n_trials=4 if ctx.quick else 12), out)
    return data, "synthetic"


def grasp_lift_heldout(ctx: Context, quick: bool, synthetic: bool = False) -> list[tuple[str, object, str]]:
    """Held-out series 7–8: ``[(name, Recording, "real"|"synthetic")]`` (quick: one series).

    ``synthetic``: the continuous synthetic series (with rest between trials) even when the real
    segments are there — for a bundle trained on synthetic data."""
    from edge.recordings import read_recording
    from edge.recordings.synthetic import grasp_lift_series

    pairs = GL_QUICK if quick else GL_HELDOUT
    root = ctx.shared_data / "grasp_lift_segments"
    real = [root / f"subj{s}_series{k}_data.csv.gz" for s, k in pairs]
    if not synthetic and all(p.is_file() for p in real):
        return [(p.name.replace("_data.csv.gz", ""), read_recording(p), "real") for p in real]
    pairs = GL_QUICK if quick else [(s, k) for s in (1, 2) for k in (7, 8)]
    return [(f"synthetic subj{s}_series{k}", grasp_lift_series(s, k, seed=0, n_trials=4 if quick else 34),
             "synthetic") for s, k in pairs]


def continuous_grasp_lift(quick: bool):
    """A continuous (gap-free) synthetic series: the live situation, a window every stride."""
    from edge.recordings.synthetic import grasp_lift_series

    return grasp_lift_series(1, 8, seed=0, n_trials=4 if quick else 34)


def emotion_file(ctx: Context) -> tuple[Path, str]:
    real = ctx.shared_data / "muse_mental_state" / "subjecta-neutral-1.csv"
    if real.is_file():
        return real, "real"
    from edge.recordings import write_muse
    from edge.recordings.synthetic import muse_recording

    out = ctx.tmp / "synthetic-muse-a-neutral.csv"
    if not out.is_file():
        write_muse(muse_recording("a", "neutral", 60.0, seed=0), out)
    return out, "synthetic"


def proc_status_kb(pid: int, key: str) -> int | None:
    """A ``/proc/<pid>/status`` field in KB (``VmRSS``, ``VmHWM`` ...); None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def myo_session(ctx: Context) -> tuple[Path, str]:
    """A Myo armband test session of an evaluation participant (real data only: there is no synthetic
    EMG); FileNotFoundError when the dataset is absent."""
    real = ctx.shared_data / "myo_armband" / "EvaluationDataset" / "Male1" / "Test0"
    if not real.is_dir():
        raise FileNotFoundError(f"the Myo armband data are not at {real.parents[2]}")
    return real, "real"


RECORDING_FOR = {"grasp-lift": grasp_lift_file, "emotion": emotion_file, "gesture": myo_session}


def recording_for(ctx: Context, task: str) -> tuple[Path, str]:
    """A recording in the layout a task's bundles read (FileNotFoundError when there is none here)."""
    if task not in RECORDING_FOR:
        raise FileNotFoundError(f"no benchmark recording for task {task!r}")
    return RECORDING_FOR[task](ctx)


def int8_windows(bundle, recording, n_max: int) -> np.ndarray:
    """Up to ``n_max`` int8 model inputs from a recording, exactly as the live pipeline builds them
    (fixed-point chain per segment → windows → the bundle's model input → quantise), spread over
    the recording."""
    from edge.chain.signal_chain import segment_windows
    from edge.model.inputs import quantise
    from edge.sources import channel_map

    idx = channel_map(list(recording.channels), bundle.channels)
    chain = bundle.signal_chain()
    L, S = int(bundle.window["length"]), int(bundle.window["stride"])
    w = np.concatenate([segment_windows(chain, recording.samples[start:stop][:, idx], L, S)[0]
                        for start, stop in recording.segments.tolist()])
    if not len(w):
        raise ValueError(f"{recording.source}: no complete window (segments shorter than the window)")
    if len(w) > n_max:
        w = w[np.linspace(0, len(w) - 1, n_max).round().astype(int)]
    return quantise(bundle.model_input(w), *bundle.input_quant)


# --------------------------------------------------------------------------- statistics


def stats_ms(values, cdf: bool = False) -> dict:
    """``{n, mean, p50, p90, p99, max}`` of millisecond values (+ ``cdf`` at :data:`CDF_LEVELS`)."""
    a = np.asarray(values, float)
    if a.size == 0:
        return {"n": 0}
    out = {**percentiles(a), "mean": float(a.mean())}
    if cdf:
        out["cdf"] = {"levels": CDF_LEVELS, "ms": [float(v) for v in np.percentile(a, CDF_LEVELS)]}
    return out


def fmt(v, spec: str = ".2f", none: str = "–") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return none
    return format(v, spec)


def forced_thresholds(bundle, recording, seconds: float = 30.0) -> list[float]:
    """Per label, the output level that the model's outputs on ``recording`` reach half of the time."""
    from edge.model.inference import dequantise
    from edge.runtime import replay_outputs

    outs, idx = replay_outputs(bundle, recording)
    p = dequantise(outs[idx < seconds * recording.fs], *bundle.output_quant)
    out = []
    for k in range(p.shape[1]):
        levels = np.unique(p[:, k])
        frac_on = np.array([(p[:, k] >= v).mean() for v in levels])
        out.append(float(min(max(levels[np.argmin(np.abs(frac_on - 0.5))], 1 / 256), 1.0)))
    return out


def forced_decider(bundle, recording=None):
    """A policy under which commands flow whatever the model, so the command path's latency is measured:
    no dwell, no hysteresis, 200 ms refractory, and each label's threshold at the level its output
    reaches half of the time on ``recording`` (without one: 0.02, as the runtime tests do)."""
    from edge.decision import Decider, DecisionPolicy

    if recording is None:
        return Decider(DecisionPolicy(labels=tuple(bundle.labels), thresholds=0.02, hysteresis=0.01,
                                      min_dwell_ms=0, refractory_ms=200))
    return Decider(DecisionPolicy(labels=tuple(bundle.labels), thresholds=tuple(forced_thresholds(bundle, recording)),
                                  hysteresis=0.0, min_dwell_ms=0, refractory_ms=200))


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())
