"""``neurogrip calibrate``: a base bundle adapted to one person from their short session, on the Pi.

What is adapted (docs/design.md §7) — the parts a short session can estimate, nothing that needs
TensorFlow:

1. the **normalisation** (per-channel scale; the band-power standardisation of feature models),
   re-estimated on the person's windows, since amplitude is what differs most between people and
   electrode placements;
2. the **last layer** (:mod:`edge.calibration.head`): re-fitted on the int8 trunk's features of the
   person's windows, pulled towards the base layer by an L2 penalty.

Which of the two normalisations and which penalty (``CALIBRATION_PENALTIES``) is chosen on an
inner time block of the calibration part.  The base and the calibrated bundle are then both run
on the held-out block (the session's last part, :mod:`edge.calibration.session`), and a calibrated
bundle that is worse there is refused, not written; one that passes is refitted on every window of the
session with the same choices.  The decision policy is the base bundle's, except for EMG bundles
with the time-domain expert, which get ``CALIBRATION_EMG_STRIDE_MS`` and ``CALIBRATION_EMG_DECISION``.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge import config
from edge._checks import check_number
from edge.bundle import load_bundle
from edge.bundle.device_trust import root_evidence
from edge.bundle.keys import DEVICE_KEY_ENV, key_id, load_private_key
from edge.bundle.loader import seal
from edge.bundle.trust import TrustPolicy
from edge.calibration.head import fit_head, fit_lda, fuse
from edge.calibration.session import calibration_session
from edge.calibration.windows import SessionWindows, Thinning, held_out_rows
from edge.decision.evidence import overlay_decision
from edge.errors import CalibrationError
from edge.evaluation.metrics import accuracy, mean_columnwise_auc
from edge.model.head import Head
from edge.model.inference import Int8Model, dequantise
from edge.model.inputs import log_td_features, model_inputs, quantise, window_spec


@dataclass
class CalibrationResult:
    """What a calibration wrote.  ``metric`` names the figure (accuracy, or mean column AUC); a
    refused calibration raises :class:`~edge.errors.CalibrationError` instead."""

    out: Path
    metric: str
    base: float
    calibrated: float
    choice: dict = field(default_factory=dict)
    n_windows: dict = field(default_factory=dict)
    seconds: float = 0.0
    session_hash: str = ""
    thinning: Thinning | None = None  # a long session's windows, taken at a larger stride

    def choice_text(self) -> str:
        """What was adapted, in words (the console never shows a Python structure)."""
        c = self.choice
        parts = [f"normalisation {c['normalisation']}", f"penalty {c['penalty']:g}"] if c else []
        if c.get("time_domain"):
            td = c["time_domain"]
            parts.append(f"{td['classifier']} on time-domain features over {'/'.join(map(str, td['lengths']))} samples")
        if c.get("refit"):
            parts.append(f"refitted on {c['refit']}")
        return ", ".join(parts) or "nothing adapted"

    def summary(self) -> str:
        return (f"held-out {self.metric}: base {self.base:.4f} -> calibrated {self.calibrated:.4f}; wrote {self.out} "
                f"({self.n_windows.get('calibration', 0)} calibration / {self.n_windows.get('held_out', 0)} "
                f"held-out windows; {self.choice_text()}; {self.seconds:.1f} s)"
                + (f"; {self.thinning}" if self.thinning else ""))


def _score(mode: str, y: np.ndarray, probs: np.ndarray, what: str) -> float:
    if mode == "multiclass":
        return accuracy(y.argmax(axis=1), probs.argmax(axis=1))
    try:
        return float(mean_columnwise_auc(y, probs))
    except ValueError:  # no event label both present and absent in the part
        raise CalibrationError(f"the {what} windows hold no event both present and absent; record a longer "
                               "session with every cue of the paradigm") from None


def _targets(mode: str, y: np.ndarray) -> np.ndarray:
    return y.argmax(axis=1) if mode == "multiclass" else y


def _usable(mode: str, sw: SessionWindows) -> np.ndarray:
    """Windows with a truth: one class for one-class tasks; every window for event labels."""
    return sw.y.sum(axis=1) == 1 if mode == "multiclass" else np.ones(len(sw.y), bool)


def _check_part(mode: str, y: np.ndarray, labels, what: str, minimum: int = config.CALIBRATION_MIN_WINDOWS,
                every_class: bool = True) -> None:
    if len(y) < minimum:
        raise CalibrationError(f"only {len(y)} {what} windows (need >= {minimum}); record a longer session")
    if mode == "multiclass" and every_class:
        counts = y.sum(axis=0)
        short = [lab for lab, c in zip(labels, counts) if c < config.CALIBRATION_MIN_WINDOWS // 4]
        if short:
            raise CalibrationError(f"the {what} part has too few windows of {', '.join(short)}; record every "
                                   "cue of the paradigm (at least 4 repetitions of each)")


class _Features:
    """The int8 trunk's features of every session window, under one normalisation (computed once)."""

    _BATCH = 256  # windows per step: the float model input of a whole session is as large as its windows

    def __init__(self, model: Int8Model, windows: np.ndarray, spec: dict, input_quant):
        # in batches (a session's WindowArray makes its windows on demand, edge.calibration.session);
        # every step is per window, so the values are those of one call over all the windows
        n = len(windows)
        for a in range(0, max(n, 1), self._BATCH):
            xq = quantise(model_inputs(windows[a:a + self._BATCH], spec), *input_quant)
            features, _ = model.run_features(xq)
            if a == 0:
                self.xq = np.empty((n,) + xq.shape[1:], xq.dtype)
                self.features = np.empty((n,) + features.shape[1:], features.dtype)
            self.xq[a:a + len(xq)], self.features[a:a + len(xq)] = xq, features
        self.spec = spec
        self.zero_point = int(input_quant[1])

    def _batched(self, mask: np.ndarray, fn) -> np.ndarray:
        """``fn(features, xq)`` of the masked windows, 256 at a time (their float64 temporaries are 16
        times the int8 inputs per window), concatenated."""
        rows = np.flatnonzero(mask)
        return np.concatenate([fn(self.features[r], self.xq[r])
                               for r in (rows[a:a + self._BATCH] for a in range(0, max(len(rows), 1), self._BATCH))])

    def td(self, mask: np.ndarray, lengths) -> np.ndarray:
        """The log time-domain features of the masked windows' int8 inputs (the LDA expert's input)."""
        return self._batched(mask, lambda _, xq: log_td_features(xq, self.zero_point, lengths,
                                                                 config.CALIBRATION_TD_THRESHOLD))

    def head_inputs(self, head: Head, mask: np.ndarray) -> np.ndarray:
        """What ``head`` reads for the masked windows: the trunk's features, and its TD features."""
        return self._batched(mask, lambda feats, xq: head.inputs(feats, xq, self.zero_point))


