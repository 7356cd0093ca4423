"""One self-contained HTML file: the page, its CSS and JS, and the run's data inline.

No CDN, no fonts, no chart library: the page draws its charts as SVG with ~60 lines of its own
JS (assets/report.js), so it opens offline, from a mail attachment or a cluster's file share.
"""

from __future__ import annotations

import json
import math
from importlib.resources import files
from pathlib import Path
from typing import Any

from openr_core.runs import write_atomically
from openr_report.collect import collect


def finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null (JSON.parse rejects them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def render(data: dict) -> str:
    assets = files("openr_report") / "assets"
    payload = json.dumps(finite(data), ensure_ascii=False).replace("<", "\\u003c")  # no "</script>" inside
    title = "".join(c for c in data["title"] if c.isalnum() or c in "-_.@ ")
    return (assets / "report.html").read_text(encoding="utf-8") \
        .replace("{{title}}", title) \
        .replace("/*{{css}}*/", (assets / "report.css").read_text(encoding="utf-8")) \
        .replace("/*{{js}}*/", (assets / "report.js").read_text(encoding="utf-8")) \
        .replace("{{data}}", payload)


def write_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path."""
    html = render(collect(run_dir))
    path = Path(run_dir) / "report.html"
    write_atomically(path, html)  # a read-only or full disk: one line
    return path
