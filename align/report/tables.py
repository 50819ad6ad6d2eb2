"""What the report says in words and tables: number formats, per-variant deltas, verdict lines, metric tables.

Shared by the Markdown and HTML renderers; reads the report.json layout documented in align/report/render.py.
"""

from __future__ import annotations

import math
from typing import Any

from align.eval.stats import significance_text

EXAMPLE_FIELDS = (("prompt", "Prompt"), ("gold", "Gold"), ("sft", "SFT"), ("sft_dpo", "SFT+DPO"))
VARIANTS = {"base": "base", "sft": "SFT", "sft_dpo": "SFT+DPO", "sft_dpo_onpolicy": "SFT+DPO (on-policy pairs)"}


def fmt_num(value: Any, signed: bool = False) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "–" if value is None else str(value)
    if isinstance(value, int) and not signed:
        return str(value)
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def is_share(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1)


def variants_of(data: dict) -> list[str]:
    """Variants present, in the fixed order base, sft, sft_dpo, then any others."""
    present = data.get("variants", {})
    return [v for v in VARIANTS if v in present] + [v for v in present if v not in VARIANTS]


def metrics_of(data: dict) -> list[str]:
    """Primary metric first, then the others in first-seen order."""
    seen: dict[str, None] = {}
    for values in data.get("variants", {}).values():
        seen.update((k, None) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool))
    primary = data.get("primary_metric")
    return ([primary] if primary in seen else []) + [k for k in seen if k != primary]


def deltas_of(data: dict, variant: str = "sft_dpo") -> dict:
    """The variant-minus-SFT entries: `deltas` for SFT+DPO, `deltas_vs_sft[variant]` for further DPO runs."""
    if variant == "sft_dpo":
        return data.get("deltas") or {}
    return (data.get("deltas_vs_sft") or {}).get(variant) or {}


def delta_of(data: dict, metric: str, variant: str = "sft_dpo") -> tuple[float, float, float] | None:
    entry = deltas_of(data, variant).get(metric)
    if not isinstance(entry, dict) or entry.get("value") is None or len(entry.get("ci95") or []) != 2:
        return None
    lo, hi = entry["ci95"]
    return float(entry["value"]), float(lo), float(hi)


def direction_of(data: dict, metric: str, variant: str = "sft_dpo") -> bool | None:
    """The delta entry's own `higher_is_better`, else the task's `directions`, else higher is better."""
    entry = deltas_of(data, variant).get(metric) or {}
    if "higher_is_better" in entry:
        return entry["higher_is_better"]
    return (data.get("directions") or {}).get(metric, True)


SCORING_TEXT = {
    "generate": "greedy generation, answer parsed",
    "loglik": "log-likelihood of each candidate answer, the most likely one taken (lm-evaluation-harness convention)",
}


def context_lines(data: dict) -> list[str]:
    """What a reader needs beside the numbers: how answers were scored, what chance gives, what other models got."""
    lines = []
    if data.get("description"):
        lines.append(
            f"Task: {data['description']} ({data.get('type', 'task')}, {data.get('n', '?')} held-out prompts)."
        )
    if data.get("scoring"):
        lines.append(f"Scored by: {SCORING_TEXT.get(data['scoring'], data['scoring'])}.")
    chance = data.get("chance") or {}
    if chance:
        names = {"accuracy": "a uniform guess", "majority_accuracy": "always the most common gold label"}
        shown = "; ".join(f"{names.get(k, k)} {fmt_num(v)}" for k, v in chance.items())
        lines.append(f"Chance level ({data.get('primary_metric', 'accuracy')}): {shown}.")
    published = data.get("published") or []
    if published:
        values = ", ".join(f"{a['model']} {fmt_num(a['value'])}" for a in published)
        first = published[0]
        lines.append(
            f"Other models' published results, not this run ({first.get('split') or 'their test set'}; "
            f"{first['source']}): {values}."
        )
    return lines


def verdict(task: str, data: dict, variant: str = "sft_dpo") -> str:
    """One line: primary metric for SFT and the DPO variant, the delta with its CI and McNemar p, and what it means."""
    metric, variants = data.get("primary_metric"), data.get("variants", {})
    if not metric:
        return f"{task}: no primary metric reported"
    label = VARIANTS.get(variant, variant)
    sft, dpo = variants.get("sft", {}).get(metric), variants.get(variant, {}).get(metric)
    delta = delta_of(data, metric, variant)
    if dpo is None or sft is None or delta is None:
        shown = ", ".join(f"{VARIANTS.get(v, v)} {fmt_num(variants[v].get(metric))}" for v in variants_of(data))
        return f"{task}: {metric} {shown or 'not reported'}; no SFT vs {label} comparison in this report"
    value, lo, hi = delta
    p = deltas_of(data, variant)[metric].get("p_mcnemar")
    p_text = f", McNemar p = {p:.3g}" if isinstance(p, int | float) else ""
    meaning = significance_text(lo, hi, direction_of(data, metric, variant))
    if variant != "sft_dpo":
        meaning = meaning.replace("SFT+DPO", label)
    return (
        f"{task}: {metric} SFT {fmt_num(sft)} → {label} {fmt_num(dpo)} "
        f"(Δ {value:+.3f}, 95% CI [{lo:+.3f}, {hi:+.3f}]{p_text}): {meaning}"
    )


def verdicts(task: str, data: dict) -> list[str]:
    """The SFT+DPO verdict, then one per further DPO variant."""
    return [verdict(task, data)] + [verdict(task, data, v) for v in data.get("deltas_vs_sft") or {}]


def table_rows(task: str, data: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-task metric table (shared by Markdown and HTML)."""
    variants = variants_of(data)
    header = ["metric", *[VARIANTS.get(v, v) for v in variants], "Δ (SFT+DPO − SFT)", "95% CI", "McNemar p", "verdict"]
    rows = []
    for metric in metrics_of(data):
        cells = [metric, *[fmt_num(data["variants"][v].get(metric)) for v in variants]]
        delta = delta_of(data, metric)
        if delta is None:
            cells += ["–", "–", "–", "–"]
        else:
            p = data["deltas"][metric].get("p_mcnemar")
            ci = f"[{delta[1]:+.3f}, {delta[2]:+.3f}]"
            cells += [
                fmt_num(delta[0], signed=True),
                ci,
                f"{p:.3g}" if isinstance(p, int | float) else "–",  # p can be tiny: significant digits
                significance_text(delta[1], delta[2], direction_of(data, metric)),
            ]
        rows.append(cells)
    return header, rows


def example_fields(examples: list[dict]) -> list[tuple[str, str]]:
    """Prompt, gold, SFT, SFT+DPO, then any further variant the examples carry."""
    keys = [k for k, _ in EXAMPLE_FIELDS] + [k for e in examples for k in e if k not in dict(EXAMPLE_FIELDS)]
    labels = dict(EXAMPLE_FIELDS)
    return [(k, labels.get(k, VARIANTS.get(k, k))) for k in dict.fromkeys(keys) if any(k in e for e in examples)]


DOMAIN_TITLE = "Domain adapter: perplexity on held-out clinical notes"


def domain_columns(report: dict) -> dict[str, dict]:
    """{"base": {...}, "base + domain adapter": {...}} from report["domain"], or nothing."""
    ppl = (report.get("domain") or {}).get("perplexity") or {}
    if not ppl:
        return {}
    shared = {k: v for k, v in ppl.items() if k not in ("base", "domain")}
    return {
        "base": {"perplexity": ppl.get("base"), **shared},
        "base + domain adapter": {"perplexity": ppl.get("domain")},
    }
