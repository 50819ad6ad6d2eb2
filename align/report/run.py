"""Report stage: answer held-out prompts with base, SFT and SFT+DPO, score every task, compare, write report.*.

Every task is scored by its own definition (align/tasks/): the bundled and real-benchmark tasks by name, the tasks a
recipe declares (the SFT and DPO stages' recipes, then the report's), and a task nobody declared by comparing the
answer with the gold answer. Closed-answer tasks are answered by greedy generation (parsed; stopped at the end of the
first line when that line gives the answer, `report.stop_at_answer`) or, with `scoring: loglik`, by the most likely
candidate answer; the report says which.

Answers and the held-out pairs' log-probs are saved to generations.jsonl and reused on a rerun (same model files,
inputs and settings), so scores can be recomputed without regenerating, and a retrained stage is never scored on its
old answers.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import defaultdict
from pathlib import Path

from align.config import ReportRecipe
from align.errors import UserError
from align.eval.generate import generate, pair_logps
from align.eval.loglik import argmax, candidate_logps
from align.models import Hardware, resolve_model_path
from align.report.cache import generation_key, load_saved, loglik_key, pair_key
from align.report.heldout import read_held_out
from align.report.render import render_report
from align.report.sections import (
    BUILT_IN_VARIANTS,
    domain_section,
    dpo_variants,
    preference_section,
    task_section,
    training_curves,
)
from align.runinfo import library_versions, write_json, write_jsonl
from align.stage import (
    RunResult,
    inference_dtype,
    is_complete,
    load_for_inference,
    model_stamp,
    read_recipe,
    require_complete,
    stage_stamp,
)
from align.tasks import Task, check_rows, registry, task_for

log = logging.getLogger("align")


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
        if name in BUILT_IN_VARIANTS:
            raise UserError(f"report.extra_dpo name {name!r} is a built-in variant", "use e.g. sft_dpo_onpolicy")
        if is_complete(Path(path)):
            found[name] = Path(path)
        else:
            log.info("no finished DPO run at %s: %s is left out of the report (`make onpolicy` makes one)", path, name)
    return found


def report_tasks(recipe: ReportRecipe, variants: dict[str, Path | None]) -> dict[str, Task]:
    """Built-in tasks, the compared stages' declarations, then the report recipe's own."""
    stages = [p for p in variants.values() if p is not None]
    return registry(*(read_recipe(s).get("tasks") for s in stages), recipe.tasks)


def variant_stamp(recipe: ReportRecipe, stage_dir: Path | None, hw: Hardware) -> str:
    """What a variant's saved answers are tied to: the base model's files, or a stage's model files, and the dtype
    it answers in."""
    if stage_dir is None:
        files = model_stamp([resolve_model_path(recipe.model.name, recipe.model.allow_network)])
    else:
        files = stage_stamp(stage_dir)
    return f"{files}|{inference_dtype(recipe.model, hw)}"


class Answerer:
    """One variant's answers, reusing saved ones; the model loads only when something must be computed."""

    def __init__(self, recipe: ReportRecipe, name: str, stage_dir: Path | None, saved: tuple[dict, dict], hw: Hardware):
        self.recipe, self.name, self.stage_dir, self.hw = recipe, name, stage_dir, hw
        self.cache, self.saved_logps = saved  # (answers, pair log-probs) by key, from generations.jsonl
        self.stamp = variant_stamp(recipe, stage_dir, hw)
        self.model = self.tokenizer = None

    def loaded(self):
        if self.model is None:
            self.model, self.tokenizer = load_for_inference(self.stage_dir, self.recipe.model, self.hw)
        return self.model, self.tokenizer

    def answers(self, task: Task, rows: list[dict]) -> tuple[list[str], list[str]]:
        """(answer texts, cache keys): greedy generations, or each row's most likely candidate (`scoring: loglik`)."""
        if task.scoring == "loglik":
            candidates = [task.candidates(r) for r in rows]
            keys = [loglik_key(self.stamp, r["prompt"], c) for r, c in zip(rows, candidates, strict=True)]
            texts = [self.cache.get(k) for k in keys]
            if any(t is None for t in texts):
                model, tok = self.loaded()
                scores = candidate_logps(model, tok, [r["prompt"] for r in rows], candidates)
                texts = [c[argmax(s)] for c, s in zip(candidates, scores, strict=True)]
            return texts, keys
        max_new = self.recipe.report.max_new_tokens.get(task.name, task.max_new_tokens)
        batch = self.recipe.report.batch_size
        stop = self.recipe.report.stop_at_answer and task.closed
        keys = [generation_key(self.stamp, r["prompt"], max_new, batch, stop) for r in rows]
        texts = [self.cache.get(k) for k in keys]
        if any(t is None for t in texts):
            model, tok = self.loaded()
            done = (lambda i, line: task.first_line_answers(line, rows[i])) if stop else None
            prompts = [r["prompt"] for r in rows]
            texts = generate(model, tok, prompts, max_new, batch, f"{self.name}/{task.name}", done)
        return texts, keys

    def pair_logps(self, pairs: list[dict]) -> tuple[tuple[list[float], list[float]], list[str]]:
        """((chosen, rejected) summed log-probs of each pair, cache keys); only pairs without saved ones are computed."""
        max_length = self.recipe.report.max_length
        keys = [pair_key(self.stamp, p, max_length) for p in pairs]
        found = [self.saved_logps.get(k) for k in keys]
        todo = [i for i, f in enumerate(found) if f is None]
        if todo:
            model, tok = self.loaded()
            chosen, rejected = pair_logps(model, tok, [pairs[i] for i in todo], max_length)
            for i, c, r in zip(todo, chosen, rejected, strict=True):
                found[i] = (c, r)
        return ([f[0] for f in found], [f[1] for f in found]), keys


