"""Monte-Carlo tree search over solution steps, batched across problems.

Each simulation, for every open problem: select a leaf from the root by PUCT
(``Q + c_puct * P * sqrt(N_parent) / (1 + N_child)``), expand it into ``expansions`` one-step
children (one generator call for all problems), value every child with the reward model (one
call; the path's reduced step scores, so a terminal child is graded on its whole solution),
and back the best child's value up to the root (the expanded node and every ancestor:
N += 1, W += value; each new child starts with N = 1, W = its own value). Backing up the best
child, not every child, keeps a node with one good continuation from looking worse than its
unexpanded siblings, so the search goes deep instead of wide. A selected terminal leaf is
re-valued without generation. Progressive widening: a node whose children all
score below ``widen_below`` is expanded again (fresh samples, up to ``max_expansions`` times)
instead of descending into children the reward model rejects. A problem stops when its generated tokens reach
``n`` times the expected solution length (the same "n full-solution equivalents" budget as the
other searchers): the mean length of the complete solutions it has found, or, while none has
finished, its deepest partial path; or after ``max_simulations``, or when its tree is exhausted. The answer is read from the most-visited path (``final: visits``)
or from the highest-valued terminal node (``final: value``).
"""

from __future__ import annotations

import math
from typing import Literal

import attrs

from openr_core import SearchResult, Searcher, Solution
from openr_core.config import number
from openr_search.common import Path, Round, SearchConfig


@attrs.frozen
class MCTSConfig(SearchConfig):
    """See the module docstring; ``prior: policy`` uses softmax of the children's mean token log-prob."""

    expansions: int = 4
    widen_below: float | None = 0.5
    max_expansions: int = 4
    c_puct: float = number(1.0, minimum=0)
    prior: Literal["uniform", "policy"] = "uniform"
    final: Literal["visits", "value"] = "visits"
    max_simulations: int = 64


@attrs.define(eq=False)
class Node:
    path: Path
    parent: Node | None = None
    prior: float = 1.0
    visits: int = 0
    value_sum: float = 0.0
    children: list[Node] = attrs.field(factory=list)
    expansions: int = 0

    @property
    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0

    @property
    def terminal(self) -> bool:
        return self.path.done


def puct_child(node: Node, c_puct: float) -> Node:
    """The child with the highest PUCT score (ties: the earlier child)."""
    sqrt_n = math.sqrt(max(1, node.visits))
    return max(node.children, key=lambda ch: ch.q + c_puct * ch.prior * sqrt_n / (1 + ch.visits))


def select_leaf(root: Node, c_puct: float, widen_below: float | None = None, max_expansions: int = 1,
                reducer: str = "min") -> Node:
    """Descend by PUCT to a node to expand: a leaf, or a node whose children all look wrong."""
    node = root
    while node.children:
        if (widen_below is not None and node.expansions < max_expansions
                and max(ch.path.value(reducer) for ch in node.children) < widen_below):
            return node
        node = puct_child(node, c_puct)
    return node


def backup(node: Node | None, value: float) -> None:
    while node is not None:
        node.visits += 1
        node.value_sum += value
        node = node.parent


def walk(root: Node) -> list[Node]:
    """Every node of the tree, depth first, parents before children."""
    out, stack = [], [root]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node.children))
    return out


def terminals(root: Node) -> list[Node]:
    return [node for node in walk(root) if node.terminal]


def exhausted(node: Node) -> bool:
    if not node.children:
        return node.terminal
    return all(exhausted(ch) for ch in node.children)


def final_node(root: Node, how: str, reducer: str) -> Node | None:
    done = terminals(root)
    if not done:
        return None
    if how == "visits":
        node = root
        while node.children:
            node = max(node.children, key=lambda ch: (ch.visits, ch.q))
        if node.terminal:
            return node
    return max(done, key=lambda n: n.path.value(reducer))


