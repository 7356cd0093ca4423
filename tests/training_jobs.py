"""Tiny training jobs for the fault-injection and multi-process tests, and (run as a script) a
launcher that SIGKILLs its own process at the n-th call of one function of
`openr_transformers.training`, after writing part of that call's output:

    python tests/training_jobs.py WHERE N run CONFIG -o OUT      (also under torchrun)

WHERE: ``state`` (trainer state half written), ``model`` (checkpoint weights written, tokenizer and
state not yet), ``log`` (right after the n-th log line), or ``spy`` (no kill: every call of
``Session.share`` appends the share it returns, as hashes, to ``OUT/shares-RANK.jsonl``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

from openr_arith.task import ArithTask
from openr_core.types import LabelledExample, to_dict

LAUNCHER = Path(__file__).resolve()
TORCHRUN = Path(sys.executable).parent / "torchrun"
ACCELERATE = Path(sys.executable).parent / "accelerate"
ACCELERATE_CONFIG = LAUNCHER.parents[1] / "docs" / "accelerate" / "cpu-2.yaml"  # the documented 2-process config


def corrupted_examples(n: int) -> list[dict]:
    """Reference arith solutions and copies with one wrong result, exactly labelled."""
    rng = random.Random(0)
    out = []
    for p in ArithTask().load("train", n):
        steps = p.meta["solution"].split("\n")
        out.append(LabelledExample(p.question, steps, [True] * len(steps), None, p.id, {"outcome": True}))
        k = rng.randrange(len(steps) - 1)
        head, result = steps[k].rsplit(" ", 1)
        bad = steps[:k] + [f"{head} {int(result) + 1}"] + steps[k + 1:]
        out.append(LabelledExample(p.question, bad, [i < k for i in range(len(steps))], None, p.id, {"outcome": False}))
    return [to_dict(e) for e in out]


def job(kind: str, tmp: Path) -> dict:
    if kind == "sft":
        trainer = {"type": "sft", "model": "pkg:openr_arith/models/skeleton", "from_scratch": True, "steps": 6,
                   "batch_size": 8, "warmup_steps": 1, "log_every": 1, "save_every": 2}
        return {"job": "train", "seed": 5, "task": {"type": "arith"}, "trainer": {**trainer, "threads": 1}}
    if kind == "prm":
        data = tmp / "prm.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in corrupted_examples(12)))
        trainer = {"type": "prm", "kind": "lm-head", "model": "pkg:openr_arith/models/backbone", "data": [str(data)],
                   "good_token": "good", "bad_token": "bad", "extra_layers": 1, "steps": 6, "batch_size": 4,
                   "warmup_steps": 1, "log_every": 1, "eval_every": 0, "save_every": 2}
        return {"job": "train", "seed": 5, "trainer": {**trainer, "threads": 1}}
    trainer = {"type": "grpo", "model": "pkg:openr_arith/models/policy", "reward": "outcome", "updates": 4,
               "prompts_per_update": 2, "group_size": 4, "max_tokens": 32, "lr": 0.001, "eval_every": 0,
               "save_every": 1}
    return {"job": "train", "seed": 5, "task": {"type": "arith"}, "trainer": {**trainer, "threads": 1}}


def openr(config: Path, out: Path, kill: tuple[str, int] | None = None, after: float | None = None,
          processes: int = 1, accelerate: bool = False):
    """Run ``openr run CONFIG -o OUT`` in a subprocess (with ``processes`` > 1: under torchrun, or
    ``accelerate launch`` with docs/accelerate/cpu-2.yaml), optionally killed at ``kill`` or after
    ``after`` seconds; (exit code, output)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [str(LAUNCHER), *map(str, kill or ("none", 0))]
    if processes > 1 and accelerate:
        assert processes == 2, "docs/accelerate/cpu-2.yaml starts 2 processes"
        args = [str(ACCELERATE), "launch", "--config_file", str(ACCELERATE_CONFIG), *launcher]
    elif processes > 1:
        args = [str(TORCHRUN), "--standalone", "--nproc_per_node", str(processes), *launcher]
    else:
        args = [sys.executable, *launcher]
    proc = subprocess.Popen([*args, "run", str(config), "-o", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if after is not None:
        try:
            proc.wait(after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    output = proc.communicate()[0]
    return proc.returncode, output


def finish(config: Path, out: Path, processes: int = 1, accelerate: bool = False) -> str:
    code, output = openr(config, out, processes=processes, accelerate=accelerate)
    assert code == 0, output[-3000:]
    return output


def log_lines(out: Path) -> list[dict]:
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if "seconds" not in k} for r in records]


def weights(out: Path) -> dict:
    return load_file(out / "final" / "model.safetensors")



def main() -> None:
    import openr_transformers.training as T

    where, nth = sys.argv[1], int(sys.argv[2])
    calls = [0]

    def die():
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def hit():
        calls[0] += 1
        return calls[0] == nth

    if where == "state":
        real_state = T.write_state

        def write_state(folder, state):
            real_state(folder, state)
            if hit():
                path = folder / T.STATE
                data = path.read_bytes()
                path.write_bytes(data[: len(data) // 2])
                die()

        T.write_state = write_state
    elif where == "model":
        real_model = T.save_model

        def save_model(folder, model, tokenizer=None, weights=None):
            if hit():
                model.save_pretrained(folder)
                die()
            real_model(folder, model, tokenizer, weights)

        T.save_model = save_model
    elif where == "log":
        real_write = T.RunLog.write

        def write(self, record):
            real_write(self, record)
            if self.enabled and hit():
                die()

        T.RunLog.write = write
    elif where == "spy":
        import hashlib

        real_share = T.Session.share
        out = Path(sys.argv[sys.argv.index("-o") + 1])

        def share(self, items):
            mine = real_share(self, items)
            out.mkdir(parents=True, exist_ok=True)
            with open(out / f"shares-{self.rank}.jsonl", "a") as f:
                f.write(json.dumps([hashlib.sha1(str(x).encode()).hexdigest()[:12] for x in mine]) + "\n")
            return mine

        T.Session.share = share
    from openr_core.cli import cli

    cli(sys.argv[3:])


if __name__ == "__main__":
    main()
