"""Math benchmark tasks: a generic ``math`` task and one preset per benchmark.

Importing this module stays light (attrs, openr_core and the standard library): ``openr
validate`` imports it to read ``Config``. ``datasets``, pyarrow, transformers and math-verify
are only touched when problems are loaded, a chat prompt is built or an answer is graded.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

import attrs

from openr_core.errors import DataError
from openr_core.interfaces import Task
from openr_core.types import Grade, Problem
from openr_math import prompts
from openr_math.data import load_hub, read_records
from openr_math.extract import after_hashes, extract_answer, last_boxed
from openr_math.grader import Grader

logger = logging.getLogger("openr_math")

QUESTION_FIELDS = ("problem", "question", "Problem", "Question")
ANSWER_FIELDS = ("answer", "final_answer", "Answer", "solution")
ID_FIELDS = ("unique_id", "id", "idx", "ID")
META_FIELDS = (
    "level", "subject", "type", "subfield", "answer_type", "unit", "is_multiple_answer",
    "url", "source", "year", "solution",
)

_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")
_CALCULATOR = re.compile(r"<<[^<>]*>>")


class _ConfigChecks:
    """The cross-field checks every math task Config runs (a mixin, so presets share it)."""

    def __attrs_post_init__(self):
        if not self.path and not self.dataset:
            raise ValueError("give `path` (a local file or folder) or `dataset` (a hub dataset name)")
        prompts.check_template(self.prompt_template)
        if self.prompt_template == prompts.CHAT and not self.tokenizer:
            raise ValueError("prompt_template 'chat' needs `tokenizer` (a local tokenizer folder or hub name)")
        if not self.grading_timeout > 0:
            raise ValueError(f"grading_timeout must be > 0 seconds, got {self.grading_timeout}")
        if not self.step_separator:
            raise ValueError("step_separator must not be empty")


@attrs.frozen(kw_only=True)
class MathConfig(_ConfigChecks):
    """Where the problems come from, how records map to problems, prompting and grading.

    Give ``path`` (a local .jsonl/.json/.parquet file, or a folder with ``<split>.jsonl`` etc.)
    or ``dataset`` (a Hugging Face hub name, read with ``datasets.load_dataset``); ``path``
    wins when both are set. Field names left as null are detected per record (see docs/math.md).
    """

    path: str | None = None
    dataset: str | None = None
    subset: str | None = None
    splits: dict[str, str] = attrs.field(factory=dict)
    question_field: str | None = None
    answer_field: str | None = None
    answer_format: Literal["auto", "plain", "boxed", "gsm8k"] = "auto"
    id_field: str | None = None
    meta_fields: list[str] | None = None
    prompt_template: str = "qwen-math-cot"
    system_prompt: str = prompts.COT_INSTRUCTION
    tokenizer: str | None = None
    step_separator: str = "\n\n"
    grading_timeout: float = 5.0
    fallback_last_number: bool = False


def gold_answer(value: Any, fmt: str) -> str | None:
    """The gold answer string from a record's answer value, read as ``fmt`` (plain/boxed/gsm8k)."""
    if value is None:
        return None
    if fmt == "boxed":
        text = "\n".join(map(str, value)) if isinstance(value, list) else str(value)
        found = last_boxed(text)
        if found is None:
            return None
        return _UNESCAPED_DOLLAR.sub("", found).strip() or None  # Minerva has a stray "$ $" in one box
    if fmt == "gsm8k":
        return after_hashes(str(value))
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        parts = [gold_answer(v, "plain") for v in value]
        return ", ".join(p for p in parts if p) or None
    text = str(value).strip()
    # "$69$,$84$" -> "69, 84"; the space matters: math-verify reads "1,100" as 1100, "1, 100" as a list
    text = re.sub(r"(?<!\\)\$\s*,\s*(?<!\\)\$", ", ", text)
    return _UNESCAPED_DOLLAR.sub("", text).strip() or None