def expected_solution_tokens(root: Node, max_tokens: int) -> float:
    """A solution's expected length: the mean of the finished ones; with none finished, the
    deepest partial path (a solution through it is at least that long); before anything is
    generated, ``max_tokens``."""
    done = terminals(root)
    if done:
        return sum(n.path.tokens for n in done) / len(done)
    deepest, stack = 0, [root]
    while stack:
        node = stack.pop()
        deepest = max(deepest, node.path.tokens)
        stack.extend(node.children)
    return deepest or max_tokens


class MCTS(Searcher):
    """MCTS: PUCT selection, k-step expansion, PRM leaf values, backup to the root."""

    Config = MCTSConfig

    def search(self, problems, *, task, generator, reward_model=None) -> list[SearchResult]:
        c = self.config
        if reward_model is None:
            raise ValueError("mcts needs a reward_model")
        rnd = Round(problems, task, generator, reward_model, c)
        roots = [Node(Path(i, [])) for i in range(len(problems))]
        open_problems = set(range(len(problems)))
        simulations = [0] * len(problems)
        while open_problems:
            leaves = []
            for i in sorted(open_problems):
                leaf = select_leaf(roots[i], c.c_puct, c.widen_below, c.max_expansions, c.reducer)
                simulations[i] += 1
                if leaf.terminal:
                    backup(leaf, leaf.path.value(c.reducer))
                else:
                    leaves.append(leaf)
            expanded = rnd.expand([leaf.path for leaf in leaves], c.expansions, [f"x{leaf.expansions}" for leaf in leaves],
                                  logprobs=c.prior == "policy")
            kids_of = []
            for leaf, kids in zip(leaves, expanded):
                unique = {tuple(ch.path.steps): None for ch in leaf.children}
                fresh = []
                for kid in kids:
                    if tuple(kid.steps) not in unique:
                        unique[tuple(kid.steps)] = None
                        fresh.append(kid)
                kids_of.append(fresh)
                leaf.expansions += 1
            rnd.score([kid for kids in kids_of for kid in kids])
            for leaf, kids in zip(leaves, kids_of):
                new = [Node(kid, leaf, visits=1, value_sum=kid.value(c.reducer)) for kid in kids]
                leaf.children += new
                for child, prior in zip(leaf.children, self._priors([ch.path for ch in leaf.children])):
                    child.prior = prior
                if new:
                    backup(leaf, max(child.q for child in new))
            for i in list(open_problems):
                if self._budget_spent(roots[i], rnd.budgets[i].generated_tokens) or simulations[i] >= c.max_simulations \
                        or exhausted(roots[i]):
                    open_problems.discard(i)
        out = []
        for i, problem in enumerate(problems):
            if rnd.recorder is not None:
                for node in walk(roots[i]):
                    rnd.note(i, node.path.steps, visits=node.visits, q=node.q)
            done = terminals(roots[i])
            best = final_node(roots[i], c.final, c.reducer)
            sols = [Solution(problem.id, tuple(n.path.steps), task.extract_answer(task.join_steps(n.path.steps)),
                             n.path.tokens, True) for n in done]
            chosen = sols[done.index(best)] if best is not None else None
            out.append(SearchResult(problem.id, chosen.answer if chosen else None, chosen, sols, rnd.budgets[i],
                                    {"simulations": simulations[i], "root_visits": roots[i].visits,
                                     "values": [n.path.value(c.reducer) for n in done]}))
        return out

    def _budget_spent(self, root: Node, tokens: int) -> bool:
        return tokens >= self.config.n * expected_solution_tokens(root, self.config.max_tokens)

    def _priors(self, kids: list[Path]) -> list[float]:
        if self.config.prior == "policy":
            logits = [k.logprob for k in kids]
            top = max(logits)
            weights = [math.exp(x - top) for x in logits]
            return [w / sum(weights) for w in weights]
        return [1.0 / len(kids)] * len(kids)
