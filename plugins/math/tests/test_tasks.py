"""The tasks: configs, loading (local files; the hub path is configured but not reachable here),
prompts, grading reasons, step splitting, and the core evaluate job with a math task."""

import json
import sys
import textwrap

import attrs
import pytest

from openr_core import Completion, GenerationResult, Generator, Problem, hookimpl
from openr_core.config import Where, structure
from openr_core.errors import ConfigError, DataError
from openr_core.plugins import Plugins
from openr_math import plugin as math_plugin
from openr_math import prompts
from openr_math.tasks import (
    AIME24Task, AMC23Task, GSM8KTask, Math500Task, MathTask, MinervaTask, OlympiadBenchTask,
)

ALL = {"math": MathTask, "math500": Math500Task, "gsm8k": GSM8KTask, "aime24": AIME24Task,
       "amc23": AMC23Task, "minerva": MinervaTask, "olympiadbench": OlympiadBenchTask}


def _plugins(*extra) -> Plugins:
    loaded = Plugins(strict=True)
    assert loaded.register(math_plugin, "math", dist="openr-math")
    for i, plugin in enumerate(extra):
        assert loaded.register(plugin, f"extra{i}", dist="math-tests")
    return loaded


# -- configs -------------------------------------------------------------------------------


def test_every_task_is_registered_lazily():
    loaded = _plugins()
    names = {e.name for e in loaded.registry("tasks")}
    assert names == set(ALL)
    for entry in loaded.registry("tasks"):
        assert isinstance(entry.target, str) and entry.target.startswith("openr_math.tasks:")
        assert entry.summary
        assert entry.load() is ALL[entry.name]


@pytest.mark.parametrize(
    ("name", "dataset", "subset"),
    [
        ("math500", "HuggingFaceH4/MATH-500", None),
        ("gsm8k", "openai/gsm8k", "main"),
        ("aime24", "HuggingFaceH4/aime_2024", None),
        ("amc23", "zwhe99/amc23", None),
        ("minerva", "math-ai/minervamath", None),
        ("olympiadbench", "Hothan/OlympiadBench", "OE_TO_maths_en_COMP"),
    ],
)
def test_benchmark_defaults_point_at_the_hub(name, dataset, subset):
    config = ALL[name].Config()
    assert (config.path, config.dataset, config.subset) == (None, dataset, subset)
    assert config.step_separator == "\n\n" and config.grading_timeout == 5.0
    assert config.prompt_template == "qwen-math-cot"


def test_every_config_has_the_generic_fields_in_order():
    names = [f.name for f in attrs.fields(MathTask.Config)]
    for cls in ALL.values():
        assert [f.name for f in attrs.fields(cls.Config)] == names
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            cls.Config(path="x").path = "y"


def test_configs_validate_through_core():
    loaded = _plugins()
    where = Where("c.yaml", ("task",))
    config = structure(Math500Task.Config, {"path": "x.jsonl", "grading_timeout": 2}, where, loaded)
    assert config.grading_timeout == 2.0 and config.path == "x.jsonl"
    structure(AIME24Task.Config, {"splits": {"test": "train"}, "meta_fields": ["url"]}, where, loaded)
    for bad, message in [
        ({"grading_timout": 1}, "did you mean 'grading_timeout'"),
        ({"prompt_template": "fancy"}, "prompt_template must be one of"),
        ({"prompt_template": "chat"}, "needs `tokenizer`"),
        ({"grading_timeout": 0}, "grading_timeout must be > 0"),
        ({"answer_format": "latex"}, "is not one of"),
    ]:
        with pytest.raises(ConfigError, match=message):
            structure(Math500Task.Config, bad, where, loaded)
    with pytest.raises(ConfigError, match="give `path`"):
        structure(MathTask.Config, {}, where, loaded)


def test_hub_loading_goes_through_datasets(monkeypatch):
    calls = []

    class FakeDataset(list):
        pass

    fake = type(sys)("datasets")
    fake.load_dataset = lambda name, subset, split: calls.append((name, subset, split)) or FakeDataset(
        [{"id": 7, "problem": "1+1?", "answer": "2"}, {"id": 8, "problem": "2+2?", "answer": "4"}]
    )
    monkeypatch.setitem(sys.modules, "datasets", fake)
    problems = AIME24Task().load("test", limit=1)
    assert calls == [("HuggingFaceH4/aime_2024", None, "train")]  # test -> the hub's train split
    assert problems == [Problem("7", "1+1?", "2")]

    def offline(*a, **k):
        raise ConnectionError("no network")

    fake.load_dataset = offline
    with pytest.raises(DataError, match="cannot load hub dataset openai/gsm8k \\(main\\) split 'test'.*Set `path`"):
        GSM8KTask().load("test")


