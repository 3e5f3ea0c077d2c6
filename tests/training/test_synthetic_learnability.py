"""Synthetic grasp-and-lift labels are learnable, but not trivially, and harder across subjects."""

import pytest

from edge.synthetic import grasp_lift_series
from training.baseline import FilterBankBaseline


@pytest.fixture(scope="module")
def held_out():
    return [grasp_lift_series(1, m, seed=0) for m in (7, 8)]


def test_band_power_baseline_auc_is_between_chance_and_trivial(held_out):
    within = FilterBankBaseline().fit([grasp_lift_series(1, m, seed=0) for m in range(1, 7)]).auc(held_out)
    assert 0.6 < within < 0.95, within
    cross = FilterBankBaseline().fit(
        [grasp_lift_series(s, m, seed=0) for s in (2, 3) for m in (1, 2, 3)]).auc(held_out)
    assert 0.5 < cross < within, (cross, within)
