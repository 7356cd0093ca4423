"""MCTS's token budget where the PRM rejects most paths: arith ``ood`` problems, implicit PRM.

Prints accuracy and generated tokens per problem for best-of-16, mcts@16, and mcts@16 with the
stopping rule from before issue 19 (no stop until a solution has finished).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mcts_budget.py [--problems 60]
"""

from __future__ import annotations

import argparse

from openr_core import get_component
from openr_search import mcts as M


def stop_only_after_a_finished_solution(self, root, tokens):
    done = M.terminals(root)
    return bool(done) and tokens >= self.config.n * sum(n.path.tokens for n in done) / len(done)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=60)
    args = parser.parse_args()
    task = get_component("task", "arith")
    problems = task.load("ood", args.problems)
    generator = get_component("generator", "transformers", model="pkg:openr_arith/models/policy", threads=1)
    prm = get_component("reward_model", "implicit-prm", model="pkg:openr_arith/models/backbone",
                        reference="pkg:openr_arith/models/policy", beta=0.05, threads=1)

    def report(name, results):
        tokens = [r.budget.generated_tokens for r in results]
        right = sum(r.answer is not None and task.answers_match(p, r.answer) for p, r in zip(problems, results))
        print(f"{name:<26} accuracy {right / len(results):.3f}  tokens/problem {sum(tokens) / len(tokens):.1f}  "
              f"max {max(tokens)}  no answer {sum(r.answer is None for r in results)}", flush=True)

    report("best-of-n@16", get_component("searcher", "best-of-n", n=16).search(
        problems, task=task, generator=generator, reward_model=prm))
    mcts = M.MCTS(n=16, expansions=4, widen_below=-0.1)
    report("mcts@16", mcts.search(problems, task=task, generator=generator, reward_model=prm))
    M.MCTS._budget_spent = stop_only_after_a_finished_solution
    report("mcts@16, rule before #19", mcts.search(problems, task=task, generator=generator, reward_model=prm))


if __name__ == "__main__":
    main()
