"""Report stage: generate with base, SFT and SFT+DPO on held-out data, score each task, compare, write report.*.

Generations are saved to generations.jsonl and reused on a rerun (same model files, prompt and decoding settings),
so scores can be recomputed without regenerating, and a retrained stage is never scored on its old answers.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import defaultdict
from pathlib import Path

from align.config import DatasetConfig, ReportRecipe
from align.data.load import load_rows
from align.errors import UserError
from align.eval.generate import generate, pair_logps
from align.eval.scoring import SCORERS, higher_is_better, score_task
from align.eval.stats import mcnemar, paired_bootstrap_ci, preference_summary
from align.models import Hardware, load_model, resolve_model_path
from align.report.cache import generation_key, load_generations
from align.report.render import render_report
from align.runinfo import library_versions, write_json, write_jsonl
from align.stage import (
    RunResult,
    is_complete,
    load_stage_model,
    model_stamp,
    read_metrics,
    read_recipe,
    require_complete,
    stage_stamp,
)

log = logging.getLogger("align")
ACCURACY_LIKE = ("accuracy",)  # per-example 0/1 series that also get McNemar's test


def read_held_out(path: str, kind: str, recipe: ReportRecipe) -> list[dict]:
    """Held-out rows through the reader training uses (any file type, located one-line errors); none without a path."""
    if not path:
        return []
    if not Path(path).exists():
        raise UserError(f"held-out data not found: {path}", "run `align data build` or set report.test_data")
    return load_rows(DatasetConfig(path=path), kind, recipe.model.allow_network)


def by_task(rows: list[dict], limit: int) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if not limit or len(groups[row["task"]]) < limit:
            groups[row["task"]].append(row)
    return dict(groups)


def available_variants(recipe: ReportRecipe) -> dict[str, Path | None]:
    """Which variants can be evaluated: base always; sft, sft_dpo and any `report.extra_dpo` runs when finished."""
    sft = require_complete(recipe.report.sft, "SFT", "run `make sft` first (the report compares against it)")
    dpo = Path(recipe.report.dpo)
    found = {"base": None, "sft": sft, "sft_dpo": dpo if is_complete(dpo) else None}
    if found["sft_dpo"] is None:
        log.info("no finished DPO run at %s: writing an SFT-only report", dpo)
        found.pop("sft_dpo")
    found = {k: v for k, v in found.items() if k in recipe.report.variants}
    for name, path in recipe.report.extra_dpo.items():
        if name in ("base", "sft", "sft_dpo"):
            raise UserError(f"report.extra_dpo name {name!r} is a built-in variant", "use e.g. sft_dpo_onpolicy")
        if is_complete(Path(path)):
            found[name] = Path(path)
        else:
            log.info("no finished DPO run at %s: %s is left out of the report (`make onpolicy` makes one)", path, name)
    return found


def dpo_variants(variants: dict) -> list[str]:
    """Every variant trained with DPO from the SFT model: sft_dpo, then the `report.extra_dpo` ones."""
    return [v for v in variants if v not in ("base", "sft")]


def load_variant(recipe: ReportRecipe, name: str, stage_dir: Path | None, hw: Hardware):
    if name == "base":
        return load_model(recipe.model, hw=hw)
    return load_stage_model(stage_dir, recipe.model, hw)


def variant_stamp(recipe: ReportRecipe, stage_dir: Path | None) -> str:
    """What a variant's saved generations are tied to: the base model's files, or a stage's model files."""
    if stage_dir is None:
        return model_stamp([resolve_model_path(recipe.model.name, recipe.model.allow_network)])
    return stage_stamp(stage_dir)


def generate_all(recipe, variants, tasks, pref_rows, out_dir: Path, hw) -> tuple[dict, dict]:
    """Generations per (variant, task) and preference log-probs per variant; loads one model at a time.

    Saved generations are reused only for the same model files, prompt and decoding settings (`report/cache.py`)."""
    cache = load_generations(out_dir / "generations.jsonl")
    gens: dict[str, dict[str, list[str]]] = defaultdict(dict)
    logps: dict[str, tuple[list[float], list[float]]] = {}
    records = []
    batch = recipe.report.batch_size
    for name, stage_dir in variants.items():
        model, tok = None, None
        stamp = variant_stamp(recipe, stage_dir)
        for task, rows in tasks.items():
            max_new = recipe.report.max_new_tokens.get(task, 96)
            keys = [generation_key(stamp, r["prompt"], max_new, batch) for r in rows]
            texts = [cache.get(k) for k in keys]
            if any(t is None for t in texts):
                if model is None:
                    model, tok = load_variant(recipe, name, stage_dir, hw)
                texts = generate(model, tok, [r["prompt"] for r in rows], max_new, batch, f"{name}/{task}")
            gens[name][task] = texts
            records += [
                {"variant": name, "task": task, "id": r["id"], "key": k, "text": t}
                for r, k, t in zip(rows, keys, texts, strict=True)
            ]
        if pref_rows and name != "base":
            if model is None:
                model, tok = load_variant(recipe, name, stage_dir, hw)
            logps[name] = pair_logps(model, tok, pref_rows, recipe.report.max_length)
        del model
        gc.collect()
    write_jsonl(out_dir / "generations.jsonl", records)
    return gens, logps


