"use strict";
// Draws the run data embedded in #data. Text from the run (steps, prompts) only ever goes
// through textContent, never innerHTML.
const DATA = JSON.parse(document.getElementById("data").textContent);
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
function fmt(v) {
  if (v === null || v === undefined) return "n/a";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 1 : 3);
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}
function tick(v) {  // 3 significant digits, exponent for very small or large magnitudes
  const r = Number(v.toPrecision(3));
  return Math.abs(r) >= 1e5 || (r !== 0 && Math.abs(r) < 1e-3) ? r.toExponential(1) : String(r);
}
function table(rows, columns) {
  const head = el("tr", {}, ...columns.map(c => el("th", {}, c)));
  return el("table", {}, head, ...rows.map(r => el("tr", {}, ...columns.map(c => el("td", {}, fmt(r[c]))))));
}

// A scatter/line chart: series = [{name, points: [[x, y], ...], line: bool}]
function chart(title, series, xLabel, yLabel, logX) {
  const W = 420, H = 260, L = 62, R = 12, T = 22, B = 38;
  const pts = series.flatMap(s => s.points).filter(p => p[1] !== null && (!logX || p[0] > 0));
  const box = svg("svg", {width: W, height: H, class: "chart", role: "img"});
  box.append(svg("text", {x: L, y: 14, "font-weight": "bold"}, title));
  if (!pts.length) return box;
  const tx = x => logX ? Math.log10(x) : x;
  let [x0, x1] = [Math.min(...pts.map(p => tx(p[0]))), Math.max(...pts.map(p => tx(p[0])))];
  let [y0, y1] = [Math.min(...pts.map(p => p[1])), Math.max(...pts.map(p => p[1]))];
  if (x0 === x1) { x0 -= 1; x1 += 1; } if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
  if (!series.every(s => s.line)) {  // room around scattered points for their labels
    const dx = (x1 - x0) * 0.08, dy = (y1 - y0) * 0.08;
    [x0, x1, y0, y1] = [x0 - dx, x1 + dx, y0 - dy, y1 + dy];
  }
  const px = x => L + (tx(x) - x0) / (x1 - x0) * (W - L - R), py = y => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  box.append(svg("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999"}), svg("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#999"}));
  for (let i = 0; i <= 4; i++) {
    const xv = x0 + (x1 - x0) * i / 4, yv = y0 + (y1 - y0) * i / 4, xs = logX ? Math.pow(10, xv) : xv;
    box.append(svg("text", {x: L + (W - L - R) * i / 4, y: H - B + 14, "text-anchor": "middle"}, tick(xs)));
    box.append(svg("text", {x: L - 4, y: py(yv) + 4, "text-anchor": "end"}, tick(yv)));
  }
  box.append(svg("text", {x: (W + L) / 2, y: H - 6, "text-anchor": "middle"}, xLabel + (logX ? " (log)" : "")));
  box.append(svg("text", {x: 12, y: (H - B + T) / 2, transform: `rotate(-90 12 ${(H - B + T) / 2})`, "text-anchor": "middle"}, yLabel));
  const colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  series.forEach((s, i) => {
    const c = colours[i % colours.length], ok = s.points.filter(p => p[1] !== null && (!logX || p[0] > 0));
    if (s.line && ok.length > 1) box.append(svg("polyline", {fill: "none", stroke: c, points: ok.map(p => `${px(p[0])},${py(p[1])}`).join(" ")}));
    for (const p of ok) box.append(svg("circle", {cx: px(p[0]), cy: py(p[1]), r: s.line ? 2 : 4, fill: c}, undefined));
    if (!s.line && ok.length) {
      const right = px(ok[0][0]) > (W + L) / 2;  // labels of points on the right go to their left
      box.append(svg("text", {x: px(ok[0][0]) + (right ? -6 : 6), y: py(ok[0][1]) - 6 - 11 * (i % 2), fill: c,
                              "text-anchor": right ? "end" : "start"}, s.name));
    }
  });
  return box;
}

