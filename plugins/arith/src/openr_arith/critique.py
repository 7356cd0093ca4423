"""Training text for a generative verifier of arith solutions, from the exact step checks.

For every step the critique restates the step, then writes it as it should read, computed
from the value the previous step wrote (the start for step 0; "answer V" for the answer line),
which is what :func:`openr_arith.problems.check_steps` compares against: "7 * 2 = 15 . 7 * 2 =
14". Restating first puts the two versions side by side, so the verdict is a comparison of
neighbouring tokens (a first version that wrote only the right step, with the written one far
back in the prompt, learned the format but always said "incorrect"). The verdict is the exact
first-error label (a step after the first wrong one is incorrect too). Critiques use only
words the sandbox tokenizer knows; the verifier's own words (``VERIFIER_TOKENS``) are added
to its vocabulary by the `sft` trainer's ``add_tokens``.

Write an SFT file from labelled solutions (e.g. a `prm` run's ``OUTPUT/data/train/labels.jsonl``)::

    python -m openr_arith.critique LABELS.jsonl [...] -o verifier-sft.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from openr_arith import problems as P
from openr_core.errors import ConfigError, DataError
from openr_core.jsonl import read_jsonl
from openr_core.labelling import first_error_labels, read_labels

TEMPLATE = "{question}\n{steps}\n"  # the generative-prm `template` of configs/arith/*genprm*.yaml
VERIFIER_TOKENS = ("step", ":", "verdict", "correct", "incorrect")


def critiques(problem: P.ArithProblem, steps: Sequence[str]) -> list[str]:
    """Per step, "<the step> . <the step as it should read given the value the step before it
    wrote>" (the step alone where that value is unreadable or the step is one too many)."""
    out, previous = [], problem.start
    for i, step in enumerate(steps):
        if i < len(problem.ops) and previous is not None:
            op, x = problem.ops[i]
            out.append(f"{step} . {previous} {op} {x} = {P.apply(previous, op, x)}")
        elif i == len(problem.ops) and previous is not None:
            out.append(f"{step} . answer {previous}")
        else:
            out.append(step)
        m = P.STEP_RE.match(step)
        previous = int(m[4]) if m else None
    return out


def sft_record(question: str, steps: Sequence[str]) -> dict:
    """{"prompt", "completion"}: the verifier's prompt and the critique-then-verdict text it should write."""
    try:
        from openr_label.genprm import prompt_text, verdict_text
    except ImportError:
        raise ConfigError("openr_arith.critique writes the generative-prm format of openr-label: "
                          "pip install 'openr-arith[critique]'") from None

    problem = P.parse_question(question)
    if problem is None:
        raise DataError(f"not an arith question: {question[:60]!r}")
    verdicts = first_error_labels(P.check_steps(problem, list(steps)))
    return {"prompt": prompt_text(TEMPLATE, question, steps), "completion": verdict_text(critiques(problem, steps), verdicts)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m openr_arith.critique", description=__doc__.split("\n\n")[0])
    parser.add_argument("labels", nargs="+", type=Path, help="labels.jsonl files (openr format)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.output.exists():
        raise SystemExit(f"{args.output}: exists (not overwritten)")
    examples = [e for path in args.labels for e in read_labels(read_jsonl(path), str(path))]
    tmp = args.output.with_suffix(args.output.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(sft_record(e.prompt, e.completions)) + "\n" for e in examples))
    tmp.replace(args.output)
    print(json.dumps({"records": len(examples), "output": str(args.output)}))


if __name__ == "__main__":
    main()
