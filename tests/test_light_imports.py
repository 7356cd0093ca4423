"""`import openr_core`, `openr --help` and `openr validate` never import torch, vllm or transformers."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("torch", "vllm", "transformers")

PROBE = textwrap.dedent(
    """
    import json, sys
    args = sys.argv[1:]
    code = 0
    if args == ["import"]:
        import openr_core
    else:
        from openr_core.cli import cli
        try:
            cli.main(args=args, prog_name="openr")
        except SystemExit as e:
            code = e.code
    heavy = sorted(m for m in {heavy!r} if m in sys.modules)
    print("PROBE " + json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
    """
).format(heavy=HEAVY)


def _probe(args, pythonpath=(), env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENR_") and k != "PYTHONPATH"}
    if pythonpath:
        full_env["PYTHONPATH"] = os.pathsep.join(map(str, pythonpath))
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=full_env, timeout=60)
    line = [x for x in proc.stderr.splitlines() if x.startswith("PROBE ")]
    assert line, proc.stderr
    return json.loads(line[-1].removeprefix("PROBE ")), proc


@pytest.fixture
def example_on_path(tmp_path, request):
    """The example plugin findable through a hand-made dist-info (no pip), and an evaluate config for it."""
    repo = request.config.rootpath
    site = tmp_path / "site"
    info = site / "openr_example-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: openr-example\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[openr]\nexample = openr_example\n")
    config = tmp_path / "eval.yaml"
    config.write_text("job: evaluate\ntask: countdown\ngenerator: {type: echo, repeat: 2}\n")
    return [site, repo / "docs" / "examples" / "openr-example" / "src"], config


def test_import_openr_core_is_light():
    result, _ = _probe(["import"])
    assert result == {"code": 0, "heavy": []}


def test_openr_help_is_light_with_every_installed_plugin(example_on_path):
    pythonpath, _ = example_on_path
    result, proc = _probe(["--help"], pythonpath)
    assert result["code"] == 0
    assert result["heavy"] == [], f"`openr --help` imported {result['heavy']}; a plugin module imports it at import time"
    result, _ = _probe(["ls"], pythonpath)
    assert result == {"code": 0, "heavy": []}


def test_openr_validate_is_light(example_on_path):
    pythonpath, config = example_on_path
    result, proc = _probe(["validate", str(config)], pythonpath, env={"OPENR_PLUGINS": "example"})
    assert result == {"code": 0, "heavy": []}, proc.stderr
    assert f"{config}: ok (evaluate)" in proc.stdout
    # and the component modules were really imported (validation reads their Config)
    result, proc = _probe(["validate", str(config), "--set", "generator.repeat=zero"], pythonpath, env={"OPENR_PLUGINS": "example"})
    assert result == {"code": 2, "heavy": []}
    assert f"openr: error: {config}: generator.repeat: expected an integer, got a string 'zero'" in proc.stderr
