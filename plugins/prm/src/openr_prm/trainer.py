"""The `prm` trainer: LM-head, classifier, outcome and implicit PRMs on stepwise data.

TRL no longer ships PRMTrainer, so this is our own loop on torch + accelerate (see
docs/prm.md). The loss is read at exactly the positions inference reads scores from
(:meth:`openr_prm.heads.Head.raw`), which removes the label/logit off-by-one.
"""

from __future__ import annotations

from typing import Literal

import attrs

from openr_core import Trainer
from openr_core.config import count, number
from openr_prm.data import Format
from openr_transformers.training import TrainingConfig


@attrs.frozen(kw_only=True)
class PRMTrainerConfig(TrainingConfig):
    """Data: ``data`` files in ``format``, or (when empty) the run's labeler applied to
    ``problems`` problems of the task's ``split`` with the run's generator; ``dev_data`` files
    (same format) for the dev metrics when training from files.

    ``augment``: the fraction of every batch made of perturbed copies of the training set's
    correct solutions (one number of one step replaced by another in ``augment_range``,
    labelled by the task's ``verify_steps``; needs a ``task:``). The new number lies at most
    ``augment_delta_start`` from the old one at the first step, moving linearly to
    ``augment_delta_end`` at the last (null: anywhere in the range): far errors first, near
    misses later.

    ``augment_corrupt``: this fraction of the perturbed copies are instead the task's consistent
    corruptions of the problem (:meth:`openr_core.interfaces.Task.corrupted_solution`; arith: a
    wrong start, carried value, operand or operation, a skipped operation or an early answer,
    every step computing what it writes), labelled by the verifier; ``aux_weight`` applies to them too.

    ``augment_labels``: ``verifier`` (the task's ``verify_steps`` labels each copy as drawn) or
    ``labeler``: a pool of ``augment_pool`` copies (drawn once, uniform in ``augment_range``)
    labelled by the job's labeller, e.g. MC rollouts, so no verifier label enters training.

    ``base_lr``: learning rate of the base model's own parameters when ``extra_layers`` are
    added (None: ``lr``; 0: the base, embeddings included, stays frozen and only the new
    layers train).

    ``tag_init``: when the step tag / separator is new to the vocabulary, start its embedding as
    a copy of this token's (``join``: the token of the text between steps), not the mean
    embedding. A base model has never seen the new token between steps; on arith, a mean-
    embedding tag inside the solution wrecks the backbone's computation of later steps (log
    p(result) as a step score falls from AUROC 0.98 to 0.60), a copy of the newline's keeps it
    (0.975).

    ``route_token``: with ``extra_layers``, start the first added layer's heads attending from
    each step tag to the nearest ``route_token`` ``route_offset`` positions back and copying its
    state (gain ``route_gain``; ``route_scale`` sets how sharp): the read position gets the
    computation finished there from step 0 (:func:`openr_prm.train_loop.route_heads`).

    ``route_back``: offsets (tokens before each step tag) that the second added layer's heads start
    reading, one per head, cycling (needs ``route_token``): on arith ``[4, 5, 6, 6]`` reads where
    the backbone predicts the step's operand, operator and start. That layer's output starts at
    zero, so it starts as the identity.

    ``route_lr``: learning rate of the routed layers' queries and keys, i.e. their attention
    patterns (None: ``lr``; 0: frozen, so training cannot undo the routing; values and output
    still train).

    ``aux_weight`` (lm-head): weight of an auxiliary cross-entropy over the whole vocabulary at
    the tag of each step a perturbed copy changed (``augment``), with the first token where the
    gold step it replaced differs from the written one as the target (in arith, the correct
    result; for ``augment_corrupt`` copies the correct start, operator or operand). The written number is wrong
    there, so the tag must read what the model computed for the step; elsewhere no target
    (at a correct step, copying the written number would be a shortcut).

    ``hrm_merge``: HRM's hierarchical node compression (:mod:`openr_prm.hierarchical`): this
    fraction of the training solutions with two or more steps also enter training as a copy
    with one consecutive pair of steps merged into one node (``join`` between them), labelled
    with the second step's label (0: off; the paper merges with probability 0.5).
    """

    model: str
    kind: Literal["lm-head", "classifier", "outcome", "implicit"] = "lm-head"
    reference: str | None = None
    data: tuple[str, ...] = ()
    dev_data: tuple[str, ...] = ()
    format: Format = "openr"
    split: str = "train"
    problems: int = count(2000)
    dev_split: str = "dev"
    dev_problems: int = count(200, minimum=0)
    steps: int = count(500)
    batch_size: int = count(32)
    soft_labels: bool = False
    steps_after_first_error: bool = True
    prompt_template: str = "{question}\n"
    join: str = "\n"
    step_tag: str = " ки"
    good_token: str = "+"
    bad_token: str = "-"
    separator: str = "<extra_0>"
    beta: float = 0.05
    extra_layers: int = count(0, minimum=0)
    base_lr: float | None = number(None, above=0)
    tag_init: str | None = None
    route_token: str | None = None
    route_offset: int = 2
    route_scale: float = 12.0
    route_gain: float = 1.0
    route_lr: float | None = number(None, minimum=0)
    route_back: tuple[int, ...] = ()
    aux_weight: float = 0.0
    hrm_merge: float = number(0.0, minimum=0, maximum=1)
    augment: float = attrs.field(default=0.0, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)])
    augment_range: tuple[int, int] = (0, 199)
    augment_delta_start: int | None = None
    augment_delta_end: int | None = None
    augment_corrupt: float = number(0.0, minimum=0, maximum=1)
    augment_labels: Literal["verifier", "labeler"] = "verifier"
    augment_pool: int = count(4000)
    max_length: int = count(4096)
    # shared fields (TrainingConfig) with the PRM trainer's own defaults
    lr: float = number(1e-3, above=0)
    warmup_steps: int = count(20, minimum=0)
    log_every: int = count(20)
    eval_every: int = count(100, minimum=0)
    save_every: int = count(100, minimum=0)


class PRMTrainer(Trainer):
    """Train LM-head, classifier, outcome or implicit PRMs on stepwise data (torch + accelerate)."""

    Config = PRMTrainerConfig

    def train(self, run) -> str:
        from openr_prm.train_loop import train_prm

        return train_prm(self.config, run)
