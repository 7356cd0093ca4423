"""Grading equivalences through math-verify, the fast paths, and the hard time limit."""

import logging
import threading
import time

import pytest

from openr_math.grader import Grader, get_pool, has_math_delimiters, normalize


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("\\frac{1}{2}", "0.5"),
        ("\\frac{1}{2}", "\\dfrac{1}{2}"),
        ("\\frac{1}{2}", "1/2"),
        ("\\frac{8}{3}", "\\tfrac83"),
        ("5", "5 \\text{ cm}"),  # units
        ("15\\mbox{ cm}^2", "15"),
        ("50", "50\\%"),  # percent sign
        ("10", "\\$10"),  # dollars
        ("90^\\circ", "90"),  # degrees
        ("3\\sqrt{13}", "\\sqrt{117}"),
        ("x^2+2x+1", "(x+1)^2"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),  # tuples
        ("[-2,7]", "x \\in [-2, 7]"),  # intervals
        ("(-\\infty, 0) \\cup (1, \\infty)", "(-\\infty,0)\\cup(1,\\infty)"),
        ("\\{1\\pm\\sqrt{5},-2\\}", "-2, 1+\\sqrt5, 1-\\sqrt5"),  # sets in any order
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),  # matrices
        ("1000", "1,000"),
        ("7425000", "7,425,000"),
        ("27", "27.0"),
        ("y = 2x + 3", "y=2x+3"),
        ("\\text{(C)}", "C"),
        ("\\text{Evelyn}", "\\text{Evelyn}"),
    ],
)
def test_equal(grader, gold, pred):
    verdict = grader.compare(gold, pred)
    assert verdict.equal, verdict


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("\\frac{1}{2}", "\\frac{1}{3}"),
        ("5", "6"),
        ("5", "5.01"),
        ("(1, 2)", "(2, 1)"),  # tuples are ordered
        ("[0, 1)", "[0, 1]"),
        ("x^2", "x^3"),
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}2\\\\1\\end{pmatrix}"),
        ("\\text{(C)}", "D"),
        ("2", "\\frac{1+\\sqrt{5}}{2}"),
    ],
)
def test_different(grader, gold, pred):
    verdict = grader.compare(gold, pred)
    assert not verdict.equal and verdict.status == "different", verdict


def test_texts_with_delimiters_are_extracted_by_math_verify(grader):
    assert grader.equivalent("$\\frac{14}{3}$", "so the total is $\\boxed{\\frac{14}{3}}$.")
    assert grader.equivalent("$x > 5$", "Therefore $x \\gt 5$ is the solution.")
    assert not grader.equivalent("$x > 5$", "Therefore $x < 5$ is the solution.")


def test_fast_paths_do_not_need_the_worker():
    g = Grader()
    for gold, pred, equal in [("42", "42", True), ("42", "0042", True), ("1,234", "1234", True),
                              ("42", "43", False), ("\\left( 1,2 \\right)", "(1,2)", True),
                              ("\\dfrac{1}{2}", "\\frac{1}{2}.", True)]:
        verdict = g._fast(gold, pred)
        assert verdict is not None and verdict.equal is equal
    assert g._fast("1/2", "0.5") is None
    assert g._fast("1, 100", "1,100") is None  # a list and a number: math-verify decides
    assert not g.equivalent("1, 100", "1100") and g.equivalent("1,100", "1100")
    assert normalize(" \\dfrac{1}{2} . ") == "\\frac{1}{2}"
    assert has_math_delimiters("so $x$") and not has_math_delimiters("\\$5") and not has_math_delimiters("x+1")


def test_missing_or_empty_answers_are_wrong(grader):
    assert not grader.equivalent("5", None)
    assert not grader.equivalent("5", "")
    assert not grader.equivalent("", "")


def test_grader_options_are_checked():
    with pytest.raises(ValueError):
        Grader(timeout=0)
    with pytest.raises(ValueError):
        Grader(targets=("latex", "regex"))


# -- time limits -----------------------------------------------------------------------------


def _timed(grader, gold, pred, **kw):
    start = time.perf_counter()
    verdict = grader.compare(gold, pred, key="p-patho", **kw)
    return verdict, time.perf_counter() - start


@pytest.fixture(scope="module")
def warm():
    get_pool().warm_up()  # worker start-up (~0.5 s) is not part of any comparison's budget


@pytest.mark.parametrize("pred", ["9^9^9^9", "(" * 10_000 + "1" + ")" * 10_000, "100000!"])
def test_pathological_inputs_are_wrong_within_2s_with_the_default_timeout(warm, pred):
    verdict, seconds = _timed(Grader(), "5", pred)  # default timeout: 5 s
    assert not verdict.equal
    assert seconds < 2.0, (verdict, seconds)


@pytest.mark.parametrize("pred", ["9^{9^{9^{9}}}", "10^{10^{10}}", "2^{2^{40}}", "10^{10^{10^{10}}} - 10^{10^{10^{10}}}"])
def test_expensive_inputs_time_out(warm, pred, caplog):
    grader = Grader(timeout=1.0)
    with caplog.at_level(logging.WARNING, logger="openr_math.grader"):
        verdict, seconds = _timed(grader, "5", pred)
    assert not verdict.equal and verdict.status == "timeout", verdict
    assert seconds < 2.0
    assert any("p-patho" in r.getMessage() and "timed out" in r.getMessage() for r in caplog.records)
    assert grader.compare("5", pred).status == "timeout"  # cached: no second wait
    assert grader.equivalent("\\frac{1}{2}", "0.5")  # the worker still works


def test_work_a_signal_cannot_stop_is_killed(warm):
    pool = get_pool()
    kills = pool.kills
    start = time.perf_counter()
    status, _ = pool.request("_uninterruptible_sleep", (30,), 1.0)
    assert status == "timeout"
    assert time.perf_counter() - start < 2.0
    assert pool.kills == kills + 1
    assert Grader().equivalent("\\frac{1}{2}", "0.5")  # a fresh worker took over


def test_grading_works_off_the_main_thread(grader):
    results = []
    thread = threading.Thread(target=lambda: results.append(grader.equivalent("\\frac{3}{4}", "0.75")))
    thread.start()
    thread.join(30)
    assert results == [True]
