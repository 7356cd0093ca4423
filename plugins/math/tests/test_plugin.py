"""The plugin stays light to import, and the installed entry point lists the tasks."""

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "datasets", "pyarrow", "math_verify", "sympy", "latex2sympy2_extended")

PROBE = """
import json, sys
import openr_math.plugin, openr_math.tasks
from openr_math.tasks import Math500Task
Math500Task.Config(path="x.jsonl")
Math500Task(path="x.jsonl").extract_answer("\\\\boxed{1}")
print(json.dumps(sorted(m for m in HEAVY if m in sys.modules)))
"""


def test_plugin_and_task_modules_import_nothing_heavy():
    proc = subprocess.run([sys.executable, "-c", PROBE.replace("HEAVY", repr(HEAVY))], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_installed_entry_point_lists_the_tasks():
    from importlib.metadata import entry_points

    eps = [ep for ep in entry_points(group="openr") if ep.name == "math"]
    if not eps:
        pytest.skip("openr-math is not installed (pip install -e plugins/math)")
    code = "import sys; from openr_core.cli import main; sys.argv[0] = 'openr'; main()"
    proc = subprocess.run([sys.executable, "-c", code, "ls", "tasks"], capture_output=True, text=True, timeout=60,
                          env={"OPENR_PLUGINS": "math", "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    for name in ("math", "math500", "gsm8k", "aime24", "amc23", "minerva", "olympiadbench"):
        line = next((x for x in proc.stdout.splitlines() if x.strip().startswith(name + " ")), None)
        assert line and "[openr-math]" in line and "math-verify" in line, proc.stdout
