"""HRM's training data: hierarchical node compression (Wang et al. 2025, arXiv 2503.13551).

A hierarchical reward model is trained on single steps *and* on two consecutive steps merged
into one node, labelled with the second step's label: the merged node asks "is the reasoning
right after these two steps?", so a step that repairs the one before it can be judged as a
unit. The paper's HNC augmentation merges one node's last two steps (with probability 0.5,
once per parent) and trains on the union of the original and the compressed trees.

Here, on stepwise examples (a PRM reads every step's tag in one pass): :func:`compress` keeps
every example and adds, for a ``rate`` fraction of those with at least two steps, a copy in
which one consecutive pair (drawn uniformly) is one node. Scoring is unchanged: at inference
HRM scores each new step in the context of the steps before it, as a PRM does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from openr_core.types import LabelledExample


def merge_pair(example: LabelledExample, i: int, join: str = "\n") -> LabelledExample:
    """``example`` with steps ``i`` and ``i + 1`` written as one node (``join`` between them),
    which takes step ``i + 1``'s hard and soft labels."""
    n = len(example.completions)
    if not 0 <= i < n - 1:
        raise ValueError(f"merge_pair: no consecutive pair at {i} in {n} steps")
    steps = list(example.completions)
    merged = steps[:i] + [steps[i] + join + steps[i + 1]] + steps[i + 2:]
    labels = list(example.labels[:i]) + list(example.labels[i + 1:])
    soft = None if example.soft_labels is None else list(example.soft_labels[:i]) + list(example.soft_labels[i + 1:])
    return LabelledExample(example.prompt, merged, labels, soft, example.problem_id,
                           {**example.meta, "merged_pair": i})


def compress(examples: Sequence[LabelledExample], rate: float, join: str = "\n", seed: int = 0) -> list[LabelledExample]:
    """``examples`` followed by one merged copy (:func:`merge_pair`, pair drawn uniformly) of
    each example with two or more steps, kept with probability ``rate``; the same (examples,
    rate, seed) always give the same copies."""
    rng = random.Random(seed)
    copies = []
    for example in examples:
        n = len(example.completions)
        if n < 2:
            continue
        keep, pair = rng.random() < rate, rng.randrange(n - 1)  # both drawn always: order-stable
        if keep:
            copies.append(merge_pair(example, pair, join))
    return [*examples, *copies]