def answer_all(recipe, variants, tasks: dict[str, Task], groups, pairs, out_dir: Path, hw) -> tuple[dict, dict]:
    """Answers per (variant, task) and preference log-probs per variant, saved ones reused; one model in memory at a
    time."""
    saved = load_saved(out_dir / "generations.jsonl")
    answers: dict[str, dict[str, list[str]]] = defaultdict(dict)
    logps: dict[str, tuple[list[float], list[float]]] = {}
    records = []
    for name, stage_dir in variants.items():
        answerer = Answerer(recipe, name, stage_dir, saved, hw)
        for task_name, rows in groups.items():
            texts, keys = answerer.answers(task_for(task_name, tasks), rows)
            answers[task_name][name] = texts
            records += [
                {"variant": name, "task": task_name, "id": r.get("id"), "key": k, "text": t}
                for r, k, t in zip(rows, keys, texts, strict=True)
            ]
        if pairs and name != "base":
            logps[name], keys = answerer.pair_logps(pairs)
            records += [
                {"variant": name, "pair": p.get("id"), "key": k, "logps": [c, r]}
                for p, k, c, r in zip(pairs, keys, *logps[name], strict=True)
            ]
        del answerer
        gc.collect()
    write_jsonl(out_dir / "generations.jsonl", records)
    return answers, logps


def run_report(recipe: ReportRecipe, allow_phi: bool = False) -> RunResult:
    started = time.time()
    out_dir = recipe.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    variants = available_variants(recipe)
    tasks = report_tasks(recipe, variants)
    stages = [p for k, p in variants.items() if p is not None and k in ("sft", "sft_dpo")]
    held = read_held_out(recipe, stages, allow_phi or recipe.report.allow_phi)
    for rows in held.tasks.values():  # a missing gold answer fails here, before any model loads
        check_rows(rows, tasks)
    answers, logps = answer_all(recipe, variants, tasks, held.tasks, held.pairs, out_dir, Hardware.detect())
    report = {
        "tasks": {
            name: task_section(task_for(name, tasks), rows, answers[name], recipe.report.n_boot, recipe.seed)
            for name, rows in held.tasks.items()
        },
        "preference": preference_section(held.pairs, logps, dpo_beta(variants)),
        "training": training_curves(variants),
        "domain": domain_section(recipe.report.domain),
        "meta": {
            "variants": list(variants),
            "versions": library_versions(),
            "wall_time_s": round(time.time() - started, 1),
            **held.sources,
            "dropped_trained_prompts": held.dropped_trained,
        },
    }
    write_json(out_dir / "report.json", report)
    render_report(report, out_dir)
    return RunResult(out_dir, out_dir, {"report": str(out_dir / "report.html")})


def dpo_beta(variants: dict) -> float:
    """The beta the first DPO variant trained with (its saved recipe), for the implicit reward; 0.1 without one."""
    dpo = dpo_variants(variants)
    recipe = read_recipe(variants[dpo[0]]) if dpo else {}
    train = recipe.get("train") or {}
    return float(train.get("beta", (recipe.get("dpo") or {}).get("beta", 0.1)))
