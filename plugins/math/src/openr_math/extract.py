"""Finding the final answer in a solution text (pure string work: no sympy, no math-verify).

Order of preference, first that finds something wins:

1. the last complete ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces handled; ``\\boxed 5`` too);
2. the last "The (final) answer is X" / "Final answer: X" / "Answer: X";
3. the last ``#### X`` (GSM8K style);
4. optionally, the last number in the text.

The returned string is the answer as written (LaTeX kept), with surrounding math delimiters
(``$``, ``\\(...\\)``, ``\\[...\\]``) and trailing punctuation removed. Grading (units, ``\\%``,
``\\dfrac``, sets, intervals...) is math-verify's job, not this module's.
"""

from __future__ import annotations

import bisect
import re

_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_ANSWER_IS = re.compile(
    r"(?:\bthe\s+(?:final\s+)?answer\s+is|\bfinal\s+answer\s*(?:is|:)|\banswer\s*:)\s*:?",
    re.IGNORECASE,
)
_HASHES = re.compile(r"####\s*([^\n]*)")
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?(?![\w])")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_BRACE_OR_ESCAPE = re.compile(r"\\.|[{}]", re.DOTALL)
_SPACES = re.compile(r"\s*")
_TOKEN = re.compile(r"[^\s$]+")
_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z])")


def balanced(text: str, start: int) -> str | None:
    """The content of the brace group opening at ``text[start] == "{"``, or None if unclosed.

    A backslash escapes the next character, so ``\\{`` and ``\\}`` (LaTeX set braces) do not
    count, while ``\\\\{`` (a line break, then a group) does.
    """
    end = _closing_braces(text, start).get(start)
    return None if end is None else text[start + 1 : end]


def _closing_braces(text: str, start: int = 0) -> dict[int, int]:
    """``{position of "{": position of its "}"}`` for every closed group from ``start`` on: one pass."""
    stack: list[int] = []
    closes: dict[int, int] = {}
    for match in _BRACE_OR_ESCAPE.finditer(text, start):
        ch = match.group()
        if ch == "{":
            stack.append(match.start())
        elif ch == "}" and stack:
            closes[stack.pop()] = match.start()
    return closes


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{}``/``\\fbox{}`` in ``text`` (None when there is none).

    Linear in ``len(text)``: the braces are matched once, not once per ``\\boxed`` (a text of many
    unclosed ``\\boxed{`` took quadratic time before).
    """
    closes: dict[int, int] | None = None
    for match in reversed(list(_BOX.finditer(text))):
        i = _SPACES.match(text, match.end()).end()
        if text.startswith("{", i):
            if closes is None:
                closes = _closing_braces(text)
            end = closes.get(i)
            if end is not None:
                return text[i + 1 : end].strip()
        elif i < len(text) and i > match.end():  # "\boxed 5": one token after a space
            token = _TOKEN.match(text, i)
            if token:
                return token.group(0).rstrip(".,;")
    return None


def strip_math_delimiters(answer: str) -> str:
    """Remove one layer of surrounding ``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``, and trailing punctuation."""
    s = answer.strip()
    for _ in range(3):
        before = s
        s = s.rstrip().rstrip(".,;:").rstrip()
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
                s = s[len(left) : len(s) - len(right)].strip()
                break
        if s == before:
            break
    return s


_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def _after_answer_is(text: str) -> str | None:
    """What follows the last "the answer is" that states something. Linear in ``len(text)``: every
    look-ahead (closing delimiter, end of line) is a bisect into positions found once."""
    matches = list(_ANSWER_IS.finditer(text))
    if not matches:
        return None
    closers = {right: [m.start() for m in re.finditer(f"(?={re.escape(right)})", text)] for _, right in _DELIMITERS}
    newlines = [m.start() for m in re.finditer("\n", text)]
    for match in reversed(matches):
        pos = _SPACES.match(text, match.end()).end()
        if pos == len(text):
            continue
        for left, right in _DELIMITERS:
            if text.startswith(left, pos):
                found_at = closers[right]
                k = bisect.bisect_left(found_at, pos + len(left))
                if k < len(found_at):
                    found = text[pos + len(left) : found_at[k]].strip()
                    if found:
                        return found
                break
        k = bisect.bisect_left(newlines, pos)
        line_end = newlines[k] if k < len(newlines) else len(text)
        # "The answer is 18. I hope it is correct." -> "18"; keep decimals like 3.5
        sentence_end = _SENTENCE_END.search(text, pos, line_end)
        found = strip_math_delimiters(text[pos : sentence_end.start() if sentence_end else line_end])
        if found:
            return found
    return None


def last_number(text: str) -> str | None:
    """The last number in ``text`` (integers, decimals, ``a/b``, ``1,234``), commas removed."""
    numbers = _NUMBER.findall(text)
    if not numbers:
        return None
    value = numbers[-1].lstrip("+")
    return value.replace(",", "") if _THOUSANDS.fullmatch(value) else value


def after_hashes(text: str) -> str | None:
    """What follows the last ``####`` (GSM8K's answer line), or None."""
    found = _HASHES.findall(text)
    for candidate in reversed(found):
        value = strip_math_delimiters(candidate)
        if value:
            return drop_thousands_separators(value)
    return None


def drop_thousands_separators(value: str) -> str:
    """``"1,450,000"`` -> ``"1450000"``; anything that is not such a number is returned unchanged."""
    v = value.strip()
    return v.replace(",", "") if _THOUSANDS.fullmatch(v) else v


def extract_answer(text: str, *, fallback_last_number: bool = False) -> str | None:
    """The final answer stated in ``text``, or None. See the module docstring for the rules."""
    if not text:
        return None
    boxed = last_boxed(text)
    if boxed is not None:
        boxed = strip_math_delimiters(boxed)
        if boxed:
            return boxed
    found = _after_answer_is(text)
    if found:
        return found
    found = after_hashes(text)
    if found:
        return found
    if fallback_last_number:
        return last_number(text)
    return None


__all__ = [
    "after_hashes",
    "balanced",
    "drop_thousands_separators",
    "extract_answer",
    "last_boxed",
    "last_number",
    "strip_math_delimiters",
]
