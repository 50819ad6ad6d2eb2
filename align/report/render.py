"""Render report.json into report.md, a self-contained report.html (inline SVG and CSS, no URLs) and plots/*.svg.

report.json (any part may be missing: an SFT-only run has no sft_dpo; a custom dataset may have only preference):
{"tasks": {TASK: {"n", "primary_metric", "variants": {VARIANT: {metric: value}},
                  "deltas": {metric: {"value", "ci95": [lo, hi], "p_mcnemar"}}, "confusion": {VARIANT: [[...]]},
                  "deltas_vs_sft": {VARIANT: {metric: {...}}},  # further DPO runs (report.extra_dpo) minus SFT
                  "examples": [{"prompt", "gold", "sft", "sft_dpo", VARIANT...}]}},
 "preference": {VARIANT: {name: value}}, "training": {STAGE: {series: [[step, value], ...]}},
 "domain": {"stage", "perplexity": {"base", "domain", "n_docs", "tokens"}}, "meta": {...}}
Deltas are SFT+DPO (or another DPO variant) minus SFT with a paired-bootstrap 95% CI; the verdict line reads that CI.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from align.errors import UserError
from align.report import svg
from align.report.tables import (
    DOMAIN_TITLE,
    VARIANTS,
    context_lines,
    delta_of,
    domain_columns,
    example_fields,
    fmt_num,
    is_share,
    metrics_of,
    table_rows,
    variants_of,
    verdicts,
)
from align.runinfo import write_atomic

MAX_EXAMPLES = 5
CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}.verdict{font-weight:600}.better{color:#1a7f37}.worse{color:#c62828}
.examples td,.examples th{text-align:left;vertical-align:top;width:25%}pre{white-space:pre-wrap;margin:0;font-size:.85em}
figure{display:inline-block;margin:.5em 1em .5em 0}figcaption{font-size:.8em;color:#555;max-width:520px}
"""


@dataclass
class Plot:
    name: str  # file stem under plots/
    title: str
    svg: str
    caption: str = ""


def check_report(report: Any, path: str = "report.json") -> None:
    """The top-level sections must be objects and every task must have a `variants` object (possibly empty)."""
    if not isinstance(report, dict):
        raise UserError("the report must be a JSON object", 'start it with {"tasks": {...}}', path=path)
    for section in ("tasks", "preference", "training", "domain", "meta"):
        if not isinstance(report.get(section, {}), dict):
            raise UserError(f"'{section}' must be an object", f'write it as "{section}": {{...}}', path=path)
    for task, data in report.get("tasks", {}).items():
        if not isinstance(data, dict) or not isinstance(data.get("variants", {}), dict):
            raise UserError(
                f"task '{task}' must be an object with a 'variants' object",
                "see the schema in align/report/render.py",
                path=path,
            )