// ---- search trees -------------------------------------------------------------------------
function nodeRow(node, hasKids) {
  const toggle = el("button", {class: "toggle", type: "button", "aria-label": "expand"}, hasKids ? "▸" : "·");
  if (!hasKids) toggle.disabled = true;
  const stats = [];
  if (node.score !== undefined) stats.push(`PRM ${fmt(node.score)}`);
  if (node.visits !== undefined) stats.push(`N ${node.visits}`, `Q ${fmt(node.q)}`);
  if (node.tokens !== undefined) stats.push(`${node.tokens} tok`);
  const verdict = node.step_correct === true ? el("span", {class: "ok", title: "step verified correct"}, "✓")
    : node.step_correct === false ? el("span", {class: "bad", title: "step verified wrong"}, "✗") : null;
  const answer = node.answer_correct === undefined ? null
    : el("span", {class: node.answer_correct ? "ok" : "bad"}, `answer ${node.answer ?? "none"} ${node.answer_correct ? "correct" : "wrong"}`);
  return el("div", {class: "row"}, toggle, el("span", {class: "step"}, node.step), verdict,
            el("span", {class: "stat"}, stats.join(" · ")), el("span", {class: "badge"}, node.status), answer,
            node.chosen ? el("span", {class: "badge chosen-mark"}, "chosen") : null);
}

function treeView(record) {
  const kids = {};
  for (const n of record.nodes) if (n.parent !== null) (kids[n.parent] = kids[n.parent] || []).push(n);
  function item(node) {
    const children = kids[node.id] || [];
    const li = el("li", {class: `node status-${node.status}${node.chosen ? " chosen" : ""}`, "data-id": node.id,
                         "data-children": children.length, "data-depth": node.depth});
    li.append(nodeRow(node, children.length > 0));
    const toggle = li.querySelector(".toggle");
    function setOpen(open) {
      let list = li.querySelector(":scope > ul");
      if (open && !list) {  // children are built on first expand
        list = el("ul", {class: "children"}, ...children.map(item));
        li.append(list);
      }
      if (list) list.hidden = !open;
      li.classList.toggle("open", open);
      toggle.textContent = children.length ? (open ? "▾" : "▸") : "·";
      toggle.setAttribute("aria-expanded", String(open));
    }
    toggle.addEventListener("click", () => setOpen(!li.classList.contains("open")));
    if (children.length && (node.depth === 0 || node.chosen)) setOpen(true);  // the chosen path starts open
    return li;
  }
  const root = record.nodes.find(n => n.parent === null);
  const head = el("p", {}, `problem ${record.id}: answer ${record.answer ?? "none"}, gold ${record.gold ?? "n/a"} — `,
                  el("span", {class: record.correct ? "ok" : "bad"}, record.correct ? "correct" : "wrong"),
                  ` · ${record.nodes.length} nodes`);
  return el("div", {class: "tree-box"}, head, el("ul", {class: "tree"}, item(root)));
}

function searchSection(s) {
  const out = el("section", {id: "search"}, el("h2", {}, `Search: ${s.problems} problems of split ${s.split}`));
  const cols = ["searcher", "accuracy", "pass@n", "tokens_per_problem", "generator_calls_per_problem", "prm_tokens_per_problem", "wall_seconds"];
  out.append(table(s.searchers, cols));
  out.append(chart("accuracy vs generated tokens", s.searchers.map(r => ({name: r.searcher, points: [[r.tokens_per_problem, r.accuracy]]})),
                   "generated tokens per problem", "accuracy", true));
  const labels = Object.keys(s.trees);
  if (!labels.length) {
    out.append(el("p", {}, "No search trees recorded: run the search with `trees: N` (e.g. --set trees=5) to see them here."));
    return out;
  }
  out.append(el("h2", {}, "Search trees"));
  const pickSearcher = el("select", {id: "pick-searcher"}, ...labels.map(l => el("option", {value: l}, l)));
  const pickProblem = el("select", {id: "pick-problem"});
  const view = el("div", {id: "tree-view"});
  function fillProblems() {
    pickProblem.replaceChildren(...s.trees[pickSearcher.value].map((r, i) => el("option", {value: i}, `${r.id} ${r.correct ? "✓" : "✗"}`)));
  }
  function draw() { view.replaceChildren(treeView(s.trees[pickSearcher.value][Number(pickProblem.value || 0)])); }
  pickSearcher.addEventListener("change", () => { fillProblems(); draw(); });
  pickProblem.addEventListener("change", draw);
  out.append(el("div", {class: "controls"}, "searcher ", pickSearcher, "problem ", pickProblem), view);
  fillProblems(); draw();
  return out;
}

