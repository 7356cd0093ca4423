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


# --- adversarial inputs: extraction is linear in the text's length --------------------------------

ADVERSARIAL = {
    "unclosed boxes": "\\boxed{" * 150_000,  # ~1 MB; the quadratic scan took ~50 s at 112 KB
    "unclosed boxes, one closed first": "\\boxed{7} " + "\\boxed{ x" * 110_000,
    "deep nesting": "\\boxed{" + "{" * 1_000_000,
    "answer is, then an unclosed \\(": "The answer is \\(" * 70_000,
    "answer is, then nothing on the line": "answer: . Answer: . " * 50_000,
    "answer is, then an unclosed $": "The answer is $ \n" * 60_000,
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_adversarial_text_is_extracted_in_linear_time(name):
    """Each text is ~1 MB; linear code answers in well under a second even on a loaded machine,
    the quadratic code needed minutes to hours. SIGALRM stops a regression after 5 s instead of
    hanging the suite."""
    import signal
    import time

    text = ADVERSARIAL[name]

    def too_slow(*_):
        raise TimeoutError(f"extract_answer on {len(text)} characters ({name}) took more than 5 s")

    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.setitimer(signal.ITIMER_REAL, 5.0)
    try:
        t0 = time.perf_counter()
        extract_answer(text, fallback_last_number=True)
        elapsed = time.perf_counter() - t0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert elapsed < 5.0


def test_adversarial_answers_are_still_right():
    assert extract_answer("\\boxed{7} " + "\\boxed{ x" * 1000) == "7"
    assert extract_answer("\\boxed{" * 1000 + "}") is None  # only the innermost box closes, and it is empty
    assert last_boxed("\\boxed{" * 1000 + "5}") == "5"
    assert last_boxed("\\boxed{a} \\boxed{" * 1000) == "a"
    assert extract_answer("answer: . Answer: . " * 100 + "The answer is 4.") == "4"
    assert extract_answer("The answer is \\(" * 100 + "3\\)") == "3"


def _reference_last_boxed(text):
    """The original (quadratic) implementation: one scan per box, from its brace to the end."""
    def scan(start):
        depth, i = 0, start
        while i < len(text):
            ch = text[i]
            if ch == "\\":
                i += 2
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start + 1 : i]
            i += 1
        return None

    import re

    for match in reversed(list(re.finditer(r"\\(?:boxed|fbox)(?![A-Za-z])", text))):
        rest = text[match.end():]
        stripped = rest.lstrip()
        if stripped.startswith("{"):
            content = scan(match.end() + len(rest) - len(stripped))
            if content is not None:
                return content.strip()
        elif stripped and stripped is not rest:
            token = re.match(r"[^\s$]+", stripped)
            if token:
                return token.group(0).rstrip(".,;")
    return None


PIECES = ["\\boxed", "\\fbox", "{", "}", "\\{", "\\}", "\\\\", "\\", " ", "\n", "5", "x", "$", "\\(", "\\)",
          "The answer is ", "answer:", ". ", "A", "####", "\\boxedx"]


@pytest.mark.parametrize("seed", range(3))
def test_last_boxed_agrees_with_the_reference_on_random_texts(seed):
    import random

    rng = random.Random(seed)
    for _ in range(3000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 25)))
        assert last_boxed(text) == _reference_last_boxed(text), text
