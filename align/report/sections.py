"""The report's sections from answers and log-probs: per task (its own metrics, SFT+DPO minus SFT with paired
bootstrap CIs and McNemar, chance level and published results beside it), held-out preference metrics, training
curves and the domain adapter's perplexity. Every number comes from the task's own scorer (align/tasks/).
"""

from __future__ import annotations

import logging
from pathlib import Path

from align.eval.stats import mcnemar, paired_bootstrap_ci, preference_summary
from align.stage import is_complete, read_metrics
from align.tasks import Task
from align.tasks.base import reference_text

log = logging.getLogger("align")
ACCURACY_LIKE = ("accuracy",)  # per-example 0/1 series that also get McNemar's test
BUILT_IN_VARIANTS = ("base", "sft", "sft_dpo")


def dpo_variants(variants) -> list[str]:
    """Every variant trained with DPO from the SFT model: sft_dpo, then the `report.extra_dpo` ones."""
    return [v for v in variants if v not in ("base", "sft")]


def compare(task_scores: dict, n_boot: int, seed: int, variant: str = "sft_dpo") -> dict[str, dict]:
    """`variant` minus SFT for every per-example metric: paired bootstrap CI, McNemar for 0/1 correctness."""
    sft, dpo = task_scores.get("sft"), task_scores.get(variant)
    if sft is None or dpo is None:
        return {}
    deltas = {}
    for metric, a in sft.per_example.items():
        b = dpo.per_example[metric]
        delta, lo, hi = paired_bootstrap_ci(a, b, n_boot=n_boot, seed=seed)
        entry = {"value": delta, "ci95": [lo, hi], "p_mcnemar": None, "higher_is_better": sft.directions.get(metric)}
        if metric in ACCURACY_LIKE:
            entry["p_mcnemar"] = mcnemar(a, b)["p_value"]
        deltas[metric] = entry
    return deltas


def task_section(task: Task, rows: list[dict], answers: dict[str, list[str]], n_boot: int, seed: int) -> dict:
    """One task: its metrics per variant, deltas vs SFT, what chance and other models' published results give."""
    scores = {variant: task.score(texts, rows) for variant, texts in answers.items()}
    any_scores = next(iter(scores.values()))
    section = {
        **task.describe(),
        "n": len(rows),
        "primary_metric": any_scores.primary_metric,
        "directions": any_scores.directions,
        "chance": task.chance(rows),
        "variants": {v: s.metrics for v, s in scores.items()},
        "deltas": compare(scores, n_boot, seed),
        "examples": examples(rows, answers),
    }
    extras = [v for v in dpo_variants(answers) if v != "sft_dpo"]
    if extras:
        section["deltas_vs_sft"] = {v: compare(scores, n_boot, seed, v) for v in extras}
    if "confusion" in any_scores.extra:
        section["confusion"] = {v: s.extra["confusion"] for v, s in scores.items()}
        section["labels"] = any_scores.extra["labels"]
    return section


def examples(rows: list[dict], answers: dict[str, list[str]], k: int = 4) -> list[dict]:
    out = []
    for i, row in enumerate(rows[:k]):
        item = {"prompt": row["prompt"][-1]["content"], "gold": reference_text(row)}
        item.update({v: texts[i] for v, texts in answers.items() if v != "base"})
        out.append(item)
    return out


PER_TASK_PREFERENCE = ("reward_accuracy", "reward_margin", "logp_accuracy")


def preference_section(pairs: list[dict], logps: dict, beta: float) -> dict:
    """Implicit-reward metrics of each DPO variant against the SFT reference, all pairs and per task; for SFT itself
    (the reference: its implicit reward is 0 by definition) only whether it already ranks chosen above rejected."""
    if "sft" not in logps:
        return {}
    out = {}
    tasks = list(dict.fromkeys(r["task"] for r in pairs))
    for variant in logps:  # sft first, then the DPO variants
        keys = PER_TASK_PREFERENCE if variant != "sft" else ("logp_accuracy",)
        out[variant] = _preference(range(len(pairs)), logps[variant], logps["sft"], beta, variant == "sft")
        for task in tasks:
            idx = [i for i, r in enumerate(pairs) if r["task"] == task]
            per_task = _preference(idx, logps[variant], logps["sft"], beta, variant == "sft")
            out[variant].update({f"{k} · {task}": per_task[k] for k in keys})
    return out


def _preference(idx, policy, ref, beta: float, is_reference: bool) -> dict:
    pc, pr = ([policy[0][i] for i in idx], [policy[1][i] for i in idx])
    if is_reference:
        return {"n": len(pc), **logp_preference(pc, pr)}
    rc, rr = ([ref[0][i] for i in idx], [ref[1][i] for i in idx])
    return {**preference_summary(pc, pr, rc, rr, beta), **logp_preference(pc, pr)}


def logp_preference(chosen: list[float], rejected: list[float]) -> dict[str, float]:
    """Does the model itself give the chosen answer a higher log-prob than the rejected one?"""
    wins = sum(c > r for c, r in zip(chosen, rejected, strict=True))
    return {"logp_accuracy": wins / len(chosen), "mean_chosen_logp": sum(chosen) / len(chosen)}


def training_curves(variants: dict) -> dict:
    stages = [("sft", "sft"), ("dpo", "sft_dpo")] + [
        (f"dpo ({v})", v) for v in dpo_variants(variants) if v != "sft_dpo"
    ]
    out = {}
    for stage, key in stages:
        path = variants.get(key)
        if path is not None and read_metrics(path):
            out[stage] = read_metrics(path)["curves"]
    return out


def domain_section(stage_dir: str) -> dict:
    """Held-out clinical-note perplexity before and after the domain adapter, from a finished `align domain` run."""
    if not stage_dir:
        return {}
    if not is_complete(stage_dir):
        log.info("no finished domain run at %s: no perplexity section (`make domain` makes one)", stage_dir)
        return {}
    ppl = read_metrics(Path(stage_dir)).get("perplexity") or {}
    return {"stage": stage_dir, "perplexity": ppl} if ppl else {}
