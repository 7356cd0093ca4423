"""`openr report`: the page of a real search run, opened in headless Chromium; eval-prm, label
and training folders in the formats those jobs write."""

import json

import pytest
from click.testing import CliRunner

from openr_core.cli import cli

SEARCH = {
    "job": "search", "split": "test", "limit": 3, "batch_size": 3, "trees": 2, "plot": False,
    "task": {"type": "arith"},
    "generator": {"type": "transformers", "model": "pkg:openr_arith/models/policy"},
    "reward_model": {"type": "arith-oracle"},
    "searchers": [{"type": "greedy"}, {"type": "beam", "n": 4, "width": 2}, {"type": "mcts", "n": 4, "expansions": 2}],
}


def openr(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    config = folder / "search.yaml"
    config.write_text(json.dumps(SEARCH))
    result = openr("run", config, "-o", folder / "run")
    assert result.exit_code == 0, result.output
    result = openr("report", folder / "run")
    assert result.exit_code == 0, result.output
    return folder / "run"


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_search_trees_are_recorded_only_for_the_first_problems(search_run):
    trees = records(search_run / "trees" / "beam@4.jsonl")
    assert [t["id"] for t in trees] == ["arith-test-0", "arith-test-1"]  # trees: 2 of 3 problems
    results = {r["id"]: r for r in records(search_run / "results" / "beam@4.jsonl")}
    for tree in trees:
        chosen = sorted((n for n in tree["nodes"] if n["chosen"]), key=lambda n: n["depth"])
        assert [n["step"] for n in chosen[1:]] == results[tree["id"]]["solution"]
        assert tree["correct"] == results[tree["id"]]["correct"]
        for n in tree["nodes"][1:]:  # arith verifies every step
            assert isinstance(n["step_correct"], bool) and isinstance(n["score"], float)


def test_search_page_in_chromium_shows_the_tree_expands_nodes_and_marks_the_chosen_path(search_run, open_report, browser):
    page = open_report(search_run / "report.html")
    assert [r for r in browser.requests if not r.startswith("file://")] == []  # self-contained: nothing fetched
    assert page.locator("#search table tr").count() == 1 + 3  # header + three searchers
    assert page.locator("#search svg circle").count() == 3  # accuracy vs tokens, one point each

    page.select_option("#pick-searcher", "beam@4")
    tree = records(search_run / "trees" / "beam@4.jsonl")[0]
    solution = records(search_run / "results" / "beam@4.jsonl")[0]["solution"]
    # the chosen path starts open and is marked, root to leaf
    chosen = page.locator("li.node.chosen")
    assert chosen.count() == len(solution) + 1
    assert [chosen.nth(i).locator(":scope > .row .step").inner_text() for i in range(1, chosen.count())] == solution
    assert page.locator("li.chosen .chosen-mark").count() == len(solution) + 1

    # a collapsed node with children: its children appear only when it is expanded
    counts = {}
    for n in tree["nodes"]:
        counts[n["parent"]] = counts.get(n["parent"], 0) + 1
    closed = next(n for n in tree["nodes"] if counts.get(n["id"]) and not n["chosen"] and n["depth"] == 1)
    node = page.locator(f"li.node[data-id='{closed['id']}']")  # beam width 2: a second path was expanded
    assert node.locator(":scope > ul.children > li:visible").count() == 0
    node.locator(":scope > .row .toggle").click()
    kids = node.locator(":scope > ul.children > li")
    assert kids.count() == counts[closed["id"]]
    expected = sorted(n["step"] for n in tree["nodes"] if n["parent"] == closed["id"])
    assert sorted(kids.nth(i).locator(":scope > .row .step").inner_text() for i in range(kids.count())) == expected
    node.locator(":scope > .row .toggle").click()
    assert node.locator(":scope > ul.children > li:visible").count() == 0

    page.select_option("#pick-searcher", "mcts@4")
    root = page.locator("li.node[data-depth='0'] > .row .stat").first.inner_text()
    mcts_root = records(search_run / "trees" / "mcts@4.jsonl")[0]["nodes"][0]
    assert f"N {mcts_root['visits']}" in root


def write_run(folder, job, summary=None, files=None):
    folder.mkdir()
    (folder / "config.yaml").write_text(f"job: {job}\nseed: 0\n")
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))
    for name, rows in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_eval_prm_page_shows_f1_and_the_first_error_confusion(tmp_path, open_report):
    # threshold .5: predicted first error = first step scoring below .5
    rows = [{"id": "gsm8k/a/0", "subset": "gsm8k", "scores": [0.9, 0.2, 0.8], "first_error": 1, "error_type": "calc"},  # pred 1
            {"id": "gsm8k/b/1", "subset": "gsm8k", "scores": [0.9, 0.9], "first_error": -1},                         # pred none
            {"id": "gsm8k/c/2", "subset": "gsm8k", "scores": [0.3], "first_error": -1},                               # pred 0
            {"id": "gsm8k/d/3", "subset": "gsm8k", "scores": [0.9, 0.9, 0.1], "first_error": 0, "error_type": "calc"}]  # pred 2
    summary = {"threshold": 0.5, "average_f1": 0.5, "subsets": [
        {"subset": "gsm8k", "erroneous": 2, "correct": 2, "error_accuracy": 0.5, "correct_accuracy": 0.5, "f1": 0.5,
         "step_auroc": float("nan"), "error_types": {"calc": {"recall": 0.5, "found": 1, "n": 2},
                                                     "copy": {"recall": None, "found": 0, "n": 0}}}],
        "response_level": {"split": "test", "reducer": "min", "best_of_n": 0.25, "weighted_vote": 0.75,
                           "majority_vote": 0.5, "pass_at_n": 1.0, "bon_bias_all": 0.125, "bon_bias_selected": None,
                           "problems": 4, "samples": 32}}
    run = write_run(tmp_path / "eval", "eval-prm", summary, {"results.jsonl": rows})
    (run / "summary.json").write_text(json.dumps(summary))  # NaN as Python writes it
    assert openr("report", run).exit_code == 0
    page = open_report(run / "report.html")
    cells = page.eval_on_selector_all("table.confusion tr", "rows => rows.map(r => [...r.children].map(c => c.textContent))")
    assert cells == [["label \\ pred", "none", "0", "1", "2"],
                     ["none", "1", "1", "", ""], ["0", "", "", "", "1"], ["1", "", "", "1", ""]]
    assert "n/a" in page.locator("#eval-prm table").first.inner_text()  # NaN AUROC shown as n/a
    assert "error_types" not in page.locator("#eval-prm table").first.inner_text()
    recall = page.locator("#eval-prm table").nth(-2).inner_text().splitlines()
    assert [line.split() for line in recall[1:]] == [["gsm8k", "calc", "0.500", "2"], ["gsm8k", "copy", "n/a", "0"]]
    response = page.locator("#eval-prm table").last.inner_text()
    assert "weighted_vote" in response and "0.750" in response and "bon_bias_selected" in response


