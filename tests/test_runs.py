"""Output folders: config.yaml with defaults, refusing another config, --fresh, JSONL resume."""

import json

import pytest
import yaml

from openr_core import DataError
from openr_core.config import Where, structure
from openr_core.errors import ConfigError
from openr_core.evaluation import EvaluateJob
from openr_core.runs import CONFIG_FILE, JsonlResults, Run


def _config(plugins, **overrides):
    raw = {"job": "evaluate", "task": "tiny", "generator": "echo", **overrides}
    return structure(EvaluateJob, raw, Where("test.yaml"), plugins)


# -- JsonlResults ------------------------------------------------------------------------------


def test_jsonl_append_and_reopen(tmp_path):
    path = tmp_path / "sub" / "results.jsonl"
    results = JsonlResults(path)
    assert len(results) == 0 and not path.exists()
    results.append([{"id": "a", "v": 1}, {"id": "b", "v": 2}])
    results.append({"id": "c", "v": 3})
    assert path.read_text().count("\n") == 3
    again = JsonlResults(path)
    assert [r["id"] for r in again] == ["a", "b", "c"]
    assert "b" in again and "z" not in again and again.get("c") == {"id": "c", "v": 3} and again.get("z") is None


def test_jsonl_resume_drops_truncated_last_line_and_never_duplicates(tmp_path):
    path = tmp_path / "results.jsonl"
    JsonlResults(path).append([{"id": 1, "v": "one"}, {"id": 2, "v": "two"}])
    whole = path.read_bytes()
    with open(path, "ab") as f:
        f.write(b'{"id": 3, "v": "thr')  # killed mid-write
    results = JsonlResults(path)
    assert [r["id"] for r in results] == [1, 2]
    assert path.read_bytes() == whole  # the cut line is gone from the file too
    # records already there are not written again, within a batch neither
    results.append([{"id": 2, "v": "again"}, {"id": 3, "v": "three"}, {"id": 3, "v": "dup"}, {"id": 4, "v": "four"}])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["id"] for r in lines] == [1, 2, 3, 4]
    assert [r["v"] for r in lines] == ["one", "two", "three", "four"]
    assert len(JsonlResults(path)) == 4


def test_jsonl_custom_key_and_empty_lines(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"problem_id": "x", "n": 1}\n\n{"problem_id": "y", "n": 2}\n')
    results = JsonlResults(path, key="problem_id")
    assert [r["n"] for r in results] == [1, 2]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"id": 1}\nnot json\n{"id": 3}\n', ":2: invalid JSON"),
        (b'{"id": 1}\n{"other": 2}\n', ":2: no 'id' field"),
        (b'[1, 2]\n', ":1: expected a JSON object, got a list"),
        (b'{"id": 1}\n{"id": "\xff"}\n', ":2: not UTF-8 text"),
        (b'{"id": [1]}\n', ":1: no 'id' field (a string or a number)"),
    ],
)
def test_jsonl_corrupt_middle_line_is_a_data_error(tmp_path, content, message):
    path = tmp_path / "results.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        JsonlResults(path)
    assert str(info.value).startswith(f"{path}{message}")


# -- Run ---------------------------------------------------------------------------------------


def test_run_start_writes_resolved_config_with_defaults(plugins, tmp_path):
    out = tmp_path / "out"
    run = Run.start(_config(plugins, n=2, output_dir="ignored/here"), out)
    written = yaml.safe_load((out / CONFIG_FILE).read_text())
    assert written == {
        "job": "evaluate", "seed": 0, "launcher": None,
        "task": {"type": "tiny", "size": 4},
        "generator": {"type": "echo", "repeat": 1},
        "split": "test", "limit": None, "n": 2, "temperature": 1.0, "top_p": 1.0,
        "max_tokens": 256, "batch_size": 100,
    }  # output_dir is where, not what: it is left out
    assert run.output_dir == out and run.seed == 0
    assert not list(out.glob("*.tmp"))