// ---- PRM evaluation, labels, curves, summaries ----------------------------------------------
function evalPrmSection(s) {
  const out = el("section", {id: "eval-prm"}, el("h2", {}, `PRM evaluation (threshold ${fmt(s.threshold)}, average F1 ${fmt(s.average_f1)})`));
  out.append(table(s.subsets, [...new Set(s.subsets.flatMap(Object.keys))]));  // Best-of-N columns where the run has them
  if (s.tuned) out.append(el("p", {}, `threshold tuned on dev: ${fmt(s.tuned.threshold)} (dev F1 ${fmt(s.tuned.dev_f1)})`));
  for (const [subset, rows] of Object.entries(s.confusion)) {
    out.append(el("h3", {}, `${subset}: first-error position, labelled (rows) vs predicted (columns)`));
    const max = Math.max(1, ...Object.values(rows).flatMap(r => Object.values(r)));
    const head = el("tr", {}, el("th", {}, "label \\ pred"), ...s.positions.map(p => el("th", {}, p)));
    const body = s.positions.filter(p => rows[p]).map(lab => el("tr", {}, el("th", {}, lab), ...s.positions.map(p => {
      const n = (rows[lab] || {})[p] || 0, td = el("td", {}, n || "");
      if (n) td.style.background = `rgba(${lab === p ? "19,122,42" : "179,38,30"},${0.15 + 0.6 * n / max})`;
      return td;
    })));
    out.append(el("table", {class: "heat confusion", "data-subset": subset}, head, ...body));
  }
  if (s.error_types.length) out.append(el("h3", {}, "recall per error type (first error found at its exact step)"),
    table(s.error_types, ["subset", "type", "recall", "n"]));
  if (s.response_level) out.append(el("h3", {}, "response level: best-of-n, PRM-weighted vote, BoN bias"),
    table([s.response_level], Object.keys(s.response_level)));
  return out;
}

function labelSection(s) {
  const out = el("section", {id: "label"}, el("h2", {}, `Labels: ${s.total} labelled solutions (first ${s.examples.length} shown)`));
  if (s.summary) out.append(table([s.summary], Object.keys(s.summary)));
  const list = el("ol", {class: "labels"});
  for (const e of s.examples) {
    const steps = e.completions.map((step, i) => el("span", {class: e.labels[i] ? "good" : "wrong",
      title: e.soft_labels ? `MC value ${fmt(e.soft_labels[i])}` : (e.labels[i] ? "good" : "bad")},
      step, e.soft_labels ? el("sub", {}, fmt(e.soft_labels[i])) : null));
    list.append(el("li", {"data-id": e.id}, el("div", {class: "step"}, e.prompt.trim().split("\n").slice(-1)[0]), ...steps));
  }
  out.append(list);
  return out;
}

function curvesSection(s) {
  const out = el("section", {id: "curves"}, el("h2", {}, "Training curves (train_log.jsonl)"));
  for (const [name, c] of Object.entries(s.series))
    out.append(chart(name, [{name, points: c.points, line: true}], c.x, name, false));
  return out;
}

function summarySection(s) {
  const rows = Object.entries(s.summary).map(([k, v]) => ({key: k, value: v}));
  return el("section", {id: "summary"}, el("h2", {}, "summary.json"), table(rows, ["key", "value"]));
}

const SECTIONS = {search: searchSection, "eval-prm": evalPrmSection, label: labelSection, curves: curvesSection, summary: summarySection};
document.getElementById("job").textContent = `job: ${DATA.job || "unknown"}`;
document.getElementById("config").textContent = DATA.config;
const main = document.getElementById("report");
for (const section of DATA.sections) main.append(SECTIONS[section.kind](section));
if (!DATA.sections.length) main.append(el("p", {}, "This run has no results yet (no summary.json or train_log.jsonl)."));
document.body.dataset.ready = "true";