def test_label_and_training_pages(tmp_path, open_report):
    labels = [{"id": "p0/0", "prompt": "Q?\n", "completions": ["s1", "s2"], "labels": [True, False], "soft_labels": [0.75, 0.0]}]
    run = write_run(tmp_path / "label", "label", {"examples": 1}, {"labels.jsonl": labels})
    assert openr("report", run).exit_code == 0
    page = open_report(run / "report.html")
    steps = page.locator("#label li span")
    assert [steps.nth(i).get_attribute("class") for i in range(2)] == ["good", "wrong"]
    assert steps.nth(0).get_attribute("title") == "MC value 0.750"

    log = [{"train_examples": 340}, {"update": 1, "loss": 2.0}, {"update": 2, "loss": 1.0}, {"update": 2, "rollouts": 64, "greedy_accuracy": 0.5}]
    run = write_run(tmp_path / "grpo", "train", None, {"train_log.jsonl": log})
    (run / "train_log.jsonl").write_text((run / "train_log.jsonl").read_text() + '{"update": 3, "lo')  # mid-write
    assert openr("report", run).exit_code == 0
    page = open_report(run / "report.html")
    assert page.locator("#curves svg").count() == 2  # loss, greedy_accuracy
    assert page.locator("#curves svg").first.locator("circle").count() == 2


def test_bad_folders_get_one_line(tmp_path):
    result = openr("report", tmp_path)
    assert result.exit_code == 2 and "no config.yaml" in result.output and "Traceback" not in result.output
    run = write_run(tmp_path / "broken", "label", None, {})
    (run / "labels.jsonl").write_text('{"id": 1}\nnot json\n')
    result = openr("report", run)
    assert result.exit_code == 1 and "labels.jsonl:2: invalid JSON" in result.output


def test_a_report_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    import errno

    import openr_core.runs as runs

    run = write_run(tmp_path / "run", "label", None, {})
    (run / "labels.jsonl").write_text("")

    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(runs.os, "replace", read_only)
    result = openr("report", run)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == (f"openr: error: {run / 'report.html'}: cannot write: Read-only file system; what was "
                                     "written before is kept (free space or fix permissions, then run the same command "
                                     "again to resume)")
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "labels.jsonl"]  # no report.html.tmp left