def test_run_start_resumes_same_config_and_refuses_another(plugins, tmp_path):
    out = tmp_path / "out"
    Run.start(_config(plugins, n=2), out).results().append({"id": "p0"})
    Run.start(_config(plugins, n=2, output_dir="elsewhere"), out)  # same config: resume
    assert len(JsonlResults(out / "results.jsonl")) == 1
    with pytest.raises(ConfigError) as info:
        Run.start(_config(plugins, n=3), out)
    assert str(info.value) == (
        f"{out}: holds results of a different config (first difference: n); "
        "use another --output or --fresh to start over"
    )
    with pytest.raises(ConfigError, match=r"first difference: generator\.repeat\)"):
        Run.start(_config(plugins, n=2, generator={"type": "echo", "repeat": 2}), out)
    # --fresh starts over: old results are gone
    Run.start(_config(plugins, n=3), out, fresh=True)
    assert not (out / "results.jsonl").exists()
    assert yaml.safe_load((out / CONFIG_FILE).read_text())["n"] == 3


def test_a_run_folder_resumes_after_a_release_adds_a_config_field(plugins, tmp_path):
    out = tmp_path / "out"
    Run.start(_config(plugins, n=2), out).results().append({"id": "p0"})
    config_path = out / CONFIG_FILE
    held = yaml.safe_load(config_path.read_text())
    del held["batch_size"]  # written by a release before the field existed
    config_path.write_text(yaml.safe_dump(held))
    Run.start(_config(plugins, n=2), out)
    assert len(JsonlResults(out / "results.jsonl")) == 1
    assert yaml.safe_load(config_path.read_text())["batch_size"] == 100
    with pytest.raises(ConfigError, match=r"first difference: n\)"):
        Run.start(_config(plugins, n=3), out)


def test_run_builds_each_component_once_and_closes(plugins, tmp_path):
    config = _config(plugins)
    run = Run.start(config, tmp_path / "out")
    assert run.generator is run.generator
    assert run.task.load("test", limit=2)[1].id == "p1"
    assert run.reward_model is None
    closed = []
    run.generator.close = lambda: closed.append(True)
    run.close()
    assert closed == [True]


def test_evaluate_cli_refuses_another_config_in_same_folder(plugins, invoke, write_config, tmp_path):
    path = write_config("job: evaluate\ntask: tiny\ngenerator: echo\n")
    out = str(tmp_path / "out")
    assert invoke("run", path, "-o", out).exit_code == 0
    result = invoke("run", path, "-o", out, "--set", "n=2")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(f"openr: error: {out}: holds results of a different config (first difference: n); use another --output or --fresh to start over")
    result = invoke("run", path, "-o", out, "--set", "n=2", "--fresh")
    assert result.exit_code == 0, result.output


def test_default_output_folder_is_runs_slash_config_name(plugins, invoke, write_config, tmp_path, monkeypatch):
    path = write_config("job: evaluate\ntask: tiny\ngenerator: echo\n", "my-eval.yaml")
    monkeypatch.chdir(tmp_path)
    assert invoke("run", path).exit_code == 0
    assert (tmp_path / "runs" / "my-eval" / "summary.json").exists()
    path = write_config(f"job: evaluate\ntask: tiny\ngenerator: echo\noutput_dir: {tmp_path / 'chosen'}\n", "other.yaml")
    assert invoke("run", path).exit_code == 0
    assert (tmp_path / "chosen" / "summary.json").exists()


def test_a_run_resumes_with_another_limit_and_summarises_its_own_problems(plugins, invoke, write_config, tmp_path):
    """limit 2 -> 4 extends the run (only the 2 new problems are generated); 4 -> 1 summarises 1."""
    path = write_config("job: evaluate\ntask: tiny\ngenerator: echo\nlimit: 2\n")
    out = tmp_path / "out"
    assert invoke("run", path, "-o", str(out)).exit_code == 0
    first = (out / "results.jsonl").read_text()
    result = invoke("run", path, "-o", str(out), "--set", "limit=4")
    assert result.exit_code == 0, result.output
    text = (out / "results.jsonl").read_text()
    assert text.startswith(first) and [json.loads(x)["id"] for x in text.splitlines()] == ["p0", "p1", "p2", "p3"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == 4 and summary["accuracy"] == 0.5  # echo answers p0, p2 right
    assert yaml.safe_load((out / CONFIG_FILE).read_text())["limit"] == 4
    assert invoke("run", path, "-o", str(out), "--set", "limit=1").exit_code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == 1 and summary["accuracy"] == 1.0
    assert (out / "results.jsonl").read_text() == text
