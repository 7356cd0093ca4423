"""Issue 15 leftovers, core: numbers in configs are finite and within their bounds (YAML and
Python alike), sampling parameters refuse NaN and empty stop strings, ``labels.jsonl`` is read
back with field checks, and a failed write of results (disk full, read-only) is one line that
loses nothing already written."""

import errno
import json
import math

import attrs
import pytest

from openr_core import ConfigError, DataError, LabelledExample, SamplingParams
from openr_core.config import Where, count, number, structure
from openr_core.errors import OutputError
from openr_core.jobs import JobConfig, job_command
from openr_core.labelling import read_labels
from openr_core.runs import JsonlResults, Run
from openr_core.types import to_dict


@attrs.frozen
class Knobs:
    temperature: float = number(1.0, minimum=0)
    top_p: float = number(1.0, above=0, maximum=1)
    threshold: float | None = None
    threads: int | None = count(None)


def _structure(data):
    return structure(Knobs, data, Where("k.yaml"), None)


@pytest.mark.parametrize(("data", "message"), [
    ({"temperature": float("nan")}, "k.yaml: temperature: expected a finite number, got nan"),
    ({"temperature": "nan"}, "k.yaml: temperature: expected a finite number, got 'nan'"),
    ({"temperature": float("inf")}, "k.yaml: temperature: expected a finite number, got inf"),
    ({"temperature": "1e999"}, "k.yaml: temperature: expected a finite number, got '1e999'"),
    ({"threshold": float("-inf")}, "k.yaml: threshold: expected a finite number, got -inf"),
    ({"temperature": -0.5}, "k.yaml: temperature: must be >= 0: -0.5"),
    ({"top_p": 0}, "k.yaml: top_p: must be > 0: 0.0"),
    ({"top_p": 1.5}, "k.yaml: top_p: must be <= 1: 1.5"),
    ({"threads": 0}, "k.yaml: threads: must be >= 1: 0"),
    ({"threads": -1}, "k.yaml: threads: must be >= 1: -1"),
    ({"temperature": "hot"}, "k.yaml: temperature: expected a number, got a string 'hot'"),
])
def test_a_number_out_of_bounds_or_not_finite_is_one_line(data, message):
    with pytest.raises(ConfigError) as info:
        _structure(data)
    assert str(info.value) == message


def test_numbers_within_bounds_pass_and_python_instances_are_checked_the_same():
    assert _structure({"temperature": 0, "top_p": 1, "threshold": None, "threads": 2}) == Knobs(0.0, 1.0, None, 2)
    assert _structure({"temperature": "1e-3"}).temperature == 0.001  # YAML 1.1 reads 1e-3 as a string
    # built in Python: a wrong type reaches the structurer's message, not a TypeError from a bound
    with pytest.raises(ConfigError, match=r"^k.yaml: temperature: expected a number, got a string 'hot'$"):
        _structure(Knobs(temperature="hot"))
    with pytest.raises(ValueError, match=r"'top_p' must be <= 1: 2"):
        Knobs(top_p=2)
    with pytest.raises(ValueError, match=r"'temperature' must be >= 0: nan"):  # NaN fails every bound
        Knobs(temperature=math.nan)


@pytest.mark.parametrize(("fields", "message"), [
    ({"stop": ("",)}, "stop: every stop string must be a non-empty string, got ''"),
    ({"stop": ["\n", ""]}, "stop: every stop string must be a non-empty string, got ''"),
    ({"stop": [None]}, "stop: every stop string must be a non-empty string, got None"),
    ({"temperature": math.nan}, "temperature must be a finite number >= 0, got nan"),
    ({"temperature": math.inf}, "temperature must be a finite number >= 0, got inf"),
    ({"top_p": math.nan}, "top_p must be in (0, 1], got nan"),
])
def test_sampling_params_refuse_empty_stops_and_nan(fields, message):
    with pytest.raises(ValueError) as info:
        SamplingParams(**fields)
    assert str(info.value) == f"SamplingParams.{message}"


def test_a_bare_stop_string_is_one_stop_and_a_string_is_never_a_list_of_steps():
    assert SamplingParams(stop="\n\n").stop == ("\n\n",)  # not ("\n", "\n")
    with pytest.raises(TypeError, match="expected a list, got a string 'abc'"):
        LabelledExample("q", "abc", [True, True, True])


