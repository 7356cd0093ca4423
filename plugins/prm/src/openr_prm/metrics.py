"""PRM metrics: ProcessBench first-error F1, step-level AUROC, Best-of-N accuracy. Pure Python."""

from __future__ import annotations

from collections.abc import Callable, Sequence


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


REDUCERS: dict[str, Callable[[Sequence[float]], float]] = {
    "min": lambda s: min(s) if s else float("-inf"),
    "last": lambda s: s[-1] if s else float("-inf"),
    "mean": lambda s: sum(s) / len(s) if s else float("-inf"),
    "product": lambda s: __import__("math").prod(s) if s else float("-inf"),
}


def best_of_n(groups: Sequence[Sequence[tuple[Sequence[float], bool]]], reducer: str = "min") -> float:
    """Accuracy when each group's highest-scoring solution (by ``reducer``) is chosen; ties: first."""
    reduce = REDUCERS[reducer]
    if not groups:
        return 0.0
    hits = 0
    for group in groups:
        best = max(range(len(group)), key=lambda i: (reduce(group[i][0]), -i))
        hits += group[best][1]
    return hits / len(groups)
