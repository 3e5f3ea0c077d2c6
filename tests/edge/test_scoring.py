"""edge.evaluation.scoring: the continuous-use scorer on hand-made streams with known answers."""

import numpy as np
import pytest

from edge.evaluation.scoring import combine, score_continuous, segments_of

FS = 100.0
# rest 2 s, close 1 s, rest 1 s, open 1 s, radial (unmapped) 1 s: 6 s in all, 3 s of rest
TRUTH = np.repeat([0, 5, 0, 6, 1], [200, 100, 100, 100, 100])
MAP = {0: None, 1: None, 5: "GRASP", 6: "OPEN"}


def test_segments():
    segs = segments_of(TRUTH)
    assert [(s.start, s.stop, s.label) for s in segs] == [(0, 200, 0), (200, 300, 5), (300, 400, 0),
                                                         (400, 500, 6), (500, 600, 1)]
    assert segments_of(np.zeros(0, int)) == []
    with pytest.raises(ValueError, match="1-D"):
        segments_of(np.zeros((3, 2)))


def test_perfect_controller():
    s = score_continuous(TRUTH, FS, [(230, "GRASP"), (420, "OPEN")], MAP)
    assert s["commands"] == 2 and s["detected"] == 2 and s["gestures"] == 2
    assert s["detected_fraction"] == 1.0 and s["false_activations"] == 0 and s["wrong_commands"] == 0
    assert s["delay_ms"]["p50"] == pytest.approx(250.0)  # 300 ms and 200 ms
    assert s["minutes"] == pytest.approx(0.1) and s["rest_minutes"] == pytest.approx(0.05)


def test_false_activation_wrong_command_and_missed_gesture():
    cmds = [(50, "GRASP"),    # during rest: a false activation (and wrong)
            (250, "OPEN"),    # while closing: wrong
            (550, "GRASP")]   # during an unmapped gesture: wrong, not a false activation
    s = score_continuous(TRUTH, FS, cmds, MAP)
    assert s["false_activations"] == 1 and s["false_activations_per_min"] == pytest.approx(1 / 0.05)
    assert s["wrong_commands"] == 3 and s["wrong_per_min"] == pytest.approx(3 / 0.1)
    assert s["detected"] == 0 and s["detected_fraction"] == 0.0 and s["delay_ms"] == {"n": 0}
    assert [c["verdict"] for c in s["per_command"]] == ["false activation", "wrong", "wrong"]


def test_grace_counts_a_late_command_for_the_gesture_it_belongs_to():
    late = [(310, "GRASP")]  # 100 ms into the rest after "close": the window still holds the gesture
    strict = score_continuous(TRUTH, FS, late, MAP)
    assert strict["false_activations"] == 1 and strict["detected"] == 0
    lenient = score_continuous(TRUTH, FS, late, MAP, grace_s=0.26)
    assert lenient["false_activations"] == 0 and lenient["detected"] == 1
    assert lenient["per_command"][0]["verdict"] == "late"
    assert lenient["delay_ms"]["p50"] == pytest.approx(1100.0)  # from the gesture's start
    # outside the grace, or another command, it is a false activation again
    assert score_continuous(TRUTH, FS, [(340, "GRASP")], MAP, grace_s=0.26)["false_activations"] == 1
    assert score_continuous(TRUTH, FS, [(310, "OPEN")], MAP, grace_s=0.26)["false_activations"] == 1


def test_only_the_first_command_of_a_gesture_sets_its_delay():
    s = score_continuous(TRUTH, FS, [(210, "GRASP"), (280, "GRASP")], MAP)
    assert s["detected"] == 1 and s["delays_ms"] == [pytest.approx(100.0)] and s["wrong_commands"] == 0


def test_combine_pools_time_and_delays():
    a = score_continuous(TRUTH, FS, [(230, "GRASP"), (50, "OPEN")], MAP)
    b = score_continuous(TRUTH, FS, [(420, "OPEN")], MAP)
    c = combine([a, b])
    assert c["replays"] == 2 and c["minutes"] == pytest.approx(0.2) and c["false_activations"] == 1
    assert c["false_activations_per_min"] == pytest.approx(1 / 0.1)
    assert c["detected"] == 2 and c["gestures"] == 4 and c["detected_fraction"] == 0.5
    assert c["delay_ms"]["n"] == 2


def test_bad_input():
    with pytest.raises(ValueError, match="past the end"):
        score_continuous(TRUTH, FS, [(600, "GRASP")], MAP)
    with pytest.raises(ValueError, match="fs"):
        score_continuous(TRUTH, 0.0, [], MAP)
