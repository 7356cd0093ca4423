import random

import pytest

from openr_arith import problems as P
from openr_arith.task import ArithTask


@pytest.fixture(scope="module")
def task():
    return ArithTask()


def solved(task, split="test", i=0):
    problem = task.load(split, i + 1)[i]
    return problem, problem.meta["solution"].split("\n")


def test_reference_solutions_verify_and_grade(task):
    for problem in task.load("test", 200):
        steps = problem.meta["solution"].split("\n")
        assert all(task.verify_steps(problem, steps))
        assert task.first_error(problem, steps) == -1
        assert task.grade(problem, problem.meta["solution"]).correct


def test_hand_written_solution():
    problem = P.parse_question("ann has 57 coins . she gets 8 more . she loses 3 . she gets 6 more . how many coins now ?")
    assert problem.ops == (("+", 8), ("-", 3), ("+", 6))
    good = ["57 + 8 = 65", "65 - 3 = 62", "62 + 6 = 68", "answer 68"]
    assert P.check_steps(problem, good) == [True, True, True, True]
    wrong_result = ["57 + 8 = 65", "65 - 3 = 61", "61 + 6 = 67", "answer 67"]
    assert P.check_steps(problem, wrong_result) == [True, False, True, True]  # later steps are locally right
    assert P.first_error(problem, wrong_result) == 1
    wrong_operand = ["57 + 8 = 65", "65 - 4 = 61", "61 + 6 = 67", "answer 67"]
    assert P.first_error(problem, wrong_operand) == 1
    wrong_copy = ["57 + 8 = 65", "66 - 3 = 63", "63 + 6 = 69", "answer 69"]
    assert P.first_error(problem, wrong_copy) == 1
    early_answer = ["57 + 8 = 65", "answer 65"]
    assert P.check_steps(problem, early_answer) == [True, False]
    extra_step = [*good, "68 + 1 = 69"]
    assert P.check_steps(problem, extra_step)[-1] is False
    wrong_answer_line = [*good[:3], "answer 67"]
    assert P.first_error(problem, wrong_answer_line) == 3


@pytest.mark.parametrize("text", ["", "answer", "answer -", "57 + = 65\nanswer x", "\x00\x01", "answer 12 13",
                                  "9" * 5000, "answer 99999999999999999999999 extra", "= = =\n\n\n",
                                  "answer " + "1" * 5000, "1" * 5000 + " + 1 = 2\nanswer 2"])
def test_malformed_output_is_wrong_never_crashes(task, text):
    problem, _ = solved(task)
    assert task.grade(problem, text).correct is False
    steps = task.split_steps(text)
    assert not all(task.verify_steps(problem, steps)) or not steps


def test_grade_reads_last_answer_line_with_spaces(task):
    problem, steps = solved(task)
    decoded = " \n ".join(steps)  # how the word-level tokenizer decodes
    assert task.grade(problem, decoded).correct
    assert task.grade(problem, decoded + f" \n answer {int(problem.answer) + 1}").correct is False


def test_splits_are_fixed_distinct_and_seeded(task):
    test = task.load("test")
    assert len(test) == 1000 and len(task.load("dev")) == 500 and len(task.load("ood")) == 500
    assert [p.question for p in ArithTask().load("test", 50)] == [p.question for p in test[:50]]
    held_out = {p.question for p in test} | {p.question for p in task.load("dev")}
    train = task.load("train", 3000)
    assert not held_out & {p.question for p in train}
    assert [p.question for p in ArithTask(train_seed=1).load("train", 20)] != [p.question for p in train[:20]]
    assert [p.question for p in ArithTask().load("train", 20)] == [p.question for p in train[:20]]
    assert min(p.meta["n_ops"] for p in task.load("ood")) == 6  # 3..5 steps + 3 longer
    assert max(p.meta["n_ops"] for p in test) == 5


def test_difficulty_knobs(task):
    hard = ArithTask(min_steps=4, max_steps=4, operators=("+", "-", "*"), start_min=100, start_max=150, max_value=400)
    problems = hard.load("test", 300)
    assert {p.meta["n_ops"] for p in problems} == {4}
    ops = {op for p in problems for op in hard._parsed(p).ops}
    assert {o for o, _ in ops} == {"+", "-", "*"}
    for p in problems:
        parsed = hard._parsed(p)
        assert 100 <= parsed.start <= 150 and all(0 <= v <= 400 for v in parsed.values())
        assert P.parse_question(p.question) == parsed


def test_bad_difficulty_and_split_are_clear_errors():
    from openr_core import ConfigError

    with pytest.raises(ConfigError, match="min_steps"):
        ArithTask(min_steps=5, max_steps=3)
    with pytest.raises(ConfigError, match="unknown split 'tset'"):
        ArithTask().load("tset")
    with pytest.raises(ConfigError, match="unbounded"):
        ArithTask().load("train")


def test_corrupted_solutions_make_one_consistent_error_of_their_kind():
    """Each kind errs where and how it says; every operation step computes what it writes, so
    only a check against the problem (not the step's arithmetic) can find the error."""
    problem = P.parse_question("ann has 57 coins . she gets 8 more . she loses 3 . she gets 6 more . how many coins now ?")
    for seed in range(30):
        rng = random.Random(seed)
        for kind in P.CORRUPTIONS:
            steps = P.corrupted_solution(problem, rng, kind)
            i = P.first_error(problem, steps)
            assert i != -1, (kind, steps)
            assert steps[:i] == problem.solution_steps()[:i]
            ops = [P.STEP_RE.match(s) for s in steps[:-1]]
            assert all(m and int(m[4]) == P.apply(int(m[1]), m[2], int(m[3])) for m in ops), steps
            assert steps[-1] == ("answer " + ops[-1][4])
            if kind == "early":
                assert i < 3 and steps[i].startswith("answer") and len(steps) == i + 1
                continue
            a, op, x = int(ops[i][1]), ops[i][2], int(ops[i][3])
            right_a, (right_op, right_x) = problem.values()[i], problem.ops[i]
            if kind == "start":
                assert i == 0 and a != 57 and (op, x) == ("+", 8)
            elif kind == "carry":
                assert i >= 1 and a != right_a and (op, x) == (right_op, right_x)
            elif kind == "operand":
                assert a == right_a and op == right_op and x != right_x
            elif kind == "operator":
                assert a == right_a and op != right_op and x == right_x
            else:  # skip: the next operation in place of the skipped one, one step short
                assert a == right_a and (op, x) == problem.ops[i + 1] and len(steps) == 3
    with pytest.raises(ValueError, match="unknown corruption 'swap'"):
        P.corrupted_solution(problem, random.Random(0), "swap")
    assert P.corrupted_solution(P.parse_question("bob has 5 cards . he loses 1 . how many cards now ?"),
                                random.Random(0), "carry") is None


def test_arith_truth_adds_corrupted_references(task):
    from openr_arith.truth import ArithTruthLabeler

    problems = task.load("test", 20)
    examples = list(ArithTruthLabeler(n=1, include_reference=True, corrupted=3).label(problems, task=task))
    by_problem = {}
    for e in examples:
        by_problem.setdefault(e.problem_id, []).append(e)
    assert len(by_problem) == 20
    for group in by_problem.values():
        assert group[0].first_error == -1 and 2 <= len(group) <= 4  # the reference, then up to 3 distinct copies
        problem = next(p for p in problems if p.id == group[0].problem_id)
        assert all(e.first_error == task.first_error(problem, e.completions) != -1 for e in group[1:])
    again = list(ArithTruthLabeler(n=1, include_reference=True, corrupted=3).label(problems, task=task))
    assert again == examples
