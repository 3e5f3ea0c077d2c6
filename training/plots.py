"""PNG plots written next to a training report: ROC per event, confusion matrix, training curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on a workstation job or in CI
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import confusion_matrix, roc_curve

from edge.tasks import get_task


def write_plots(report_dir: Path, task: str, labels, main: dict, ws=None) -> list[Path]:
    """Write the plots of the main (within-split) run; returns the files written."""
    report_dir = Path(report_dir)
    written = [_curves(report_dir / "training_curves.png", main["history"])]
    if get_task(task).multilabel:  # independent events: ROC per event; classes: confusion matrix
        written.append(_roc(report_dir / "roc.png", labels, main["test_y"], main["test_scores"],
                            main["float_test_scores"]))
    else:
        written.append(_confusion(report_dir / "confusion.png", labels, main["test_y"], main["test_scores"]))
    return written


def _save(fig, path: Path) -> Path:
    """Lay out, write and close a figure; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _curves(path: Path, history: dict) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key in ("loss", "val_loss"):
        if key in history:
            ax.plot(np.arange(1, len(history[key]) + 1), history[key], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("training curves (val = tune block)")
    ax.legend()
    return _save(fig, path)


def _roc(path: Path, labels, y, int8_scores, float_scores) -> Path:
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.5), sharex=True, sharey=True)
    for k, ax in enumerate(axes.ravel()[:len(labels)]):
        for scores, name, style in ((float_scores, "float", "-"), (int8_scores, "int8 (edge path)", "--")):
            if 0 < y[:, k].sum() < len(y):
                fpr, tpr, _ = roc_curve(y[:, k], scores[:, k])
                ax.plot(fpr, tpr, style, label=name)
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set_title(labels[k], fontsize=9)
    axes[0, 0].legend(fontsize=8)
    fig.supxlabel("false positive rate")
    fig.supylabel("true positive rate")
    fig.suptitle("ROC per event, held-out series 7-8")
    return _save(fig, path)


def _confusion(path: Path, labels, y, scores) -> Path:
    cm = confusion_matrix(y, np.argmax(scores, axis=1), labels=list(range(len(labels))))
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center")
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted (int8, edge path)")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix, test blocks")
    return _save(fig, path)