# -- labels.jsonl is read back with field checks ---------------------------------------------------


def _labels_file(tmp_path, change=None):
    examples = [LabelledExample("1 + 1 ?", ["1 + 1 = 2", "answer 2"], [True, True], [1.0, 0.75], "p0", {"outcome": True}),
                LabelledExample("2 + 2 ?", ["2 + 2 = 5", "answer 5"], [False, False], None, "p1")]
    records = [{"id": f"{e.problem_id}/0", **to_dict(e)} for e in examples]
    if change:
        change(records[1])
    results = JsonlResults(tmp_path / "labels.jsonl")
    results.append(records)
    return JsonlResults(tmp_path / "labels.jsonl"), examples


def test_read_labels_gives_back_what_the_label_job_wrote(tmp_path):
    records, examples = _labels_file(tmp_path)
    assert read_labels(records) == examples


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r.update(labels=["false", "false"]), "field 'labels[0]' must be true/false (or 0/1), got str 'false'"),
    (lambda r: r.update(completions="2 + 2 = 5"), "field 'completions' must be a non-empty list of step strings, got str '2 + 2 = 5'"),
    (lambda r: r.update(prompt=None), "field 'prompt' must be a string, got NoneType None"),
    (lambda r: r.pop("labels"), "missing field 'labels'"),
    (lambda r: r.update(labels=[True]), "LabelledExample has 2 steps but 1 labels"),
    (lambda r: r.update(soft_labels=[0.5, 7]), "field 'soft_labels[1]' must be true/false or a number in [0, 1], got int 7"),
    (lambda r: r.update(meta=[1]), "field 'meta' must be an object, got list [1]"),
])
def test_a_damaged_labels_record_is_one_line_naming_file_and_record(tmp_path, change, message):
    records, _ = _labels_file(tmp_path, change)
    with pytest.raises(DataError) as info:
        read_labels(records)
    assert str(info.value) == f"{tmp_path / 'labels.jsonl'}: record 'p1/0': {message}"


# -- a failed write of results: one line, nothing already written lost -------------------------------


def _fail_fsync(monkeypatch, code=errno.ENOSPC):
    import openr_core.runs as runs

    def fail(fd):
        raise OSError(code, {errno.ENOSPC: "No space left on device", errno.EROFS: "Read-only file system"}[code])

    monkeypatch.setattr(runs.os, "fsync", fail)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_failed_append_is_one_line_and_leaves_the_file_as_it_was(tmp_path, monkeypatch, code):
    path = tmp_path / "results.jsonl"
    results = JsonlResults(path)
    results.append([{"id": "a", "x": 1}, {"id": "b", "x": 2}])
    before = path.read_bytes()
    with monkeypatch.context() as m:
        _fail_fsync(m, code)
        with pytest.raises(OutputError) as info:
            results.append([{"id": "c", "x": 3}])
    assert str(info.value).startswith(f"{path}: cannot write: ")
    assert "\n" not in str(info.value) and "what was written before is kept" in str(info.value)
    assert path.read_bytes() == before  # the half-written record is gone, the old ones whole
    assert "c" not in results
    results.append([{"id": "c", "x": 3}])  # space freed: the same append goes through once
    assert [r["id"] for r in JsonlResults(path)] == ["a", "b", "c"]


