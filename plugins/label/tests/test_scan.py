import pytest

from openr_core import get_component
from openr_label.mc import MCLabeler
from openr_label.scan import ScanLabeler, scan_soft_labels

RIGHT, WRONG = ("ok 0", "ans 1"), ("bad 0", "ans 0")


def test_soft_labels_rescale_the_window_before_the_predicted_error():
    # error at step 3 (first MC = 0); window 2 covers steps 1 and 2: min(MC / SC, 1)
    assert scan_soft_labels([0.5, 0.25, 0.5, 0.0, 0.0], 0.5, 2) == (3, [1.0, 0.5, 1.0, 0.0, 0.0])
    assert scan_soft_labels([0.5, 0.25, 0.5, 0.0, 0.0], 1.0, 1) == (3, [1.0, 1.0, 0.5, 0.0, 0.0])
    assert scan_soft_labels([0.0, 0.5, 0.0], 0.5, 2) == (0, [0.0, 0.0, 0.0])  # MC after the error is ignored
    # a wrong answer MC never gave 0 to (the last estimate is not the graded one): its last step
    assert scan_soft_labels([0.25, 0.25], 0.5, 0) == (1, [1.0, 0.0])


def test_scan_labels_right_answers_free_drops_unsure_problems_and_rescales_by_confidence(toy):
    p0, p1, p2 = toy.task.load("train", 3)
    # the completer's rollouts from the bare question: p0 right 4 of 4, p1 0 of 4, p2 3 of 4
    gen = toy.Generator(solutions={"p0": [RIGHT], "p1": [WRONG], "p2": [RIGHT, RIGHT, RIGHT, WRONG]}, fail_every=4)
    wrong = ("ok 0", "ok 1", "ok 2", "bad 3", "ans 0")  # a good prefix: 3 of 4 rollouts right
    sols = [[wrong, ("ok 0", "ok 1", "ans 1")], [("ok 0", "bad 1", "ans 0"), ("ok 0", "ans 1")], [("ok 0", "bad 1", "ans 0")]]
    labeler = ScanLabeler(k=4, window=2)
    out = labeler.label_solutions([p0, p1, p2], sols, task=toy.task, generator=gen)
    assert [e.completions for e in out] == [wrong, ("ok 0", "ok 1", "ans 1"), ("ok 0", "ans 1"), ("ok 0", "bad 1", "ans 0")]
    assert out[0].soft_labels == (1.0, 0.75, 0.75, 0.0, 0.0)  # SC 1: the window keeps MC's 0.75
    assert out[0].labels == (True, True, True, False, False)
    assert out[1].soft_labels == (1.0, 1.0, 1.0) and out[1].meta["rollouts"] == 0  # right answer: no rollouts
    assert out[2].labels == (True, True) and out[2].meta["rollouts"] == 4  # p1's root rollouts, charged once
    assert out[3].soft_labels == (1.0, 0.0, 0.0)  # SC 0.75: min(0.75 / 0.75, 1)
    assert [e.meta["confidence"] for e in out] == [1.0, 1.0, 0.0, 0.75]
    assert labeler.stats["dropped"] == 1  # p1's wrong solution: SC 0 is not above min_confidence 0
    # roots 3 x 4, then p0's wrong solution 4 prefixes x 4 and p2's 2 x 4, in two generator calls
    assert len(gen.calls) == 2 and labeler.stats["rollouts"] == 36 == sum(r.params.n for r in gen.requests)
    assert sum(e.meta["rollouts"] for e in out) == 36
    plain = MCLabeler(k=4).label_solutions([p0], [sols[0]], task=toy.task, generator=toy.Generator(fail_every=4))
    assert plain[0].soft_labels == (0.75, 0.75, 0.75, 0.0, 0.0)  # plain MC keeps 0.75 where SCAN trusts step 0


def test_min_confidence_drops_wrong_solutions_of_weak_problems(toy):
    p2 = toy.task.load("train", 3)[2]
    gen = toy.Generator(solutions={"p2": [RIGHT, RIGHT, RIGHT, WRONG]})
    labeler = ScanLabeler(k=4, min_confidence=0.75)
    out = labeler.label_solutions([p2], [[("ok 0", "bad 1", "ans 0"), ("ok 0", "ans 1")]], task=toy.task, generator=gen)
    assert [e.completions for e in out] == [("ok 0", "ans 1")] and labeler.stats["dropped"] == 1
    assert labeler.stats["rollouts"] == 4 and len(gen.calls) == 1


def test_scan_is_registered_and_checks_its_fields():
    assert isinstance(get_component("labeler", "scan"), ScanLabeler)
    with pytest.raises(Exception, match="min_confidence"):
        ScanLabeler(min_confidence=1.5)
