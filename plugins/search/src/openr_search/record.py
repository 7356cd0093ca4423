"""Search-tree recording for `openr report`: off unless a caller opens :func:`recording`.

Every :class:`~openr_search.common.Round` reports the nodes it generates and scores to the
recorder that is active when it is created, so every searcher built on ``Round`` is recorded
without code of its own. A node is a problem's step prefix: the same steps reached twice (two
DVTS subtrees, two samples) are one node. Searchers with statistics of their own (MCTS visits
and Q) add them with :meth:`Round.note`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar

from openr_core import Problem, SearchResult, Task

_active: ContextVar[TreeRecorder | None] = ContextVar("openr_search_recorder", default=None)


class TreeRecorder:
    """Nodes per problem id: ``trees[id][steps tuple] -> {field: value}``, parents first."""

    def __init__(self, problem_ids: set[str] | None = None):
        self.problem_ids = problem_ids
        self.trees: dict[str, dict[tuple[str, ...], dict]] = {}

    def node(self, problem: Problem, steps: Sequence[str], **fields) -> None:
        if self.problem_ids is not None and problem.id not in self.problem_ids:
            return
        tree = self.trees.setdefault(problem.id, {(): {}})
        steps = tuple(steps)
        for depth in range(1, len(steps)):
            tree.setdefault(steps[:depth], {})
        tree.setdefault(steps, {}).update({k: v for k, v in fields.items() if v is not None})

    def scores(self, problem: Problem, steps: Sequence[str], scores: Sequence[float]) -> None:
        """Each prefix of ``steps`` gets the score of its own last step."""
        for depth, score in enumerate(scores[: len(steps)], 1):
            self.node(problem, steps[:depth], score=float(score))


def active() -> TreeRecorder | None:
    return _active.get()


@contextlib.contextmanager
def recording(problem_ids: set[str] | None = None) -> Iterator[TreeRecorder]:
    """Record the trees of searches started inside the block (of ``problem_ids`` only, if given)."""
    recorder = TreeRecorder(problem_ids)
    token = _active.set(recorder)
    try:
        yield recorder
    finally:
        _active.reset(token)


def tree_record(task: Task, problem: Problem, result: SearchResult, nodes: dict[tuple[str, ...], dict]) -> dict:
    """The JSON record `openr report` draws: nodes with parent ids, status, chosen path, verdicts.

    ``status``: ``expanded`` (has children), ``finished`` (a complete solution) or ``dropped``
    (generated but never expanded: pruned by the searcher or left when the budget ran out).
    ``step_correct`` comes from the task's verifier where it has one; ``answer_correct`` from
    its answer check, for finished nodes.
    """
    chosen = tuple(result.solution.steps) if result.solution else None
    ids = {steps: k for k, steps in enumerate(nodes)}
    parents = {steps[:-1] for steps in nodes if steps}
    out = []
    for steps, fields in nodes.items():
        node = {"id": ids[steps], "parent": ids.get(steps[:-1]) if steps else None, "depth": len(steps),
                "step": steps[-1] if steps else problem.question, **fields}
        node["status"] = "expanded" if steps in parents else "finished" if fields.get("done") else "dropped"
        node["chosen"] = chosen is not None and chosen[: len(steps)] == steps
        verdicts = task.verify_steps(problem, steps) if steps else None
        node["step_correct"] = verdicts[-1] if verdicts and len(verdicts) == len(steps) else None
        if fields.get("done"):
            grade = task.grade(problem, task.join_steps(steps))
            node["answer"], node["answer_correct"] = grade.predicted, grade.correct
        out.append(node)
    correct = result.answer is not None and task.answers_match(problem, result.answer)
    return {"id": problem.id, "question": problem.question, "gold": problem.answer, "answer": result.answer,
            "correct": correct, "nodes": out}
