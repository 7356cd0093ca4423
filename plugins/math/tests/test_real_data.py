"""The grader and the tasks against the real data in shared/data (see openr_math.checks)."""

import pytest

from openr_math import checks


def test_answer_equivalence_with_each_cases_options(shared_data, grader):
    report = checks.answer_equivalence(shared_data, "case", grader)
    assert report.total == 285
    assert report.rate >= 0.97, report.disagreements
    # every disagreement is a reviewed, documented design difference
    assert {d["id"] for d in report.disagreements} <= set(checks.KNOWN_REASONS), report.disagreements


def test_answer_equivalence_with_one_fixed_setting(shared_data, grader):
    report = checks.answer_equivalence(shared_data, "default", grader)
    assert report.total == 285
    assert report.rate >= 0.95, report.disagreements
    # each disagreement is a case that asked for non-default settings, or a reviewed one
    assert all(d["reason"] != "not reviewed" for d in report.disagreements), report.disagreements


@pytest.mark.parametrize("source", ["pred", "response"])
def test_best_of_n_matches_the_recorded_numbers(shared_data, source):
    report = checks.best_of_n(shared_data, source)
    assert report.problems == 100
    # the file's own numbers, recomputed from its `score` field: as its README records them
    assert report.recorded_metrics == pytest.approx(checks.RECORDED)
    for name, recorded in checks.RECORDED.items():
        assert abs(report.metrics[name] - recorded) <= 0.01 + 1e-9, (name, report.metrics)
    # per sample, our grader agrees with the recorded verdicts almost everywhere
    assert report.sample_disagreements <= 8, report.examples


@pytest.mark.parametrize("spec", checks.BENCHMARKS, ids=lambda s: s[1])
def test_benchmark_files_load_and_gold_answers_parse(shared_data, grader, spec):
    report = checks.benchmark(shared_data, *spec, grader=grader)
    assert report.loaded == report.expected == report.unique_ids
    unparsed = {(report.file, pid) for pid, _ in report.unparsed}
    assert unparsed <= set(checks.KNOWN_UNPARSED), sorted(unparsed - set(checks.KNOWN_UNPARSED))
    assert {(report.file, pid) for pid in report.no_gold} <= checks.KNOWN_NO_GOLD
