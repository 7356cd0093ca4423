"""The arith error classifier (`ArithTask.error_type`): wrong solutions of every kind, built by
hand from one problem (the PRM augmentation's kinds: plugins/prm/tests/test_eval_lessons.py)."""

import pytest

from openr_arith.task import ArithTask
from openr_core import Problem

QUESTION = "ann has 57 coins . she gets 8 more . she loses 3 . she gets 6 more . how many coins now ?"
GOLD = ["57 + 8 = 65", "65 - 3 = 62", "62 + 6 = 68", "answer 68"]


@pytest.mark.parametrize("steps, kind", [
    (GOLD, None),
    (GOLD[:2], None),  # a right prefix: no wrong step (a missing answer line is no step-level error)
    (["57 + 8 = 65", "65 - 3 = 61", "61 + 6 = 67", "answer 67"], "arithmetic"),
    (["75 + 8 = 83", "83 - 3 = 80"], "wrong start"),
    (["57 + 8 = 65", "56 - 3 = 53"], "wrong start"),  # later steps start from the previous result
    (["57 - 8 = 49", "49 - 3 = 46"], "wrong operation/operand"),
    (["57 + 9 = 66"], "wrong operation/operand"),
    (["57 + 8 = 65", "65 + 3 = 67"], "wrong operation/operand"),  # wrong operation, its result off too
    (["58 + 9 = 66"], "wrong start"),  # start and operand wrong: the first in reading order
    (["57 + 8 = 65", "answer 65"], "early or missing answer"),
    (GOLD[:3] + ["68 + 1 = 69", "answer 69"], "early or missing answer"),  # computes on, no answer line
    (GOLD[:3] + ["answer 67"], "wrong answer"),
    (["57 + 8 = 65", "65 minus 3 is 62"], "malformed"),
    (GOLD[:3] + ["the answer is 68"], "malformed"),
    (GOLD + ["answer 68"], "malformed"),  # a line after the answer
])
def test_each_kind_of_first_error(steps, kind):
    task = ArithTask()
    assert task.error_type(Problem("p", QUESTION, "68"), steps) == kind
    assert kind is None or kind in task.error_types


def test_a_question_that_is_not_arith_has_no_kind():
    assert ArithTask().error_type(Problem("p", "what is 2 + 2 ?", "4"), ["2 + 2 = 5"]) is None
