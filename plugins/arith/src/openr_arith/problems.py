"""Seeded multi-step arithmetic word problems, their solutions, and an exact step verifier.

A problem is a start value and a chain of operations, told as a short story::

    ann has 57 coins . she gets 8 more . she loses 3 . she gets 6 more . how many coins now ?

Its solution has one step per line and a final answer line::

    57 + 8 = 65
    65 - 3 = 62
    62 + 6 = 68
    answer 68

Pure Python, no model code: it is imported by the task and by every test.
"""

from __future__ import annotations

import random
import re

import attrs

NAMES = (("ann", "she"), ("bob", "he"), ("eve", "she"), ("sam", "he"))
ITEMS = ("coins", "apples", "cards", "stamps")
PHRASES = {
    "+": ("{p} gets {x} more", "{p} finds {x} more"),
    "-": ("{p} loses {x}", "{p} gives away {x}"),
    "*": ("{p} multiplies them by {x}", "{p} makes it {x} times as many"),
}
WORDS = sorted(
    {w for name, pronoun in NAMES for w in (name, pronoun)}
    | set(ITEMS)
    | {w for phrases in PHRASES.values() for p in phrases for w in p.split() if not w.startswith("{")}
    | {"has", "how", "many", "now", "answer", "it"}
)
SYMBOLS = (".", "?", "+", "-", "*", "=")
# numbers of at most 18 digits: a longer one is no sandbox value, and int() refuses > 4300 digits
STEP_RE = re.compile(r"^\s*(\d{1,18})\s*([+\-*])\s*(\d{1,18})\s*=\s*(\d{1,18})\s*$")
ANSWER_RE = re.compile(r"^\s*answer\s+(\d{1,18})\s*$")


@attrs.frozen
class Difficulty:
    """Knobs of the problem generator."""

    min_steps: int = 3
    max_steps: int = 5
    start_min: int = 10
    start_max: int = 99
    operand_min: int = 1
    operand_max: int = 9
    operators: tuple[str, ...] = ("+", "-")
    multiplier_max: int = 3
    max_value: int = 199

    def __attrs_post_init__(self):
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(f"need 1 <= min_steps <= max_steps, got {self.min_steps}, {self.max_steps}")
        if not 0 <= self.start_min <= self.start_max <= self.max_value:
            raise ValueError("need 0 <= start_min <= start_max <= max_value")
        if not 1 <= self.operand_min <= self.operand_max:
            raise ValueError("need 1 <= operand_min <= operand_max")
        bad = set(self.operators) - set(PHRASES)
        if bad or not self.operators:
            raise ValueError(f"operators must be a non-empty subset of + - *, got {self.operators}")


@attrs.frozen
class ArithProblem:
    start: int
    ops: tuple[tuple[str, int], ...]
    question: str

    def values(self) -> list[int]:
        """Running values: start, then after each operation."""
        out = [self.start]
        for op, x in self.ops:
            out.append(apply(out[-1], op, x))
        return out

    @property
    def answer(self) -> int:
        return self.values()[-1]

    def solution_steps(self) -> list[str]:
        values = self.values()
        steps = [f"{values[i]} {op} {x} = {values[i + 1]}" for i, (op, x) in enumerate(self.ops)]
        return steps + [f"answer {values[-1]}"]


def apply(a: int, op: str, x: int) -> int:
    return a + x if op == "+" else a - x if op == "-" else a * x


def make_problem(rng: random.Random, d: Difficulty) -> ArithProblem:
    start = rng.randint(d.start_min, d.start_max)
    value, ops = start, []
    for _ in range(rng.randint(d.min_steps, d.max_steps)):
        op = rng.choice(d.operators)
        x = rng.randint(2, d.multiplier_max) if op == "*" else rng.randint(d.operand_min, d.operand_max)
        if op == "*" and value * x > d.max_value:
            op, x = "+", rng.randint(d.operand_min, d.operand_max)
        if op == "-" and value - x < 0:
            op = "+"
        if op == "+" and value + x > d.max_value:
            op = "-"
        value = apply(value, op, x)
        ops.append((op, x))
    name, pronoun = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    parts = [f"{name} has {start} {item} ."]
    for op, x in ops:
        parts.append(rng.choice(PHRASES[op]).format(p=pronoun, x=x) + " .")
    parts.append(f"how many {item} now ?")
    return ArithProblem(start, tuple(ops), " ".join(parts))


def generate(seed_key: str, index: int, d: Difficulty) -> ArithProblem:
    """Problem ``index`` of the stream named ``seed_key``: independent of every other index."""
    return make_problem(random.Random(f"{seed_key}:{index}"), d)


# What :func:`corrupted_solution` can get wrong. Each is an error the PRM cannot see by checking
# the step's own arithmetic: the wrong step and everything after it compute correctly.
CORRUPTIONS = ("start", "carry", "operand", "operator", "skip", "early")