def _td_lengths(base, model: Int8Model) -> tuple[int, ...]:
    """The window tails (samples) of the time-domain expert, or () where calibration adds none: it
    is for EMG raw-window models with a softmax layer (``CALIBRATION_TD_TAILS_MS``; None: the
    whole window)."""
    if (base.task_spec.modality != "emg" or base.task_spec.mode != "multiclass" or len(model.input_shape) != 3
            or not config.CALIBRATION_TD_TAILS_MS):
        return ()
    length, fs = model.input_shape[1], base.signal_chain().fs_out
    tails = [length if ms is None else min(length, max(3, round(ms * fs / 1000.0)))
             for ms in config.CALIBRATION_TD_TAILS_MS]
    return tuple(dict.fromkeys(tails))


def _as_run(head: Head, features: np.ndarray, output_quant) -> np.ndarray:
    """What the runtime's probabilities are for these features: the head's, through the int8 output."""
    return dequantise(quantise(head.apply(features), *output_quant), *output_quant)


def calibrate(bundle_path, data, out, *, holdout: float = config.CALIBRATION_HOLDOUT, progress=None,
              force: bool = False, sign_key=None, overwrite: bool = False) -> CalibrationResult:
    """Adapt the bundle at ``bundle_path`` to the person recorded in ``data``; write it to ``out``.

    Parameters
    ----------
    bundle_path : path
        The base bundle (any task with a softmax or sigmoid last layer).
    data : path or list of paths
        The session: a ``neurogrip record`` file (XDF), an EDF+/BDF+ with annotations, or a session
        of a dataset neurogrip reads (a Myo ``training0`` folder, grasp-lift series files, Muse
        files — several files are one session, in the order given).
    out : path
        The calibrated bundle (directory, or ``.zip``).
    holdout : float
        Fraction of each session file (its end, in time) held out to judge the result.
    force : bool
        Write the calibrated bundle even if it is worse than the base on the held-out block.
    overwrite : bool
        Replace an existing ``out``; without it an existing path (or a link) is refused before any work.
    sign_key : path, optional
        Sign the calibrated bundle with this Ed25519 private key (:mod:`edge.bundle.trust`).  Where a
        trust store is installed, an unsigned bundle would not load: calibration then refuses to
        start without a key, rather than write a bundle the runtime refuses.

    Raises
    ------
    CalibrationError
        The session is unusable, or the calibrated bundle is worse than the base (unless ``force``).
    """
    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    check_number(holdout, "holdout", lo=0.0, lo_open=True, hi=0.5, exc=CalibrationError,
                 fix="hold out a fraction in (0, 0.5], e.g. 0.25")
    if Path(out).resolve() == Path(bundle_path).resolve():
        raise CalibrationError(f"--out {out} is the base bundle itself; write the calibrated bundle elsewhere")
    if Path(out).is_symlink():
        raise CalibrationError(f"--out {out} is a link (the service's bundle?): write elsewhere and use --install, "
                               "which switches the link atomically")
    if Path(out).exists() and not overwrite:
        raise CalibrationError(f"--out {out} already exists; choose another path, or pass --overwrite to replace it")
    base = load_bundle(bundle_path)
    policy = TrustPolicy.from_environment(bundle_path)
    if sign_key is None and policy.enforced:
        # Signed by this Pi's own key, trusted through the base's workstation signature (edge.bundle.device_trust):
        # the workstation's private key never comes here.
        sign_key = Path(os.environ.get(DEVICE_KEY_ENV) or config.DEVICE_KEY_FILE)
        if not sign_key.is_file():
            raise CalibrationError(f"this machine loads only signed bundles (a trust store is installed) and has no "
                                   f"device key to sign the calibrated bundle ({sign_key}): make it once with "
                                   "deploy/install.sh, or 'neurogrip keygen --device' (never copy the workstation's "
                                   "key here; docs/bundle-signing.md)")
        kid = key_id(load_private_key(sign_key).public_key())
        if kid not in policy.keys and kid not in policy.device_keys:
            raise CalibrationError(f"the device key {sign_key} (id {kid[:16]}) is not trusted on this machine: install "
                                   f"its .pub into {config.DEVICE_KEYS_DIR} (docs/bundle-signing.md), or the "
                                   "calibrated bundle would not load")
    if sign_key is not None:
        load_private_key(sign_key)  # a missing key or an unsafe file fails now, not after the work
    mode, labels = base.task_spec.mode, base.labels
    # one file at a time, within what the edge's memory holds (edge.calibration.session)
    sw, rec, session_hash, parts = calibration_session(data, base)
    if rec.thinning is not None:  # a long session: fewer windows, evenly over all of it (edge.calibration.session)
        say(f"[calibrate] {rec.thinning}")
    guard = round(config.CALIBRATION_GUARD_S * rec.fs)
    usable = _usable(mode, sw)
    held = held_out_rows(parts, rec.n_samples, holdout)
    cal = usable & sw.outside(held, guard)
    test = usable & sw.inside(held)
    _check_part(mode, sw.y[cal], labels, "calibration")
    _check_part(mode, sw.y[test], labels, "held-out")
    # the inner split: the calibration part's own last block chooses penalty and normalisation
    cal_rows = np.zeros(rec.n_samples, bool)
    for a, b in zip(sw.first[cal], sw.last[cal]):
        cal_rows[a:b + 1] = True
    inner = held_out_rows(parts, rec.n_samples, config.CALIBRATION_INNER, usable=cal_rows)
    fit_w, val_w = cal & sw.outside(inner, guard), cal & sw.inside(inner)
    _check_part(mode, sw.y[fit_w], labels, "fit")
    # the choosing block is the end of the calibration part: a few cues, fewer windows
    _check_part(mode, sw.y[val_w], labels, "choosing", config.CALIBRATION_MIN_WINDOWS // 4, every_class=False)
    say(f"[calibrate] {len(sw.y)} windows: {cal.sum()} calibration ({fit_w.sum()} fit, {val_w.sum()} choose), "
        f"{test.sum()} held out")

    # the head being replaced: a calibrated base's own (calibrating again starts from it), else the graph's
    model = Int8Model(base.model_bytes, keep_features=True)
    # (a fused head's layer and LDA share one bias and cannot be told apart: calibrating such a bundle
    # again starts from the graph's own layer, and fits the LDA anew)
    prior = base.head if base.head is not None and not base.head.td_lengths else model.base_head
    oq = base.output_quant
    fs_out = base.signal_chain().fs_out
    features_spec = bool(base.window.get("features"))
    norms = {"base": _Features(model, sw.windows, dict(base.window), base.input_quant)}

    def person_spec(mask):
        est = window_spec(sw.windows[mask], fs_out, base.window.get("clip"), features_spec)
        if features_spec:  # only the standardisation is re-estimated: bands, clip and rate stay the base's
            est["features"] = {**base.window["features"], "center": est["features"]["center"],
                               "scale": est["features"]["scale"]}
        return {**base.window, **est}

    norms["person"] = _Features(model, sw.windows, person_spec(fit_w), base.input_quant)
    best = None
    for norm, f in norms.items():
        for lam in config.CALIBRATION_PENALTIES:
            head = fit_head(f.features[fit_w], _targets(mode, sw.y[fit_w]), prior, lam)
            s = _score(mode, sw.y[val_w], _as_run(head, f.features[val_w], oq), "choosing")
            key = (round(s, 6), norm == "base", lam)  # ties: the base normalisation, then the stronger pull
            if best is None or key > best[0]:
                best = (key, norm, lam)
    _, norm, lam = best
    td = _td_lengths(base, model)

    def adapt(mask):
        """Normalisation, layer (and the time-domain expert) fitted on the masked windows."""
        f = norms[norm] if norm == "base" else _Features(model, sw.windows, person_spec(mask), base.input_quant)
        h = fit_head(f.features[mask], _targets(mode, sw.y[mask]), prior, lam)
        if td:
            # EMG: the re-fitted layer fused with a shrinkage LDA on the window's log time-domain
            # features (chosen over the layer alone on the development participants: docs/design.md § 7)
            w, b = fit_lda(f.td(mask, td), _targets(mode, sw.y[mask]), len(labels))
            h = fuse(h, w, b, td, config.CALIBRATION_TD_THRESHOLD)
        return f, h

    final, head = adapt(cal)
    choice = {"normalisation": norm, "penalty": lam}
    if td:
        choice["time_domain"] = {"lengths": list(td), "classifier": "shrinkage LDA"}
    # the reference is what the person runs today: the base bundle with its own head, fused or not
    reference = base.head or prior
    base_score = _score(mode, sw.y[test], _as_run(reference, norms["base"].head_inputs(reference, test), oq),
                        "held-out")
    cal_score = _score(mode, sw.y[test], _as_run(head, final.head_inputs(head, test), oq), "held-out")
    metric = "accuracy" if mode == "multiclass" else "mean column AUC"
    result = CalibrationResult(Path(out), metric, base_score, cal_score, choice,
                               {"calibration": int(cal.sum()), "held_out": int(test.sum())}, 0.0, session_hash,
                               rec.thinning)
    written = cal_score >= base_score or force
    if written and config.CALIBRATION_REFIT_ALL:
        # judged, now fitted on every window of the session with the same choices: the held-out
        # block is a quarter of a person's few minutes, too much to leave out of what they get
        final, head = adapt(cal | test)
        result.choice["refit"] = "all windows"
    if written:
        _write(base, final.spec, head, out, result, holdout, sign_key, emg_decision=bool(td))
    result.seconds = time.perf_counter() - t0
    if not written:
        raise CalibrationError(f"the calibrated bundle is worse than the base on the held-out block ({metric} "
                               f"{cal_score:.4f} < {base_score:.4f}); nothing written: record a longer session, "
                               "check the electrodes' placement, or keep using the base bundle")
    return result


def _emg_decision(base, spec: dict) -> tuple[dict, dict]:
    """The window stride and decision parameters of an EMG bundle calibrated with the time-domain
    expert (``CALIBRATION_EMG_STRIDE_MS``, ``CALIBRATION_EMG_DECISION``): its posteriors are sharper
    than the base layer's, for which the base's parameters were chosen (docs/design.md § 7)."""
    window, decision = dict(spec), dict(base.manifest["decision"])
    if config.CALIBRATION_EMG_STRIDE_MS is not None:
        fs_out = base.signal_chain().fs_out
        window["stride"] = max(1, round(config.CALIBRATION_EMG_STRIDE_MS * fs_out / 1000.0))
        window["stride_ms"] = window["stride"] * 1000.0 / fs_out
    decision = overlay_decision(decision, config.CALIBRATION_EMG_DECISION)
    return window, decision


def _write(base, spec: dict, head: Head, out, result: CalibrationResult, holdout: float, sign_key,
           emg_decision: bool = False) -> None:
    calibration = {"parent": base.content_hash, "session": result.session_hash,
                   "method": "on-device: normalisation + last layer" + (" fused with a shrinkage LDA on log "
                                                                         "time-domain features" if head.td_lengths
                                                                         else "") + " (edge.calibration)",
                   "holdout": f"last {holdout:.0%} of each session file" + (
                       ", judged on it, then refitted on every window" if result.choice.get("refit") else ""),
                   "choice": result.choice, "windows": result.n_windows,
                   # a long session's windows were taken further apart than calibration's own stride
                   **({"window_stride_ms": {"taken": round(result.thinning.stride_ms, 3),
                                            "instead_of": round(result.thinning.base_stride_ms, 3)}}
                      if result.thinning else {}),
                   "held_out": {"metric": result.metric, "base": round(result.base, 6),
                                "calibrated": round(result.calibrated, 6)}}
    root = root_evidence(base.manifest, base.signature)  # what a device-key signature is trusted through
    window, decision = _emg_decision(base, spec) if emg_decision else (spec, base.manifest["decision"])
    m = {**base.manifest, "window": window, "decision": decision, "head": head.to_manifest(),
         "provenance": {**base.manifest.get("provenance", {}), "parent": base.content_hash,
                        "calibration": calibration, **(root or {})},
         "metrics": {**base.manifest.get("metrics", {}), "calibration": calibration["held_out"]}}
    key = None if sign_key is None else load_private_key(sign_key)
    try:
        # Written, hashed, validated and signed once, then checked as the runtime will load it (this
        # machine's trust policy, the model): a bundle the runtime would refuse is not left behind.
        seal(out, m, base.model_bytes, sign_key=key)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True) if Path(out).is_dir() else Path(out).unlink(missing_ok=True)
        raise