def _slug(*parts: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", "_".join(parts).lower()).strip("_")


def _bar_plot(task: str, data: dict) -> Plot | None:
    variants = variants_of(data)
    values = data.get("variants", {})
    shares = [m for m in metrics_of(data) if all(is_share(values[v].get(m, 0)) for v in variants)]
    if not shares or not variants:
        return None
    series = {VARIANTS.get(v, v): [values[v].get(m) for m in shares] for v in variants}
    whiskers = {}
    if "sft" in values and "sft_dpo" in values:
        # The CI belongs to the paired difference; drawn around SFT's value it shows where SFT+DPO may lie.
        deltas = [delta_of(data, m) for m in shares]
        # Clipped to [0, 1]: these metrics are shares, a bound outside it only says "at least 0 / at most 1".
        whiskers["SFT+DPO"] = [
            (max(0.0, values["sft"][m] + d[1]), min(1.0, values["sft"][m] + d[2]))
            if d and values["sft"].get(m) is not None
            else None
            for m, d in zip(shares, deltas, strict=True)
        ]
    caption = "Bars: each variant's score on the test split"
    if any(w is not None for w in whiskers.get("SFT+DPO", [])):
        caption += "; whisker on SFT+DPO: SFT's score + the 95% paired-bootstrap CI of the difference"
    chart = svg.bar_chart(f"{task} (n = {data.get('n', '?')})", shares, series, whiskers, y_label="score")
    return Plot(_slug(task, "scores"), f"{task} scores", chart, caption + ".")


def _confusion_plots(task: str, data: dict) -> list[Plot]:
    plots = []
    for variant, matrix in (data.get("confusion") or {}).items():
        if not matrix:
            continue
        rows = list(data.get("labels") or [str(i + 1) for i in range(len(matrix))])
        cols = rows + ["unparsed"] if len(matrix[0]) == len(matrix) + 1 else rows
        title = f"{task} confusion: {VARIANTS.get(variant, variant)}"
        chart = svg.heatmap(title, matrix, rows, cols, row_title="gold", col_title="predicted")
        plots.append(Plot(_slug(task, "confusion", variant), title, chart, "Rows: gold; columns: predicted."))
    return plots


def _training_plots(training: dict) -> list[Plot]:
    plots = []
    for stage, series in training.items():
        for name, points in (series or {}).items():
            pairs = [(p[0], p[1]) for p in points or [] if isinstance(p, list | tuple) and len(p) == 2]
            if not pairs:
                continue
            title = f"{stage.upper()} {name}"
            chart = svg.line_chart(title, {name: pairs}, x_label="step", y_label=name)
            plots.append(Plot(_slug("training", stage, name), title, chart))
    return plots


def task_plots(task: str, data: dict) -> list[Plot]:
    bar = _bar_plot(task, data)
    return ([bar] if bar else []) + _confusion_plots(task, data)


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}text\n{text}\n{ticks}"


def _md_task(task: str, data: dict, plots: list[Plot]) -> list[str]:
    lines = [f"## {task}", ""] + [f"**{_md_cell(line)}**\n" for line in verdicts(task, data)]
    lines += [f"{line}  " for line in context_lines(data)] + ([""] if context_lines(data) else [])
    header, rows = table_rows(task, data)
    if rows:
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows] + [""]
    lines += [f"![{p.title}](plots/{p.name}.svg)" + (f"  \n*{p.caption}*" if p.caption else "") + "\n" for p in plots]
    for i, example in enumerate((data.get("examples") or [])[:MAX_EXAMPLES], start=1):
        lines.append(f"### Example {i}")
        for key, label in example_fields([example]):
            lines += [f"**{label}**", "", _fence(str(example[key])), ""]
    return lines


