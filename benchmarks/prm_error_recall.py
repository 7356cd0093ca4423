"""Recall of an ``eval-prm`` run per error type on arith data: of the erroneous samples whose
first error is of each type, how many the PRM flags at exactly that step (ProcessBench's notion,
at the run's threshold). Reads the run's labelled data and ``results.jsonl``; no model is run.

A stop-gap until ``eval-prm`` reports recall per type itself (issue 19, i19-eval): the types
and their order of precedence follow that classifier (a wrong start value at any step, including
one carried wrongly from the step before, is "wrong start").

    .venv/bin/python benchmarks/prm_error_recall.py runs/eval-prm [more runs...]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import yaml

from openr_arith import problems as P
from openr_core.labelling import read_labels
from openr_prm.metrics import predict_first_error


def error_type(problem: P.ArithProblem, steps: list[str]) -> str | None:
    i = P.first_error(problem, steps)
    if i == -1:
        return None
    n_ops, step = len(problem.ops), steps[i]
    m = P.STEP_RE.match(step)
    if i > n_ops:
        return "malformed"
    if i == n_ops:
        return "wrong answer" if P.ANSWER_RE.match(step) else "early or missing answer" if m else "malformed"
    if P.ANSWER_RE.match(step):
        return "early or missing answer"
    if not m:
        return "malformed"
    if int(m[1]) != problem.values()[i]:
        return "wrong start"
    if (m[2], int(m[3])) != problem.ops[i]:
        return "wrong operation/operand"
    return "arithmetic"


def recall(run: Path) -> tuple[dict, float, int]:
    config = yaml.safe_load((run / "config.yaml").read_text())
    summary = json.loads((run / "summary.json").read_text())
    files = config["data"] or [run / "data" / config["split"] / "labels.jsonl"]
    if len(files) != 1:
        raise SystemExit(f"{run}: one data file expected, got {files}")
    name = summary["subsets"][0]["subset"]
    examples = read_labels([json.loads(line) for line in Path(files[0]).read_text().splitlines() if line.strip()])
    results = {}
    for line in (run / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        results[r["id"]] = r
    counts: dict[str, Counter] = {}
    correct = Counter()
    for i, e in enumerate(examples):
        r = results[f"{name}/{e.problem_id or i}/{i}"]
        assert r["first_error"] == e.first_error, (i, r["first_error"], e.first_error)
        predicted = predict_first_error(r["scores"], summary["threshold"])
        if e.first_error == -1:
            correct.update(n=1, found=predicted == -1)
            continue
        kind = error_type(P.parse_question(e.prompt), list(e.completions))
        counts.setdefault(kind, Counter()).update(n=1, found=predicted == e.first_error)
    counts["(correct samples)"] = correct
    return counts, summary["threshold"], len(examples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", type=Path)
    for run in parser.parse_args().runs:
        counts, threshold, n = recall(run)
        print(f"{run} (threshold {threshold:.4g}, {n} samples)")
        for kind, c in sorted(counts.items(), key=lambda kv: -kv[1]["n"]):
            print(f"  {kind:28} {c['found']:5} / {c['n']:5}  {c['found'] / c['n'] if c['n'] else float('nan'):.3f}")


if __name__ == "__main__":
    main()
