"""What a run folder holds, as the JSON the report page draws.

The job named in ``config.yaml`` picks the sections: ``search`` (accuracy vs generated tokens,
recorded trees), ``eval-prm`` (F1 per subset, first-error confusion, recall per error type),
``label`` (per-step labels and MC values); any ``train_log.jsonl`` gives curves and any other
``summary.json`` a table, so every job kind gets a page.

Files are read, never repaired: a run still writing its JSONL may have a half line at the end,
which is skipped here (``JsonlResults`` would truncate it, and the report must not touch what
the run owns).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from openr_core.errors import ConfigError, DataError
from openr_core.jsonl import iter_lines, read_bytes

MAX_EXAMPLES = 200  # label examples shown
MAX_POSITION = 10  # first-error positions at or past this share one confusion row/column
X_KEYS = ("update", "step", "rollouts", "epoch")


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSONL file (the one reader, ``openr_core.jsonl``); a last line without its
    newline (a run mid-write) is skipped."""
    raw = read_bytes(path)
    return [record for _, record in iter_lines(raw[: raw.rfind(b"\n") + 1], path)]


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON: {e}") from None


def collect(run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise ConfigError(f"{run_dir}: no config.yaml here, so not an openr run folder")
    config_text = config_path.read_text(encoding="utf-8", errors="replace")
    try:
        config = yaml.safe_load(config_text) or {}
    except yaml.YAMLError as e:
        raise DataError(f"{config_path}: not valid YAML: {e}") from None
    job = config.get("job", "") if isinstance(config, dict) else ""
    summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else None
    sections: list[dict] = []
    if job == "search" and summary:
        sections.append(search_section(run_dir, summary))
    elif job == "eval-prm" and summary:
        sections.append(eval_prm_section(run_dir, summary))
    elif job == "label" and (run_dir / "labels.jsonl").is_file():
        sections.append(label_section(run_dir, summary))
    elif summary is not None:
        sections.append({"kind": "summary", "summary": summary})
    curves = curve_section(run_dir)
    if curves:
        sections.append(curves)
    return {"title": run_dir.resolve().name, "job": job, "config": config_text, "sections": sections}


def search_section(run_dir: Path, summary: dict) -> dict:
    trees = {}
    for row in summary.get("searchers", []):
        path = run_dir / "trees" / f"{row['searcher']}.jsonl"
        if path.is_file():
            trees[row["searcher"]] = read_jsonl(path)
    return {"kind": "search", "split": summary.get("split"), "problems": summary.get("problems"),
            "searchers": summary.get("searchers", []), "trees": trees}


def _position(i: int) -> str:
    return "none" if i < 0 else f"{MAX_POSITION}+" if i >= MAX_POSITION else str(i)


def eval_prm_section(run_dir: Path, summary: dict) -> dict:
    from openr_prm.metrics import predict_first_error

    threshold = summary.get("threshold", 0.5)
    records = read_jsonl(run_dir / "results.jsonl") if (run_dir / "results.jsonl").is_file() else []
    confusion: dict[str, dict[str, dict[str, int]]] = {}  # subset -> labelled -> predicted -> count
    for r in records:
        label, predicted = r["first_error"], predict_first_error(r["scores"], threshold)
        cell = confusion.setdefault(r["subset"], {}).setdefault(_position(label), {})
        cell[_position(predicted)] = cell.get(_position(predicted), 0) + 1
    positions = ["none"] + [str(i) for i in range(MAX_POSITION)] + [f"{MAX_POSITION}+"]
    used = {p for rows in confusion.values() for lab, cols in rows.items() for p in [lab, *cols]}
    subsets = summary.get("subsets", [])
    error_types = [{"subset": row.get("subset"), "type": kind, **value}
                   for row in subsets for kind, value in (row.get("error_types") or {}).items()]
    return {"kind": "eval-prm", "threshold": threshold, "average_f1": summary.get("average_f1"),
            "tuned": summary.get("tuned"), "subsets": [{k: v for k, v in row.items() if k != "error_types"} for row in subsets],
            "positions": [p for p in positions if p in used], "confusion": confusion,
            "error_types": error_types, "response_level": summary.get("response_level")}


def label_section(run_dir: Path, summary: dict | None) -> dict:
    records = read_jsonl(run_dir / "labels.jsonl")
    return {"kind": "label", "summary": summary, "total": len(records),
            "examples": [{k: r.get(k) for k in ("id", "prompt", "completions", "labels", "soft_labels")}
                         for r in records[:MAX_EXAMPLES]]}


def curve_section(run_dir: Path) -> dict | None:
    """Every numeric field of every ``train_log.jsonl`` (the folder or one level down) against
    the first of update/step/rollouts/epoch the line has; lines with none of them are skipped
    (a log without any is drawn against line numbers)."""
    series: dict[str, dict[str, list]] = {}
    for path in sorted([*run_dir.glob("train_log.jsonl"), *run_dir.glob("*/train_log.jsonl")]):
        name = str(path.parent.relative_to(run_dir)) if path.parent != run_dir else ""
        lines = read_jsonl(path)
        stepped = any(isinstance(r.get(k), (int, float)) for r in lines for k in X_KEYS)
        for n, record in enumerate(lines):
            x_key = next((k for k in X_KEYS if isinstance(record.get(k), (int, float))), None)
            if stepped and x_key is None:  # a header line (data statistics), not a point of a curve
                continue
            x = record[x_key] if x_key else n
            for key, value in record.items():
                if key in X_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                metric = f"{name}/{key}" if name else key
                entry = series.setdefault(metric, {"x": x_key or "line", "points": []})
                entry["points"].append([x, value])
    return {"kind": "curves", "series": series} if series else None