def test_a_failed_summary_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    import openr_core.runs as runs

    run = Run(JobConfig(job="x"), tmp_path)
    run.write_json("summary.json", {"v": 1})
    monkeypatch.setattr(runs.os, "replace", lambda a, b: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(OutputError, match=r"summary.json: cannot write: No space left on device;"):
        run.write_json("summary.json", {"v": 2})
    assert json.loads((tmp_path / "summary.json").read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


@pytest.mark.parametrize(("code", "converted"), [(errno.ENOSPC, True), (errno.EROFS, True), (errno.EACCES, True),
                                                 (errno.ECONNRESET, False)])
def test_a_job_that_cannot_write_its_own_files_fails_in_one_line(tmp_path, code, converted):
    from click.testing import CliRunner

    def runner(config, run):
        (run.output_dir / "part.txt").write_text("done before the failure")
        raise OSError(code, "the system's words", str(run.output_dir / "checkpoint.pt"))

    command = job_command("writes", JobConfig, runner)
    config = tmp_path / "c.yaml"
    config.write_text("job: writes\n")
    result = CliRunner().invoke(command, [str(config), "-o", str(tmp_path / "out")])
    if converted:
        assert isinstance(result.exception, OutputError)
        assert str(result.exception).startswith(f"{tmp_path / 'out' / 'checkpoint.pt'}: cannot write: the system's words;")
    else:  # not a write failure: left as it is (a traceback with --debug, a bug report otherwise)
        assert type(result.exception) is ConnectionResetError
    assert (tmp_path / "out" / "part.txt").read_text() == "done before the failure"


# -- a weights file is checked before any loader reads it ---------------------------------------------


def _safetensors(tensors: dict[str, int]) -> bytes:
    """A safetensors file (raw bytes) of float32 vectors with the given lengths."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, n in tensors.items():
        header[name] = {"dtype": "F32", "shape": [n], "data_offsets": [offset, offset + 4 * n]}
        offset += 4 * n
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + bytes(offset)


def test_every_cut_of_a_weights_file_is_one_line_naming_folder_and_file(tmp_path):
    from openr_core.paths import check_model_folder, safetensors_problem

    whole = _safetensors({"a": 3, "b": 5})
    (tmp_path / "model.safetensors").write_bytes(whole)
    assert safetensors_problem(tmp_path / "model.safetensors") is None
    check_model_folder(str(tmp_path))
    for cut in range(len(whole)):  # every shorter file: empty, inside the length, the header, the data
        (tmp_path / "model.safetensors").write_bytes(whole[:cut])
        with pytest.raises(DataError) as info:
            check_model_folder(str(tmp_path))
        message = str(info.value)
        assert message.startswith(f"model '{tmp_path}': cannot load: a .safetensors file is corrupt or cut short: "
                                  "model.safetensors: "), message
        assert "\n" not in message


@pytest.mark.parametrize(("content", "problem"), [
    (b"\xff" * 64, "header length 18446744073709551615 does not fit in a file of 64 bytes"),
    ((4).to_bytes(8, "little") + b"[1] ", "the header is not a JSON object"),
    ((4).to_bytes(8, "little") + b"\xff\xfe{}", "the header is not JSON"),
    ((13).to_bytes(8, "little") + b'{"w": [0, 4]}', "tensor 'w' has no [begin, end] data_offsets"),
])
def test_a_garbage_header_is_named(tmp_path, content, problem):
    from openr_core.paths import safetensors_problem

    (tmp_path / "model.safetensors").write_bytes(content)
    assert safetensors_problem(tmp_path / "model.safetensors") == problem


def test_a_tensor_without_offsets_is_named(tmp_path):
    from openr_core.paths import safetensors_problem

    text = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}}).encode()
    (tmp_path / "model.safetensors").write_bytes(len(text).to_bytes(8, "little") + text + bytes(4))
    assert safetensors_problem(tmp_path / "model.safetensors") == "tensor 'w' has no [begin, end] data_offsets"


# -- a key given twice is an error, not "the last one wins" ------------------------------------------


def test_yaml_merge_keys_still_override():
    from openr_core.config import parse_yaml

    data = parse_yaml("base: &b {n: 4, t: 1}\nmine: {<<: *b, n: 8}\n", "c.yaml")
    assert data["mine"] == {"n": 8, "t": 1}


def test_a_json_key_given_twice_is_one_line(tmp_path):
    from openr_core.jsonl import read_jsonl, read_records

    (tmp_path / "d.jsonl").write_text('{"id": 1, "label": 2}\n{"id": 2, "label": 3, "label": -1}\n')
    with pytest.raises(DataError, match=r"d.jsonl:2: invalid JSON: key 'label' is given twice in one object$"):
        read_jsonl(tmp_path / "d.jsonl")
    (tmp_path / "d.json").write_text('[{"x": {"a": 1, "a": 1}}]')
    with pytest.raises(DataError, match=r"d.json: invalid JSON: key 'a' is given twice in one object$"):
        read_records(tmp_path / "d.json")


def test_a_list_of_sections_can_require_at_least_one(plugins):
    from openr_core.config import component

    @attrs.frozen
    class Job:
        generators: list = component("generator", many=True, minimum=1)

    with pytest.raises(ConfigError, match=r"^j.yaml: generators: expected at least 1 generator section\(s\), got 0$"):
        structure(Job, {"generators": []}, Where("j.yaml"), plugins)
    with pytest.raises(ValueError, match=r"expected at least 1 generator section\(s\), got 0"):
        Job(generators=[])  # from Python too
    assert len(structure(Job, {"generators": ["echo"]}, Where("j.yaml"), plugins).generators) == 1


# -- one run at a time in a run folder -------------------------------------------------------------


def test_a_second_run_into_a_busy_folder_is_refused_and_deletes_nothing(tmp_path):
    out = tmp_path / "out"
    first = Run.start(JobConfig(job="x"), out)
    first.results().append({"id": "p0"})
    for fresh in (False, True):
        with pytest.raises(ConfigError) as info:
            Run.start(JobConfig(job="x"), out, fresh=fresh)
        assert str(info.value) == (f"{out}: another openr process is writing into this folder; "
                                   "wait for it to finish or choose another --output")
    assert [r["id"] for r in JsonlResults(out / "results.jsonl")] == ["p0"]  # --fresh deleted nothing
    first.close()
    second = Run.start(JobConfig(job="x"), out)  # free again once the first is done
    second.results().append({"id": "p1"})
    second.close()
    assert [r["id"] for r in JsonlResults(out / "results.jsonl")] == ["p0", "p1"]


def test_the_ranks_of_one_multi_process_job_share_rank_0s_lock(tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setenv("RANK", "0")
    main = Run.start(JobConfig(job="x"), out)
    monkeypatch.setenv("RANK", "1")  # torchrun / accelerate launch: the other rank of the same job
    other = Run.start(JobConfig(job="x"), out)
    other.close()
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="another openr process is writing into this folder"):
        Run.start(JobConfig(job="x"), out)
    main.close()


def test_two_processes_into_one_folder_write_each_record_once(tmp_path):
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import sys, time
        from openr_core.jobs import JobConfig
        from openr_core.runs import Run
        run = Run.start(JobConfig(job="x"), {str(tmp_path / 'out')!r})
        print("started", flush=True)
        time.sleep(float(sys.argv[1]))
        run.results().append([{{"id": i}} for i in range(3)])
        run.close()
    """)
    first = subprocess.Popen([sys.executable, "-c", script, "2"], stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline().strip() == "started"
    second = subprocess.run([sys.executable, "-c", script, "0"], capture_output=True, text=True)
    assert second.returncode != 0 and "another openr process is writing into this folder" in second.stderr
    assert first.wait() == 0
    assert (tmp_path / "out" / "results.jsonl").read_text().count("\n") == 3


def test_a_second_rank_writes_nothing_into_the_run_folder(tmp_path, monkeypatch):
    """torchrun / accelerate: rank 0 claims and writes the folder; another rank racing it for the
    same marker and config files (it once failed on rank 0's temporary file) writes nothing."""
    out = tmp_path / "out"
    monkeypatch.setenv("RANK", "1")
    Run.start(JobConfig(job="x"), out, fresh=True).close()
    assert not out.exists()


def test_results_never_hold_nan_or_infinity(tmp_path):
    """NaN/Infinity are not JSON (jq, browsers and pandas' strict readers refuse the file): null."""
    import json

    results = JsonlResults(tmp_path / "results.jsonl")
    results.append({"id": "a", "scores": [0.5, float("nan")], "reward": float("inf"), "meta": {"x": float("-inf")}})
    line = (tmp_path / "results.jsonl").read_text()
    assert json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} written")) == {
        "id": "a", "scores": [0.5, None], "reward": None, "meta": {"x": None}}
    run = Run.start(JobConfig(job="x"), tmp_path / "out")
    path = run.write_json("summary.json", {"f1": float("nan"), "n": 3})
    run.close()
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} written")) == {"f1": None, "n": 3}
