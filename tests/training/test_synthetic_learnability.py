"""Synthetic grasp-and-lift labels are learnable from the edge's own windows, not trivially, and
harder across subjects (the same property real EEG has)."""

import pytest

from edge.evaluation.datasets import GRASP_LIFT_LABELS
from edge.recordings.synthetic import grasp_lift_series
from training.data import GRASP_LIFT, build_windows
from training.metrics import Baseline, mean_columnwise_auc
from training.pipeline import channel_scale_of


def _windows(recs):
    return build_windows(recs, GRASP_LIFT, GRASP_LIFT_LABELS)[0]


@pytest.fixture(scope="module")
def held_out():
    return _windows([grasp_lift_series(1, m, seed=0, n_trials=12) for m in (7, 8)])


def _auc(train, test):
    base = Baseline("grasp-lift", 250.0, channel_scale_of(train.X)).fit(train.X, train.y)
    return mean_columnwise_auc(test.y, base.predict(test.X))


def test_baseline_auc_is_between_chance_and_trivial_and_lower_across_subjects(held_out):
    within = _auc(_windows([grasp_lift_series(1, m, seed=0, n_trials=12) for m in range(1, 7)]), held_out)
    assert 0.53 < within < 0.95, within
    cross = _auc(_windows([grasp_lift_series(s, m, seed=0, n_trials=12) for s in (2, 3) for m in (1, 2, 3)]),
                 held_out)
    assert cross < within, (cross, within)
