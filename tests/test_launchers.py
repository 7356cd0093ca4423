"""Launchers without Ray: the config section, the register_launchers hook, resuming on another launcher.

The Ray cluster tests are in test_ray.py."""

import json
import subprocess
import sys
import textwrap

import pytest

from openr_core import hookimpl
from openr_core.launchers import LocalLauncher

EVALUATE = """
job: evaluate
task: {type: tiny, size: 7}
generator: {type: echo}
batch_size: 2
"""


class ReversedLauncher(LocalLauncher):
    """Computes the batches last to first (a third party's launcher), yields them in order."""

    batches_seen: list = []

    def map(self, run, compute, batches):
        results = {i: compute(run, batches[i]) for i in reversed(range(len(batches)))}
        ReversedLauncher.batches_seen.append([[p.id for p in b] for b in batches])
        for i in range(len(batches)):
            yield results[i]


class LauncherPlugin:
    @hookimpl
    def register_launchers(self, register):
        register("reversed", ReversedLauncher)


def records(folder):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (folder / "results.jsonl").read_text().splitlines()]


def test_a_plugin_launcher_runs_the_batches_and_records_match_local(plugins, invoke, write_config, tmp_path):
    assert plugins.register(LauncherPlugin(), "launchers", dist="launcher-tests")
    assert "launchers" in plugins.info["launchers"].components and "local" in plugins.registry("launchers")
    ReversedLauncher.batches_seen = []
    local = invoke("run", write_config(EVALUATE), "-o", str(tmp_path / "local"))
    assert local.exit_code == 0, local.output
    other = invoke("run", write_config(EVALUATE + "launcher: {type: reversed}\n"), "-o", str(tmp_path / "other"))
    assert other.exit_code == 0, other.output
    assert ReversedLauncher.batches_seen == [[["p0", "p1"], ["p2", "p3"], ["p4", "p5"], ["p6"]]]
    assert records(tmp_path / "other") == records(tmp_path / "local")
    assert [r["id"] for r in records(tmp_path / "local")] == [f"p{i}" for i in range(7)]


def test_a_run_resumes_on_another_launcher_without_redoing_batches(plugins, invoke, write_config, tmp_path):
    assert plugins.register(LauncherPlugin(), "launchers", dist="launcher-tests")
    out = tmp_path / "run"
    assert invoke("run", write_config(EVALUATE), "-o", str(out)).exit_code == 0
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text("".join(lines[:3]))  # killed after p2
    ReversedLauncher.batches_seen = []
    result = invoke("run", write_config(EVALUATE + "launcher: {type: reversed}\n"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert ReversedLauncher.batches_seen == [[["p3", "p4"], ["p5", "p6"]]]
    assert [r["id"] for r in records(out)] == [f"p{i}" for i in range(7)]
    assert "type: reversed" in (out / "config.yaml").read_text()


BAD_LAUNCHERS = [
    ("{type: slurm}", "launcher.type: unknown launcher 'slurm'"),
    ("{type: ray, workers: 0}", "launcher: workers must be an integer >= 1, got 0"),
    ("{type: ray, address: 'head-node'}", "launcher: address must be null"),
    ("{type: ray, address: 'ray://head:99999'}", "launcher: address must be null"),
    ("{type: ray, worker_resources: {GPU: -1}}", "launcher: worker_resources.GPU must be a number >= 0"),
    ("{type: ray, wrokers: 2}", "launcher.wrokers: unknown key (did you mean 'workers'?)"),
]


@pytest.mark.parametrize("section, message", BAD_LAUNCHERS)
def test_validate_rejects_a_bad_launcher_in_one_line(plugins, invoke, write_config, section, message):
    path = write_config(EVALUATE + f"launcher: {section}\n")
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and f"{path}: {message}" in result.stderr, result.stderr


@pytest.mark.parametrize("address", ["auto", "10.0.0.5:6379", "ray://head.example:10001", None])
def test_validate_accepts_the_documented_addresses(plugins, invoke, write_config, address):
    section = {"type": "ray", "workers": 4, "address": address, "worker_resources": {"GPU": 1, "CPU": 2}}
    result = invoke("validate", write_config(EVALUATE + f"launcher: {json.dumps(section)}\n"))
    assert result.exit_code == 0, result.output


def test_launchers_are_not_a_key_of_jobs_that_do_not_run_batches(plugins, invoke, write_config):
    result = invoke("validate", write_config("job: train\ntrainer: {type: x}\nlauncher: {type: ray}\n"))
    assert result.exit_code == 2 and "launcher: unknown key" in result.stderr


@pytest.mark.parametrize("args", [["import"], ["--help"], ["validate", "CONFIG"], ["ls", "launchers"]])
def test_import_help_validate_and_ls_do_not_import_ray(tmp_path, args):
    config = tmp_path / "c.yaml"
    config.write_text("job: search\ntask: arith\ngenerator: {type: transformers, model: x}\nsearchers: [greedy]\n"
                      "launcher: {type: ray, workers: 2}\n")
    args = [str(config) if a == "CONFIG" else a for a in args]
    probe = textwrap.dedent(f"""
        import sys
        if {args!r} == ["import"]:
            import openr_core
        else:
            from openr_core.cli import cli
            try:
                cli.main(args={args!r}, prog_name="openr")
            except SystemExit as e:
                assert e.code == 0, e.code
        print(sorted(m for m in ("ray", "torch", "transformers") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_scaling_md_documents_every_launcher_key_and_its_examples_validate(plugins):
    import re
    from pathlib import Path

    import attrs
    import yaml

    from openr_core.config import Where, structure_component
    from openr_core.ray_launcher import RayLauncher

    text = (Path(__file__).resolve().parent.parent / "docs" / "scaling.md").read_text()
    for field in attrs.fields(RayLauncher.Config):
        assert f"| `{field.name}` |" in text, field.name
    sections = [yaml.safe_load(block)["launcher"] for block in re.findall(r"```yaml\n(.*?)```", text, re.S)
                if "launcher:" in block]
    assert len(sections) >= 3
    for section in sections:
        spec = structure_component("launcher", section, Where("docs/scaling.md") / "launcher", plugins)
        assert spec.type == "ray" and spec.config.workers >= 1
    for line in re.findall(r"^openr: error: c\.yaml: (.*)$", text, re.M):
        assert any(line.startswith(message) for _, message in BAD_LAUNCHERS), line