# -- loading the real files ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "file", "count", "first_id", "first_answer"),
    [
        ("math500", "math500/test.jsonl", 500, "test/precalculus/807.json", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("math500", "math500", 500, "test/precalculus/807.json", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("gsm8k", "gsm8k/test.jsonl", 1319, "0", "18"),
        ("gsm8k", "qwen25_math_eval/gsm8k.jsonl", 1319, "0", "18"),
        ("aime24", "aime24/test.jsonl", 30, "60", "204"),
        ("amc23", "amc23/test.jsonl", 40, "0", "27"),
        ("minerva", "qwen25_math_eval/minerva_math.jsonl", 272, "0", "1.6"),
        ("olympiadbench", "qwen25_math_eval/olympiadbench.jsonl", 675, "1606", "2"),
        ("math", "qwen25_math_eval/gaokao2023en.jsonl", 385, "0", "\\{x|-2\\leq x < 1\\}"),
    ],
)
def test_benchmark_files_load(shared_data, name, file, count, first_id, first_answer):
    task = ALL[name](path=str(shared_data / file))
    problems = task.load("test")
    assert len(problems) == count
    assert len({p.id for p in problems}) == count
    assert (problems[0].id, problems[0].answer) == (first_id, first_answer)
    assert all(p.question.strip() for p in problems)
    assert task.load("test", limit=3) == problems[:3]  # ids do not depend on limit
    assert task.load("test", limit=0) == []


def test_meta_and_reference_solutions(shared_data):
    p = Math500Task(path=str(shared_data / "math500")).load("test", 1)[0]
    assert p.meta["level"] == "Level 2" and p.meta["subject"] == "Precalculus"
    task = GSM8KTask(path=str(shared_data / "gsm8k"))
    assert len(task.load("train")) == 7473
    g = task.load("test", 1)[0]
    assert g.meta["solution"].endswith("#### 18")
    assert task.reference_solution(g) == (
        "Janet sells 16 - 3 - 4 = 9 duck eggs a day.\n\n"
        "She makes 9 * 2 = $18 every day at the farmer’s market.\n\nThe answer is $\\boxed{18}$."
    )
    o = OlympiadBenchTask(path=str(shared_data / "qwen25_math_eval/olympiadbench.jsonl"))
    first = o.load("test", 1)[0]
    assert first.meta["answer_type"] == "Numerical" and "Sergey" in o.reference_solution(first)


def test_reference_solutions_grade_correct(shared_data):
    task = Math500Task(path=str(shared_data / "math500"))
    assert sum(task.grade(p, task.reference_solution(p)).correct for p in task.load("test")) == 500
    task = GSM8KTask(path=str(shared_data / "gsm8k"))
    assert sum(task.grade(p, task.reference_solution(p)).correct for p in task.load("test")) == 1319


def test_local_data_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        MathTask(path=str(tmp_path / "nope.jsonl")).load("test")
    (tmp_path / "dev.jsonl").write_text('{"problem": "q", "answer": "1"}\n')
    with pytest.raises(DataError, match="no data file for split 'test'.*found: dev.jsonl"):
        MathTask(path=str(tmp_path)).load("test")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "q", "answer": "1"}\nnot json\n')
    with pytest.raises(DataError, match="bad.jsonl:2: invalid JSON"):
        MathTask(path=str(bad)).load("test")
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"text": "q", "label": "1"}\n')
    with pytest.raises(DataError, match="no question field.*fields: label, text. Set `question_field`"):
        MathTask(path=str(odd)).load("test")
    problems = MathTask(path=str(odd), question_field="text", answer_field="label").load("test")
    assert problems == [Problem("0", "q", "1")]
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": 1, "problem": "a", "answer": "1"}\n{"id": 1, "problem": "b", "answer": "2"}\n')
    assert [p.id for p in MathTask(path=str(dup)).load("test")] == ["0", "1"]  # non-unique ids: index
    with pytest.raises(DataError, match="same id '1'"):
        MathTask(path=str(dup), id_field="id").load("test")
    empty = tmp_path / "empty.jsonl"  # an evaluation of nothing is not a success
    for content in ("", "\n \n"):
        empty.write_text(content)
        with pytest.raises(DataError, match=r"empty.jsonl: no records \(an empty data file\)$"):
            MathTask(path=str(empty)).load("test")


def test_json_and_parquet_files(tmp_path):
    rows = [{"question": "What is 2+3?", "final_answer": ["$5$"], "id": 11}]
    (tmp_path / "test.json").write_text(json.dumps(rows))
    assert MathTask(path=str(tmp_path)).load("test") == [Problem("11", "What is 2+3?", "5")]
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    (tmp_path / "hub" / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows * 2), tmp_path / "hub" / "data" / "test-00000-of-00001.parquet")
    problems = MathTask(path=str(tmp_path / "hub")).load("test")
    assert [p.id for p in problems] == ["0", "1"] and problems[0].answer == "5"


# -- prompts, steps, grading -----------------------------------------------------------------

PROBLEM = Problem("p1", "What is $\\frac{1}{2} + \\frac{1}{2}$?", "1")


def test_prompt_templates():
    qwen = MathTask(dataset="x").prompt(PROBLEM)
    assert qwen == (
        "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        "<|im_start|>user\nWhat is $\\frac{1}{2} + \\frac{1}{2}$?<|im_end|>\n<|im_start|>assistant\n"
    )
    plain = MathTask(dataset="x", prompt_template="plain").prompt(PROBLEM)
    assert plain.startswith(PROBLEM.question + "\n") and "\\boxed{}" in plain and "<|im_start|>" not in plain
    custom = MathTask(dataset="x", prompt_template="Q: {question}\nA:").prompt(PROBLEM)
    assert custom == "Q: What is $\\frac{1}{2} + \\frac{1}{2}$?\nA:"


