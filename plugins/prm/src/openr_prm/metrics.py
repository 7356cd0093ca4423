"""PRM metrics: ProcessBench first-error F1, recall per error type, step-level AUROC, response-level
accuracy (Best-of-N, PRM-weighted vote) and the BoN bias. Pure Python."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from openr_core.evaluation import REDUCERS, vote


def predict_first_error(scores: Sequence[float], threshold: float) -> int:
    """ProcessBench prediction: the first step whose score is below ``threshold``, else -1."""
    return next((i for i, s in enumerate(scores) if s < threshold), -1)


def processbench(predictions: Sequence[int], labels: Sequence[int]) -> dict:
    """Accuracy on erroneous samples (label != -1, exact index), on correct samples (label == -1),
    and F1 = their harmonic mean, as the ProcessBench paper and code define it; with the number of
    samples of each class. An accuracy over no samples is None (not measured, not 0), and so is
    the F1 when either class is empty (e.g. a ``limit`` below ProcessBench's first correct sample)."""
    erroneous = [(p, l) for p, l in zip(predictions, labels) if l != -1]
    correct = [(p, l) for p, l in zip(predictions, labels) if l == -1]
    err_acc = sum(p == l for p, l in erroneous) / len(erroneous) if erroneous else None
    cor_acc = sum(p == -1 for p, _ in correct) / len(correct) if correct else None
    if err_acc is None or cor_acc is None:
        f1 = None
    else:
        f1 = 2 * err_acc * cor_acc / (err_acc + cor_acc) if err_acc + cor_acc else 0.0
    return {"error_accuracy": err_acc, "correct_accuracy": cor_acc, "f1": f1,
            "erroneous": len(erroneous), "correct": len(correct)}


def rounded(value: float | None, digits: int = 4) -> float | None:
    """``round(value, digits)``; None (a metric over an empty class) stays None."""
    return None if value is None else round(value, digits)


def tune_threshold(scores: Sequence[Sequence[float]], labels: Sequence[int],
                   candidates: Sequence[float] | None = None) -> tuple[float | None, float | None]:
    """The threshold with the best F1 (ties: the smallest); returns (threshold, f1), both None
    when the labels lack erroneous or correct samples (no F1 to tune)."""
    if candidates is None:
        values = sorted({s for row in scores for s in row})
        # midpoints between observed scores, plus one above the top (flag everything)
        candidates = [(a + b) / 2 for a, b in zip(values, values[1:])] + ([values[-1] + 1e-6] if values else [0.5])
        if len(candidates) > 400:
            step = len(candidates) / 400
            candidates = [candidates[int(i * step)] for i in range(400)]
    if -1 not in labels or all(label == -1 for label in labels):
        return None, None
    best = (candidates[0], -1.0)
    for t in candidates:
        f1 = processbench([predict_first_error(s, t) for s in scores], labels)["f1"]
        if f1 > best[1]:
            best = (t, f1)
    return best


def auroc(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """Area under the ROC curve (probability a good step outscores a bad one; ties count half)."""
    pairs = sorted(zip(scores, positives))
    n_pos = sum(positives)
    n_neg = len(pairs) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        average_rank = (i + j + 1) / 2  # 1-based ranks i+1..j
        rank_sum += average_rank * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def best_index(group_scores: Sequence[Sequence[float]], reducer: str = "min") -> int:
    """Index of the highest-scoring solution by ``reducer``; ties: the first."""
    reduce = REDUCERS[reducer]
    return max(range(len(group_scores)), key=lambda i: (reduce(group_scores[i]), -i))


def best_of_n(groups: Sequence[Sequence[tuple[Sequence[float], bool]]], reducer: str = "min") -> float:
    """Accuracy when each group's highest-scoring solution (by ``reducer``) is chosen; ties: first."""
    if not groups:
        return 0.0
    return sum(group[best_index([s for s, _ in group], reducer)][1] for group in groups) / len(groups)


def recall_per_type(predictions: Sequence[int], labels: Sequence[int], types: Sequence[str | None],
                    names: Sequence[str] = ()) -> dict[str, dict]:
    """Per error type: ``n`` erroneous samples of that type, ``found`` of them whose first error
    is predicted at exactly the labelled step (ProcessBench's notion), ``recall`` = found / n;
    None (n/a) for a type in ``names`` with no samples. Samples without a type are left out."""
    counts = {name: [0, 0] for name in names}
    for p, label, kind in zip(predictions, labels, types):
        if label != -1 and kind is not None:
            hit = counts.setdefault(kind, [0, 0])
            hit[0] += p == label
            hit[1] += 1
    return {kind: {"recall": found / n if n else None, "found": found, "n": n} for kind, (found, n) in counts.items()}


def min_on_final_step(scores: Sequence[float]) -> bool | None:
    """Whether the final step scores strictly below every earlier step (the "Lessons" BoN bias:
    the PRM judges the answer, not the process); None for a solution of fewer than 2 steps."""
    if len(scores) < 2:
        return None
    return scores[-1] < min(scores[:-1])


def response_level(groups: Sequence[Sequence[dict]], reducer: str, same: Callable[[str, str], bool]) -> dict:
    """Response-level accuracy over ``groups`` (one per problem) of sampled solutions, each a dict
    with ``scores`` (step scores), ``answer`` (None: none stated) and ``correct``; with ``flawed``
    (a wrong step, where the task verifies steps) the share of best-of-n picks that are right
    answers reached through a wrong step is reported too.

    ``best_of_n``: the solution with the highest ``reducer`` value; ``weighted_vote``: the answer
    whose solutions' values (clipped at 0, as the search plugin's ``selection: weighted``) sum
    highest; ``majority_vote``, ``pass_at_n``: references without the PRM; ``bon_bias_all`` and
    ``bon_bias_selected``: the share of all (of the best-of-n chosen) solutions of 2 or more steps
    whose minimum step score is on the final step only (:func:`min_on_final_step`)."""

    groups = [g for g in groups if g]
    if not groups:
        return {"problems": 0}
    hits = {"best_of_n": 0, "weighted_vote": 0, "majority_vote": 0, "pass_at_n": 0}
    bias_all, bias_selected, picks_right, picks_flawed = [], [], 0, 0
    for group in groups:
        values = [REDUCERS[reducer](s["scores"]) for s in group]
        best = best_index([s["scores"] for s in group], reducer)
        answers = [s["answer"] for s in group]
        weighted = vote(answers, same, [max(v, 0.0) if math.isfinite(v) else 0.0 for v in values])
        majority = vote(answers, same)
        hits["best_of_n"] += group[best]["correct"]
        hits["weighted_vote"] += weighted is not None and group[weighted]["correct"]
        hits["majority_vote"] += majority is not None and group[majority]["correct"]
        hits["pass_at_n"] += any(s["correct"] for s in group)
        bias_all += [b for b in (min_on_final_step(s["scores"]) for s in group) if b is not None]
        bias_selected += [b for b in [min_on_final_step(group[best]["scores"])] if b is not None]
        if group[best]["correct"] and group[best].get("flawed") is not None:
            picks_right += 1
            picks_flawed += group[best]["flawed"]
    out: dict = {key: value / len(groups) for key, value in hits.items()}
    out["bon_bias_all"] = sum(bias_all) / len(bias_all) if bias_all else None
    out["bon_bias_selected"] = sum(bias_selected) / len(bias_selected) if bias_selected else None
    if any(s.get("flawed") is not None for g in groups for s in g):
        out["bon_right_but_flawed"] = picks_flawed / picks_right if picks_right else None
    out["problems"] = len(groups)
    out["samples"] = sum(len(g) for g in groups)
    return out