class MathTask(Task):
    """Math problems from a file or hub dataset you describe; answers graded with math-verify."""

    Config = MathConfig

    def __init__(self, config=None, **fields):
        super().__init__(config, **fields)
        self.step_separator = self.config.step_separator
        self.grader = Grader(timeout=self.config.grading_timeout)
        self._chat: prompts.ChatPrompter | None = None

    # -- data ----------------------------------------------------------------------------------

    def load(self, split: str = "test", limit: int | None = None) -> list[Problem]:
        """Problems of ``split`` in file order. Ids come from ``id_field``, else from the first of
        unique_id/id/idx that every record has with unique values, else from the record index;
        they are decided on the whole split, so they do not change with ``limit``."""
        if limit is not None and limit <= 0:
            return []
        c = self.config
        if c.path:
            records, source = read_records(c.path, split)
        else:
            records, source = load_hub(c.dataset, c.subset, c.splits.get(split, split))
        id_key = self._id_key(records, source)
        problems = [
            self.problem_from_record(record, index, source, id_key)
            for index, record in enumerate(records[:limit] if limit is not None else records)
        ]
        seen: dict[str, int] = {}
        for index, problem in enumerate(problems):
            if problem.id in seen:
                raise DataError(
                    f"{source}: records {seen[problem.id]} and {index} have the same id "
                    f"{problem.id!r}; set `id_field` to a unique field"
                )
            seen[problem.id] = index
        return problems

    def _id_key(self, records: list[dict], source: str) -> str | None:
        configured = self.config.id_field
        if configured:
            missing = next((i for i, r in enumerate(records) if r.get(configured) is None), None)
            if missing is not None:
                raise DataError(f"{source}: record {missing} has no id field '{configured}'")
            return configured
        for key in ID_FIELDS:
            values = [r.get(key) for r in records]
            if values and all(v is not None for v in values) and len(set(map(str, values))) == len(values):
                return key
        return None

    def problem_from_record(self, record: dict, index: int, source: str = "record",
                            id_key: str | None = None) -> Problem:
        """One :class:`Problem` from one record, using this task's field mapping (id from
        ``record[id_key]``, or ``index`` when ``id_key`` is None)."""
        c = self.config
        question_key = self._field(record, c.question_field, QUESTION_FIELDS, "question", index, source)
        question = record[question_key]
        if not isinstance(question, str) or not question.strip():
            raise DataError(f"{source}: record {index}: field '{question_key}' is not a non-empty string")
        answer_key = self._field(record, c.answer_field, ANSWER_FIELDS, "answer", index, source)
        raw = record[answer_key]
        fmt = c.answer_format
        if fmt == "auto":
            if answer_key == "solution":
                fmt = "boxed"
            elif isinstance(raw, str) and "####" in raw:
                fmt = "gsm8k"
            else:
                fmt = "plain"
        answer = gold_answer(raw, fmt)
        if answer is None:
            logger.warning("%s: record %d has no gold answer in field '%s' (%s)", source, index, answer_key, fmt)
        pid = str(record[id_key]) if id_key else str(index)
        meta: dict[str, Any] = {"index": index}
        for key in c.meta_fields if c.meta_fields is not None else META_FIELDS:
            if key in record and record[key] is not None and key != question_key:
                meta[key] = record[key]
        if fmt == "gsm8k" and "solution" not in meta:
            meta["solution"] = raw
        return Problem(pid, question, answer, meta)

    @staticmethod
    def _field(record: dict, configured: str | None, candidates, what: str, index: int, source: str) -> str:
        if configured:
            if configured not in record:
                raise DataError(
                    f"{source}: record {index} has no {what} field '{configured}'; "
                    f"fields: {field_names(record)}"
                )
            return configured
        for key in candidates:
            if key in record:
                return key
        raise DataError(
            f"{source}: record {index}: no {what} field (looked for {', '.join(candidates)}); "
            f"fields: {field_names(record)}. Set `{what}_field`."
        )

    def reference_solution(self, problem: Problem) -> str | None:
        """The dataset's worked solution, steps joined by ``step_separator``, or None.

        A GSM8K solution loses its calculator annotations (``<<3*4=12>>``), has one step per line
        and ends in "The answer is $\\boxed{N}$." instead of ``#### N``. Of several solutions
        (OlympiadBench keeps a list) the first is taken.
        """
        solution = problem.meta.get("solution")
        if isinstance(solution, list):
            solution = solution[0] if solution else None
        if not solution:
            return None
        solution = str(solution)
        if "####" in solution:
            steps = []
            for line in solution.splitlines():
                line = _CALCULATOR.sub("", line).strip()
                if line.startswith("####"):
                    answer = after_hashes(line)
                    line = f"The answer is $\\boxed{{{answer}}}$." if answer else ""
                if line:
                    steps.append(line)
            return self.step_separator.join(steps)
        return solution

    # -- prompting -----------------------------------------------------------------------------

    def prompt(self, problem: Problem) -> str:
        template = self.config.prompt_template
        if template == prompts.CHAT:
            if self._chat is None:
                self._chat = prompts.ChatPrompter(self.config.tokenizer, self.config.system_prompt)
            return self._chat.render(problem.question)
        return prompts.render(template, problem.question)

    # -- answers -------------------------------------------------------------------------------

    def extract_answer(self, text: str) -> str | None:
        return extract_answer(text, fallback_last_number=self.config.fallback_last_number)

    def answers_match(self, problem: Problem, predicted: str) -> bool:
        if problem.answer is None or predicted is None:
            return False
        return self.grader.equivalent(problem.answer, predicted, key=problem.id)

    def grade(self, problem: Problem, text: str) -> Grade:
        try:
            predicted = self.extract_answer(text)
        except Exception as e:  # noqa: BLE001 - never raise on model output
            logger.warning("grading %s: extraction failed: %s: %s", problem.id, type(e).__name__, e)
            return Grade(False, None, f"extraction failed: {type(e).__name__}")
        if predicted is None:
            return Grade(False, None, "no answer found")
        if problem.answer is None:
            return Grade(False, predicted, "problem has no gold answer")
        verdict = self.grader.compare(problem.answer, predicted, key=problem.id)
        if verdict.equal:
            return Grade(True, predicted)
        reason = {"different": "wrong answer", "timeout": "grading timed out"}.get(verdict.status, "grading failed")
        detail = f": {verdict.detail}" if verdict.detail and verdict.status != "different" else ""
        return Grade(False, predicted, reason + detail)

    def same_answer(self, a: str, b: str) -> bool:
        return self.grader.equivalent(a, b, key="(vote)")