def _md_mapping_table(title: str, columns: dict[str, dict]) -> list[str]:
    keys = list(dict.fromkeys(k for values in columns.values() for k in values))
    if not keys:
        return []
    names = [VARIANTS.get(c, c) for c in columns]
    lines = [f"## {title}", "", "| | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    lines += [f"| {k} | " + " | ".join(_md_cell(fmt_num(v.get(k))) for v in columns.values()) + " |" for k in keys]
    return [*lines, ""]


def render_markdown(report: dict, plots: dict[str, list[Plot]], training: list[Plot]) -> str:
    lines = ["# SFT vs SFT+DPO report", ""]
    tasks = report.get("tasks", {})
    lines += [f"- {_md_cell(line)}" for t, d in tasks.items() for line in verdicts(t, d)] + [""]
    for task, data in tasks.items():
        lines += _md_task(task, data, plots.get(task, []))
    lines += _md_mapping_table("Held-out preference pairs (implicit DPO rewards)", report.get("preference", {}))
    lines += _md_mapping_table(DOMAIN_TITLE, domain_columns(report))
    if training:
        lines += ["## Training curves", ""] + [f"![{p.title}](plots/{p.name}.svg)\n" for p in training]
    meta = report.get("meta", {})
    lines += _md_mapping_table("Run", {"value": {k: json.dumps(v) for k, v in meta.items()}}) if meta else []
    return "\n".join(lines) + "\n"


def _html_table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><tr>{head}</tr>{body}</table>'


def _html_figures(plots: list[Plot]) -> str:
    return "".join(f"<figure>{p.svg}<figcaption>{escape(p.caption)}</figcaption></figure>" for p in plots)


def _verdict_class(line: str) -> str:
    return "better" if line.endswith(" better") else "worse" if line.endswith(" worse") else ""


def _html_examples(examples: list[dict]) -> str:
    fields = example_fields(examples)
    if not fields:
        return ""
    head = "".join(f"<th>{label}</th>" for _, label in fields)
    rows = "".join(
        "<tr>" + "".join(f"<td><pre>{escape(str(e.get(k, '')))}</pre></td>" for k, _ in fields) + "</tr>"
        for e in examples
    )
    return f'<h3>Examples</h3><table class="examples"><tr>{head}</tr>{rows}</table>'


def _html_task(task: str, data: dict, plots: list[Plot]) -> str:
    header, rows = table_rows(task, data)
    parts = [f"<h2>{escape(task)}</h2>"]
    parts += [f'<p class="verdict {_verdict_class(line)}">{escape(line)}</p>' for line in verdicts(task, data)]
    parts += [f'<p class="context">{escape(line)}</p>' for line in context_lines(data)]
    parts += [_html_table(header, rows) if rows else "", _html_figures(plots)]
    parts.append(_html_examples((data.get("examples") or [])[:MAX_EXAMPLES]))
    return "<section>" + "".join(parts) + "</section>"


def _html_mapping(title: str, columns: dict[str, dict]) -> str:
    keys = list(dict.fromkeys(k for values in columns.values() for k in values))
    if not keys:
        return ""
    rows = [[k, *[fmt_num(v.get(k)) for v in columns.values()]] for k in keys]
    return f"<h2>{escape(title)}</h2>" + _html_table(["", *[VARIANTS.get(c, c) for c in columns]], rows)


def render_html(report: dict, plots: dict[str, list[Plot]], training: list[Plot]) -> str:
    tasks = report.get("tasks", {})
    lines = [line for t, d in tasks.items() for line in verdicts(t, d)]
    summary = "".join(f'<li class="{_verdict_class(line)}">{escape(line)}</li>' for line in lines)
    body = [f"<h1>SFT vs SFT+DPO report</h1><ul>{summary}</ul>"]
    body += [_html_task(t, d, plots.get(t, [])) for t, d in tasks.items()]
    body.append(_html_mapping("Held-out preference pairs (implicit DPO rewards)", report.get("preference", {})))
    body.append(_html_mapping(DOMAIN_TITLE, domain_columns(report)))
    if training:
        body.append("<h2>Training curves</h2>" + _html_figures(training))
    meta = report.get("meta", {})
    body.append(_html_mapping("Run", {"value": {k: json.dumps(v) for k, v in meta.items()}}) if meta else "")
    head = f'<meta charset="utf-8"><title>SFT vs SFT+DPO report</title><style>{CSS}</style>'
    return f"<!DOCTYPE html>\n<html><head>{head}</head><body>{''.join(body)}</body></html>\n"


def build_plots(report: dict) -> tuple[dict[str, list[Plot]], list[Plot]]:
    """(plots keyed by task name, training-curve plots)."""
    plots = {task: task_plots(task, data) for task, data in report.get("tasks", {}).items()}
    return plots, _training_plots(report.get("training", {}))


def render_report(report: dict, out_dir: Path) -> list[Path]:
    """Write report.md, report.html and plots/<name>.svg under out_dir; returns the written paths."""
    check_report(report)
    out_dir = Path(out_dir)
    plots, training = build_plots(report)
    every_plot = [p for ps in plots.values() for p in ps] + training
    written = [write_atomic(out_dir / "plots" / f"{p.name}.svg", svg.standalone(p.svg)) for p in every_plot]
    written.append(write_atomic(out_dir / "report.md", render_markdown(report, plots, training)))
    written.append(write_atomic(out_dir / "report.html", render_html(report, plots, training)))
    return written