def compare(task_scores: dict, n_boot: int, seed: int, variant: str = "sft_dpo") -> dict[str, dict]:
    """`variant` minus SFT for every per-example metric: paired bootstrap CI, McNemar for 0/1 correctness."""
    sft, dpo = task_scores.get("sft"), task_scores.get(variant)
    if sft is None or dpo is None:
        return {}
    deltas = {}
    for metric, a in sft.per_example.items():
        b = dpo.per_example[metric]
        delta, lo, hi = paired_bootstrap_ci(a, b, n_boot=n_boot, seed=seed)
        entry = {"value": delta, "ci95": [lo, hi], "p_mcnemar": None, "higher_is_better": higher_is_better(metric)}
        if metric in ACCURACY_LIKE:
            entry["p_mcnemar"] = mcnemar(a, b)["p_value"]
        deltas[metric] = entry
    return deltas


def task_section(task: str, rows: list[dict], gens: dict, recipe: ReportRecipe) -> dict:
    scores = {v: score_task(task, gens[v][task], rows, drug_lexicon()) for v in gens if task in gens[v]}
    any_scores = next(iter(scores.values()))
    section = {
        "n": len(rows),
        "primary_metric": any_scores.primary_metric,
        "variants": {v: s.metrics for v, s in scores.items()},
        "deltas": compare(scores, recipe.report.n_boot, recipe.seed),
        "examples": examples(rows, gens, task),
    }
    extras = [v for v in dpo_variants(gens) if v != "sft_dpo"]
    if extras:
        section["deltas_vs_sft"] = {v: compare(scores, recipe.report.n_boot, recipe.seed, v) for v in extras}
    if "confusion" in any_scores.extra:
        section["confusion"] = {v: s.extra["confusion"] for v, s in scores.items()}
    return section


def examples(rows: list[dict], gens: dict, task: str, k: int = 4) -> list[dict]:
    out = []
    for i, row in enumerate(rows[:k]):
        item = {"prompt": row["prompt"][-1]["content"], "gold": row["completion"][0]["content"]}
        item.update({v: gens[v][task][i] for v in gens if v != "base" and task in gens[v]})
        out.append(item)
    return out


def drug_lexicon() -> tuple[str, ...]:
    try:
        from align.data.tasks.summarization import DRUGS
    except ImportError:
        return ()
    return tuple(DRUGS)


def preference_section(pref_rows: list[dict], logps: dict, beta: float) -> dict:
    """Implicit-reward metrics of each variant against the SFT reference: all pairs, then per task (custom ones too)."""
    if "sft" not in logps:
        return {}
    out = {}
    for variant in logps:  # sft first, then the DPO variants
        out[variant] = _preference(range(len(pref_rows)), logps[variant], logps["sft"], beta)
        for task in dict.fromkeys(r["task"] for r in pref_rows):
            idx = [i for i, r in enumerate(pref_rows) if r["task"] == task]
            per_task = _preference(idx, logps[variant], logps["sft"], beta)
            out[variant].update({f"{k} · {task}": per_task[k] for k in PER_TASK_PREFERENCE})
    return out


PER_TASK_PREFERENCE = ("reward_accuracy", "reward_margin", "logp_accuracy")


def _preference(idx, policy: tuple[list[float], list[float]], ref: tuple[list[float], list[float]], beta: float):
    pc, pr = ([policy[0][i] for i in idx], [policy[1][i] for i in idx])
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
    ppl = read_metrics(stage_dir).get("perplexity") or {}
    return {"stage": stage_dir, "perplexity": ppl} if ppl else {}


def run_report(recipe: ReportRecipe) -> RunResult:
    started = time.time()
    out_dir = recipe.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    variants = available_variants(recipe)
    tasks = by_task(read_held_out(recipe.report.test_data, "sft", recipe), recipe.report.max_examples_per_task)
    tasks = {t: rows for t, rows in tasks.items() if t in SCORERS}
    pref_rows_in = read_held_out(recipe.report.pref_data, "preference", recipe)
    pref_groups = by_task(pref_rows_in, recipe.report.max_pairs_per_task)
    pref_rows = [row for rows in pref_groups.values() for row in rows]
    hw = Hardware.detect()
    gens, logps = generate_all(recipe, variants, tasks, pref_rows, out_dir, hw)
    report = {
        "tasks": {task: task_section(task, rows, gens, recipe) for task, rows in tasks.items()},
        "preference": preference_section(pref_rows, logps, dpo_beta(variants)),
        "training": training_curves(variants),
        "domain": domain_section(recipe.report.domain),
        "meta": {
            "variants": list(variants),
            "versions": library_versions(),
            "wall_time_s": round(time.time() - started, 1),
            "test_data": recipe.report.test_data,
            "pref_data": recipe.report.pref_data,
        },
    }
    write_json(out_dir / "report.json", report)
    render_report(report, out_dir)
    return RunResult(out_dir, out_dir, {"report": str(out_dir / "report.html")})


def dpo_beta(variants: dict) -> float:
    """The beta the first DPO variant trained with (its saved recipe), for the implicit reward; 0.1 without one."""
    dpo = dpo_variants(variants)
    recipe = read_recipe(variants[dpo[0]]) if dpo else {}
    return float((recipe.get("dpo") or {}).get("beta", 0.1))
