import math

import pytest

from openr_prm import metrics as M


def test_processbench_hand_computed():
    labels = [-1, -1, 2, 0, 1]
    predictions = [-1, 1, 2, 1, 1]  # correct: 1/2 right; erroneous: 2 of 3 exact
    out = M.processbench(predictions, labels)
    assert out["correct_accuracy"] == 0.5 and out["error_accuracy"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_never_flag_and_all_correct_predictors_score_zero_f1():
    labels = [-1, 3, 0, -1]
    never = M.processbench([-1] * 4, labels)
    assert never["correct_accuracy"] == 1.0 and never["error_accuracy"] == 0.0 and never["f1"] == 0.0
    always_first = M.processbench([0] * 4, labels)
    assert always_first["error_accuracy"] == 0.5 and always_first["correct_accuracy"] == 0.0 and always_first["f1"] == 0.0
    only_correct = M.processbench([-1, -1], [-1, -1])  # no erroneous samples: not measured, not 0
    assert only_correct == {"error_accuracy": None, "correct_accuracy": 1.0, "f1": None, "erroneous": 0, "correct": 2}
    only_erroneous = M.processbench([1, -1, 0], [1, 2, 0])  # a limit below ProcessBench's first correct sample
    assert only_erroneous == {"error_accuracy": 2 / 3, "correct_accuracy": None, "f1": None, "erroneous": 3, "correct": 0}
    assert M.tune_threshold([[0.1], [0.9]], [0, 0]) == (None, None)


def test_first_error_prediction_and_threshold_tuning():
    assert M.predict_first_error([0.9, 0.4, 0.1], 0.5) == 1
    assert M.predict_first_error([0.9, 0.6], 0.5) == -1
    scores = [[0.9, 0.8], [0.9, 0.3, 0.2], [0.2, 0.9]]
    labels = [-1, 1, 0]
    threshold, f1 = M.tune_threshold(scores, labels)
    assert f1 == 1.0 and 0.3 < threshold <= 0.8


def test_auroc_hand_computed():
    assert M.auroc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert M.auroc([0.1, 0.9], [True, False]) == 0.0
    assert M.auroc([0.5, 0.5], [True, False]) == 0.5
    assert M.auroc([0.3, 0.6, 0.6, 0.9], [False, True, False, True]) == pytest.approx(0.875)
    assert math.isnan(M.auroc([0.1], [True]))


def test_best_of_n_reducers_and_ties():
    groups = [[([0.9, 0.5], False), ([0.6, 0.6], True)], [([0.5], True), ([0.5], False)]]
    assert M.best_of_n(groups, "min") == 1.0  # picks 2nd in group 1; tie in group 2 goes to the first
    assert M.best_of_n(groups, "last") == 1.0
    assert M.best_of_n(groups, "mean") == 0.5
    assert M.best_of_n([[([0.9, 0.9], False), ([1.0, 0.7], True)]], "product") == 0.0
