"""Answer extraction: \\boxed{} with nested braces, "The answer is", ####, fallbacks."""

import pytest

from openr_math.extract import balanced, extract_answer, last_boxed, last_number, strip_math_delimiters
from openr_math.tasks import gold_answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so $x = \\boxed{5}$.", "5"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("nested: \\boxed{\\frac{\\sqrt{3}}{2}} done", "\\frac{\\sqrt{3}}{2}"),
        ("deeper \\boxed{{{a}+{b}}}", "{{a}+{b}}"),
        ("first \\boxed{1} then \\boxed{2}", "2"),  # several boxes: the last one
        ("\\boxed{1} and a broken \\boxed{2", "1"),  # an unclosed last box is skipped
        ("\\fbox{7}", "7"),
        ("\\boxed 7.", "7"),
        ("\\boxed{5 \\text{ cm}}", "5 \\text{ cm}"),  # units kept: grading handles them
        ("\\boxed{50\\%}", "50\\%"),
        ("\\boxed{\\dfrac{3}{4}}", "\\dfrac{3}{4}"),
        ("\\boxed{[-2, 7)}", "[-2, 7)"),  # intervals: brackets are not braces
        ("\\boxed{(-\\infty, 0] \\cup (1, \\infty)}", "(-\\infty, 0] \\cup (1, \\infty)"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),  # escaped set braces do not end the box
        ("\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"),
        ("\\boxed{$12$}", "12"),
        ("\\[\\boxed{x=3}\\]", "x=3"),
    ],
)
def test_boxed(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("So the answer is 18.", "18"),
        ("The answer is $\\frac{1}{2}$.", "\\frac{1}{2}"),
        ("the final answer is \\(3.5\\). Good.", "3.5"),
        ("Final Answer: The final answer is $5$. I hope it is correct.", "5"),
        ("The answer is 3.5.", "3.5"),
        ("Answer: 42", "42"),
        ("The answer is: x = 2", "x = 2"),
        ("The answer is 7.\nThe answer is 8.", "8"),  # the last statement wins
        ("We get 4.\n#### 1,200", "1200"),
        ("#### 18", "18"),
        ("The answer is \\boxed{9}, not 8.", "9"),  # a box beats "the answer is"
    ],
)
def test_answer_is_and_hashes(text, expected):
    assert extract_answer(text) == expected


def test_nothing_found_is_none():
    assert extract_answer("") is None
    assert extract_answer("I am not sure what to do with 12 apples.") is None
    assert extract_answer("\\boxed{") is None
    assert extract_answer("\\boxed{}") is None


def test_last_number_fallback_is_optional():
    text = "She has 3 apples and buys 1,250 more, so 1,253 in total"
    assert extract_answer(text) is None
    assert extract_answer(text, fallback_last_number=True) == "1253"
    assert last_number("x is -3.5 or 2/3") == "2/3"
    assert last_number("no digits") is None


def test_helpers():
    assert balanced("{a{b}c}d", 0) == "a{b}c"
    assert balanced("{a\\}b}", 0) == "a\\}b"
    assert balanced("{a", 0) is None
    assert last_boxed("no box") is None
    assert strip_math_delimiters("$$x^2$$.") == "x^2"
    assert strip_math_delimiters("\\$5") == "\\$5"  # an escaped dollar is a dollar sign, kept


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        (27.0, "plain", "27"),  # AMC floats
        (2.5, "plain", "2.5"),
        (7, "plain", "7"),
        ("$\\frac{1}{2}$", "plain", "\\frac{1}{2}"),  # gaokao wraps answers in $...$
        (["$69$,$84$"], "plain", "69, 84"),  # OlympiadBench lists / several answers
        (["$(1,2)$", "$(3,4)$"], "plain", "(1,2), (3,4)"),
        ("\\$32,\\!348", "plain", "\\$32,\\!348"),  # escaped dollar kept
        ("It is 5.\n#### 1,450,000", "gsm8k", "1450000"),
        ("so $s=\\boxed{1.6} \\mathrm{~cm}$", "boxed", "1.6"),
        (None, "plain", None),
        ("", "plain", None),
    ],
)
def test_gold_answer(value, fmt, expected):
    assert gold_answer(value, fmt) == expected