def corrupted_solution(problem: ArithProblem, rng: random.Random, kind: str, max_value: int = 199) -> list[str] | None:
    """A solution (steps and answer line) with one error of ``kind`` that is *consistent*: every
    step computes its written operation correctly, and the steps after the error carry on from
    the wrong value with the problem's remaining operations, as the policy does.

    ``start``: step 0 starts from another number; ``carry``: a later step starts from another
    number than the previous result; ``operand``: another operand; ``operator``: + and − swapped;
    ``skip``: one operation left out; ``early``: the answer line after a proper prefix of the
    operations. A wrong start is near the right one half of the time (±1..9), else anywhere in
    0..``max_value``; a wrong operand is another one of 1..9. None when the problem allows no such error (one operation for ``carry``,
    ``skip`` and ``early``) or no running value stays in 0..``max_value`` after a few tries."""
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}; one of {', '.join(CORRUPTIONS)}")
    n = len(problem.ops)
    if n < 2 and kind in ("carry", "skip", "early"):
        return None

    def other(old: int, low: int, high: int) -> int:
        while True:
            new = old + rng.choice((-1, 1)) * rng.randint(1, 9) if rng.random() < 0.5 else rng.randint(low, high)
            if low <= new <= high and new != old:
                return new

    for _ in range(8):
        k = 0 if kind == "start" else rng.randrange(1, n) if kind == "carry" else rng.randrange(n - (kind == "early"))
        prefix = problem.solution_steps()[:k]
        if kind == "early":
            return prefix + [problem.solution_steps()[k], f"answer {problem.values()[k + 1]}"]
        value, ops = problem.values()[k], list(problem.ops[k:])
        op, x = ops[0]
        if kind in ("start", "carry"):
            value = other(value, 0, max_value)
        elif kind == "operand":
            ops[0] = (op, other(x, 1, 9))
        elif kind == "operator":
            ops[0] = ("-" if op == "+" else "+", x)
        elif kind == "skip":
            ops = ops[1:]
        steps = []
        for op, x in ops:
            steps.append(f"{value} {op} {x} = {apply(value, op, x)}")
            value = apply(value, op, x)
            if not 0 <= value <= max_value:
                break
        else:
            if steps:
                return prefix + steps + [f"answer {value}"]
    return None


def check_steps(problem: ArithProblem, steps: list[str]) -> list[bool]:
    """Is step i correct given the problem and the steps before it (taken as written)?

    Operation step i must apply the problem's i-th operation to the value the previous step
    wrote (the start for step 0) and compute it right. The answer line must come right after
    the last operation and repeat its result. Anything else (malformed, extra, early) is wrong.
    """
    verdicts = []
    previous = problem.start
    for i, step in enumerate(steps):
        if i < len(problem.ops):
            m = STEP_RE.match(step)
            if not m:
                verdicts.append(False)
                previous = None
                continue
            a, op, x, r = int(m[1]), m[2], int(m[3]), int(m[4])
            want_op, want_x = problem.ops[i]
            verdicts.append(previous is not None and a == previous and (op, x) == (want_op, want_x) and r == apply(a, op, x))
            previous = r
        elif i == len(problem.ops):
            m = ANSWER_RE.match(step)
            verdicts.append(bool(m) and previous is not None and int(m[1]) == previous)
        else:
            verdicts.append(False)
    return verdicts


def first_error(problem: ArithProblem, steps: list[str]) -> int:
    """Index of the first wrong step among ``steps``; -1 when every one of them is right."""
    return next((i for i, ok in enumerate(check_steps(problem, steps)) if not ok), -1)


# The kinds of first error :func:`error_type` tells apart (docs/prm.md, "recall per error type").
ERROR_TYPES = ("arithmetic", "wrong start", "wrong operation/operand", "wrong answer", "early or missing answer",
               "malformed")


def error_type(problem: ArithProblem, steps: list[str]) -> str | None:
    """The kind of the first wrong step of ``steps`` (None when every step is right), read off the
    same checks as :func:`check_steps`; the steps before it are right, so it should start from
    the running value ``problem.values()[i]``. An operation step (i < number of operations) is
    ``early or missing answer`` when it is an answer line, ``malformed`` when it is no
    ``A op X = R`` line, else the first of: ``wrong start`` (A is not that value), ``wrong
    operation/operand`` (op X is not the problem's i-th operation), ``arithmetic`` (R is not
    A op X). Where the answer line belongs: ``wrong answer`` (an answer line with another
    number), ``early or missing answer`` (another operation instead), else ``malformed``; any
    line after the answer line is ``malformed``."""
    i = first_error(problem, steps)
    if i == -1:
        return None
    step, n_ops = steps[i], len(problem.ops)
    if i > n_ops:
        return "malformed"
    m = STEP_RE.match(step)
    if i == n_ops:
        return "wrong answer" if ANSWER_RE.match(step) else "early or missing answer" if m else "malformed"
    if ANSWER_RE.match(step):
        return "early or missing answer"
    if not m:
        return "malformed"
    a, op, x = int(m[1]), m[2], int(m[3])
    if a != problem.values()[i]:
        return "wrong start"
    if (op, x) != problem.ops[i]:
        return "wrong operation/operand"
    return "arithmetic"


def extract_answer(text: str) -> str | None:
    """The number on the last ``answer N`` line, or None."""
    for line in reversed(text.replace("\r", "").split("\n")):
        m = ANSWER_RE.match(line)
        if m:
            return str(int(m[1]))
    return None


def parse_question(question: str) -> ArithProblem | None:
    """Recover the problem from its story text (so any Problem with arith text can be verified)."""
    sentences = [s.strip() for s in question.split(" .") if s.strip()]
    if len(sentences) < 2:
        return None
    m = re.match(r"^\w+ has (\d+) \w+$", sentences[0])
    if not m:
        return None
    start, ops = int(m[1]), []
    templates = [(op, re.compile("^" + re.escape(t).replace(r"\{p\}", r"\w+").replace(r"\{x\}", r"(\d+)") + "$"))
                 for op, ts in PHRASES.items() for t in ts]
    for sentence in sentences[1:-1]:
        for op, pattern in templates:
            mm = pattern.match(sentence)
            if mm:
                ops.append((op, int(mm[1])))
                break
        else:
            return None
    return ArithProblem(start, tuple(ops), question)