def preset(**defaults) -> type:
    """A ``Config`` class like :class:`MathConfig` with other defaults (fields keep their order,
    so ``openr validate --show`` lists every task's fields the same way)."""
    unknown = set(defaults) - set(attrs.fields_dict(MathConfig))
    if unknown:
        raise TypeError(f"preset: unknown MathConfig fields {sorted(unknown)}")
    fields = {}
    for field in attrs.fields(MathConfig):
        if field.name in defaults:
            value = defaults[field.name]
            default = attrs.Factory(lambda v=value: type(v)(v)) if isinstance(value, (dict, list)) else value
        else:
            default = field.default
        fields[field.name] = attrs.field(default=default, type=field.type)
    # a fresh class rather than a MathConfig subclass: attrs moves redefined fields to the end
    cls = attrs.make_class("Config", fields, bases=(_ConfigChecks,), frozen=True, kw_only=True)
    cls.__module__ = __name__
    cls.__doc__ = MathConfig.__doc__
    return cls


class Math500Task(MathTask):
    """MATH-500: 500 competition problems (PRM800K test split), answers graded with math-verify."""

    Config = preset(
        dataset="HuggingFaceH4/MATH-500",
        question_field="problem", answer_field="answer", answer_format="plain", id_field="unique_id",
    )


class GSM8KTask(MathTask):
    """GSM8K grade-school word problems (gold after '####'), graded with math-verify."""

    Config = preset(
        dataset="openai/gsm8k", subset="main",
        question_field="question", answer_field="answer", answer_format="gsm8k",
        fallback_last_number=True,
    )


class AIME24Task(MathTask):
    """AIME 2024: 30 problems with integer answers 0-999, graded with math-verify."""

    # question and id detected: problem + id in both the hub copy and Qwen2.5-Math's file
    Config = preset(
        dataset="HuggingFaceH4/aime_2024", splits={"test": "train"},
        answer_field="answer", answer_format="plain",
    )


class AMC23Task(MathTask):
    """AMC 2023: 40 problems (numeric answers; 27.0 reads as 27), graded with math-verify."""

    # question and id detected (Qwen2.5-Math's file has both `problem` and `question`)
    Config = preset(dataset="zwhe99/amc23", answer_field="answer", answer_format="plain")


class MinervaTask(MathTask):
    """Minerva OCW-courses math: 272 STEM problems (gold from the solution's \\boxed{}), graded with math-verify."""

    # all fields detected: problem + solution (Qwen2.5-Math's file) or question + answer (hub)
    Config = preset(dataset="math-ai/minervamath")


class OlympiadBenchTask(MathTask):
    """OlympiadBench: 675 open-ended English text-only math problems, graded with math-verify."""

    Config = preset(
        dataset="Hothan/OlympiadBench", subset="OE_TO_maths_en_COMP", splits={"test": "train"},
        question_field="question", answer_field="final_answer", answer_format="plain", id_field="id",
    )


__all__ = [
    "AIME24Task", "AMC23Task", "GSM8KTask", "Math500Task", "MathConfig", "MathTask",
    "MinervaTask", "OlympiadBenchTask", "gold_answer", "preset",
]


def field_names(record: dict) -> str:
    """A record's field names for an error line: a name that is not printable (a newline in it)
    is shown as its repr, so the error stays one line."""
    return ", ".join(k if k.isprintable() else repr(k) for k in sorted(record))