def test_chat_template_uses_the_tokenizer(tmp_path):
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "hi": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    fast.chat_template = (
        "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}[assistant] {% endif %}"
    )
    fast.save_pretrained(tmp_path / "tok")
    task = MathTask(dataset="x", prompt_template="chat", tokenizer=str(tmp_path / "tok"))
    assert task.prompt(PROBLEM) == (
        f"[system] {prompts.COT_INSTRUCTION}\n[user] {PROBLEM.question}\n[assistant] "
    )
    no_system = MathTask(dataset="x", prompt_template="chat", tokenizer=str(tmp_path / "tok"), system_prompt="")
    assert no_system.prompt(PROBLEM) == f"[user] {PROBLEM.question}\n[assistant] "
    missing = MathTask(dataset="x", prompt_template="chat", tokenizer=str(tmp_path / "none"))
    with pytest.raises(DataError, match="cannot load tokenizer"):
        missing.prompt(PROBLEM)


def test_steps_split_on_blank_lines():
    task = MathTask(dataset="x")
    text = "First, add.\nStill step one.\n\nThen simplify.\n\n\n\\boxed{1}\n"
    assert task.split_steps(text) == ["First, add.\nStill step one.", "Then simplify.", "\\boxed{1}"]
    assert task.join_steps(["a", "b"]) == "a\n\nb\n\n"
    assert MathTask(dataset="x", step_separator="\n").split_steps("a\nb") == ["a", "b"]


def test_grade_reasons():
    task = MathTask(dataset="x")
    assert task.grade(PROBLEM, "so we get \\boxed{\\frac{2}{2}}") == _grade(True, "\\frac{2}{2}", "")
    assert task.grade(PROBLEM, "The answer is 2.") == _grade(False, "2", "wrong answer")
    assert task.grade(PROBLEM, "no idea") == _grade(False, None, "no answer found")
    assert task.grade(Problem("p2", "q", None), "\\boxed{1}") == _grade(False, "1", "problem has no gold answer")
    assert task.answers_match(PROBLEM, "1.0") and not task.answers_match(PROBLEM, "2")
    assert task.same_answer("\\frac{1}{2}", "0.5") and not task.same_answer("1", "2")


def test_gsm8k_falls_back_to_the_last_number():
    task = GSM8KTask()
    problem = Problem("0", "q", "18")
    assert task.grade(problem, "She makes 9 * 2 = $18 every day.").correct
    assert not MathTask(dataset="x").grade(problem, "She makes 9 * 2 = $18 every day.").correct


def _grade(correct, predicted, reason):
    from openr_core import Grade

    return Grade(correct, predicted, reason)


# -- the core evaluate job with a math task ---------------------------------------------------


class OracleGenerator(Generator):
    """Answers the questions in ``ANSWERS`` (by question text) with a boxed answer; else rambles."""

    ANSWERS: dict = {}

    @attrs.frozen
    class Config:
        pass

    def generate(self, requests):
        results = []
        for r in requests:
            question = r.prompt.split("<|im_start|>user\n", 1)[-1].split("<|im_end|>", 1)[0]
            answer = self.ANSWERS.get(question)
            text = f"Step one.\n\nSo the result is $\\boxed{{{answer}}}$." if answer else "I give up."
            results.append(GenerationResult([Completion(text, 5)] * r.params.n, 10))
        return results


class OraclePlugin:
    @hookimpl
    def register_generators(self, register):
        register("oracle", OracleGenerator)


def test_evaluate_job_runs_on_a_math_task(shared_data, tmp_path):
    from click.testing import CliRunner

    from openr_core import plugins as plugins_module
    from openr_core.cli import cli

    problems = AMC23Task(path=str(shared_data / "amc23/test.jsonl")).load("test", 4)
    # right (spelled differently), right, wrong, no answer
    OracleGenerator.ANSWERS = {problems[0].question: problems[0].answer + ".0",
                               problems[1].question: "\\frac{" + str(2 * int(problems[1].answer)) + "}{2}",
                               problems[2].question: "-1"}
    config = tmp_path / "eval.yaml"
    config.write_text(textwrap.dedent(f"""
        job: evaluate
        task: {{type: amc23, path: {shared_data / 'amc23/test.jsonl'}}}
        generator: oracle
        limit: 4
        n: 2
    """))
    saved = plugins_module._plugins
    plugins_module.set_plugins(_plugins(OraclePlugin()))
    try:
        result = CliRunner().invoke(cli, ["validate", str(config)])
        assert result.exit_code == 0, result.output
        result = CliRunner().invoke(cli, ["evaluate", str(config), "-o", str(tmp_path / "run")])
        assert result.exit_code == 0, result.output
    finally:
        plugins_module.set_plugins(saved)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["problems"] == 4 and summary["accuracy"] == 0.5
    assert summary["pass@2"] == 0.5 and summary["majority@2"] == 0.5
