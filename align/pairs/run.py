"""`align pairs generate`: sample the SFT model k times per prompt, score, keep (best, worst), balance, write.

Output: `pairs.out`, canonical preference JSONL (id, task, prompt, chosen, rejected, meta) that `align dpo` reads as
is, with `scores: {chosen, rejected}`, `chosen_source: sample|reference` and meta.error_type (the rejected answer's
error); beside it `<out>.manifest.json` with counts per task, the resolved recipe, the SFT model and the seed.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from align.config import DataConfig, DatasetConfig, PairsRecipe, PairsSection, to_dict
from align.data.load import ensure_bundled, load_split
from align.errors import UserError
from align.pairs.select import Candidate, Pair, balance_directions, select_pair
from align.runinfo import library_versions, write_json, write_jsonl
from align.tasks import Task, registry, task_for

log = logging.getLogger("align")


@dataclass
class PairsResult:
    out: Path
    manifest: Path
    prompts: int
    kept: int
    tasks: dict[str, dict] = field(default_factory=dict)


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")


def already_generated(recipe: PairsRecipe) -> bool:
    """pairs.out and its manifest exist and the manifest was written by this same resolved recipe."""
    out = Path(recipe.pairs.out)
    if not (out.is_file() and manifest_path(out).is_file()):
        return False
    try:
        written = json.loads(manifest_path(out).read_text(encoding="utf-8")).get("recipe")
    except json.JSONDecodeError:
        return False
    return written == json.loads(json.dumps(to_dict(recipe)))


def read_prompts(recipe: PairsRecipe) -> list[dict]:
    """Canonical SFT rows from pairs.prompts, filtered by data.tasks and cut by data.limit_per_task."""
    path = recipe.pairs.prompts
    data = DataConfig(train=[DatasetConfig(path=path, kind="sft")], build_bundled=recipe.data.build_bundled)
    ensure_bundled(data)
    if not Path(path).exists():
        raise UserError(f"prompts file not found: {path}", "set pairs.prompts to canonical SFT rows (align data build)")
    rows = load_split(
        data.train, "sft", recipe.data.tasks, recipe.seed, recipe.data.limit_per_task, recipe.model.allow_network
    )
    if not rows:
        raise UserError(f"no prompts left in {path} after data.tasks", "check data.tasks against the file's tasks")
    for row in rows:
        if not row.get("completion"):
            raise UserError(f"prompt row '{row.get('id', '?')}' has no completion", "use canonical SFT rows", path)
    return rows


def reference_text(row: dict) -> str:
    return str(row["completion"][-1]["content"])


def sample_answers(
    model, tokenizer, rows: list[dict], cfg: PairsSection, seed: int, tasks: dict[str, Task]
) -> tuple[list[list[str]], dict[str, float]]:
    """cfg.k sampled answers per row in row order, and seconds per task; one pass per task with its answer budget
    (`pairs.max_new_tokens`, else the task's own, as in the report).

    Each task's pass is seeded with seed + crc32(task), so tasks draw different streams and filtering tasks with
    data.tasks leaves the others' answers unchanged.
    """
    from align.eval.generate import sample

    by_task: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_task[row["task"]].append(i)
    answers: list[list[str]] = [[] for _ in rows]
    seconds: dict[str, float] = {}
    for task, idx in by_task.items():
        started = time.time()
        texts = sample(
            model,
            tokenizer,
            [rows[i]["prompt"] for i in idx],
            cfg.max_new_tokens.get(task, task_for(task, tasks).max_new_tokens),
            cfg.k,
            cfg.temperature,
            cfg.top_p,
            seed + zlib.crc32(task.encode()),
            cfg.batch_size,
            f"sample/{task}",
        )
        for i, t in zip(idx, texts, strict=True):
            answers[i] = t
        seconds[task] = round(time.time() - started, 1)
    return answers, seconds


def _candidate(task: Task, text: str, row: dict, source: Literal["sample", "reference"]) -> Candidate:
    s = task.pair_score(text, row)
    return Candidate(text, s.score, s.error_type, source, s.prediction)


def directions(tasks: dict[str, Task]) -> dict[str, tuple[str, str]]:
    """The two error directions (under-, over-call) of every ordinal task, for balancing the rejected answers."""
    return {name: t.call_names for name, t in tasks.items() if getattr(t, "ordinal", False)}


def pair_row(row: dict, pair: Pair) -> dict:
    """A canonical preference row for one prompt, with the scores and error types that chose it."""
    c, r = pair.chosen, pair.rejected
    meta = {
        **(row.get("meta") or {}),
        "error_type": r.error_type,
        "chosen_error_type": c.error_type,
        "predicted": {"chosen": c.prediction, "rejected": r.prediction},
    }
    return {
        "id": row["id"],
        "task": row["task"],
        "prompt": row["prompt"],
        "chosen": [{"role": "assistant", "content": c.text}],
        "rejected": [{"role": "assistant", "content": r.text}],
        "meta": meta,
        "scores": {"chosen": c.score, "rejected": r.score},
        "chosen_source": c.source,
    }


def build_pairs(
    rows: list[dict], answers: list[list[str]], cfg: PairsSection, seed: int, tasks: dict[str, Task]
) -> tuple[list[dict], dict]:
    """Score every answer with its task's pair score, select one pair per prompt, balance; (pair rows, counts)."""
    stats: dict[str, dict] = defaultdict(
        lambda: {"prompts": 0, "kept": 0, "dropped_gap": 0, "dropped_identical": 0, "dropped_balance": 0}
    )
    samples_seen: dict[str, Counter] = defaultdict(Counter)
    pairs: list[dict] = []
    for row, texts in zip(rows, answers, strict=True):
        task, scorer = row["task"], task_for(row["task"], tasks)
        candidates = [_candidate(scorer, t, row, "sample") for t in texts]
        samples_seen[task].update(c.error_type for c in candidates)
        reference = _candidate(scorer, reference_text(row), row, "reference") if cfg.include_reference else None
        pair, outcome = select_pair(candidates, reference, cfg.min_gap)
        stats[task]["prompts"] += 1
        if pair is None:
            stats[task][f"dropped_{outcome}"] += 1
        else:
            pairs.append(pair_row(row, pair))
    before = _count_by_task(pairs, lambda p: p["meta"]["error_type"])
    if cfg.balance:
        pairs, dropped = balance_directions(pairs, seed, directions(tasks))
        for task, n in dropped.items():
            stats[task]["dropped_balance"] = n
    for task, s in stats.items():
        s["kept"] = sum(p["task"] == task for p in pairs)
        s["sample_errors"] = dict(samples_seen[task])
        s["rejected_errors_before_balance"] = before.get(task, {})
        s["rejected_errors"] = _count_by_task(pairs, lambda p: p["meta"]["error_type"]).get(task, {})
        s["chosen_source"] = _count_by_task(pairs, lambda p: p["chosen_source"]).get(task, {})
    return pairs, dict(stats)


def _count_by_task(pairs: list[dict], key) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for p in pairs:
        counts[p["task"]][key(p)] += 1
    return {task: dict(c) for task, c in counts.items()}


def write_pairs(out: Path, pairs: list[dict], manifest: dict) -> Path:
    """The pairs, then the manifest, each written atomically; returns the manifest path."""
    write_jsonl(out, pairs)
    path = manifest_path(out)
    write_json(path, manifest)
    return path


def run_pairs(recipe: PairsRecipe) -> PairsResult:
    """Load the SFT model, sample, score, select, balance and write `recipe.pairs.out` with its manifest."""
    from align.stage import load_for_inference, read_recipe, require_complete

    started = time.time()
    cfg, out = recipe.pairs, Path(recipe.pairs.out)
    sft_dir = require_complete(recipe.pairs.sft, "SFT", "run `make sft` first (or set pairs.sft)")
    if cfg.k < 1 or cfg.temperature <= 0 or not 0 < cfg.top_p <= 1:
        raise UserError(
            f"sampling settings out of range: pairs.k={cfg.k}, temperature={cfg.temperature}, top_p={cfg.top_p}",
            "use k >= 1, temperature > 0, 0 < top_p <= 1",
        )
    rows = read_prompts(recipe)
    scorers = registry(read_recipe(sft_dir).get("tasks"), recipe.tasks)  # the SFT run's declarations, then ours
    for row in rows:  # every gold answer scores before the model loads: a missing field fails in seconds
        task_for(row["task"], scorers).pair_score(reference_text(row), row)
    model, tokenizer = load_for_inference(sft_dir, recipe.model)
    log.info("sampling %d answers for each of %d prompts from %s", cfg.k, len(rows), sft_dir)
    answers, seconds = sample_answers(model, tokenizer, rows, cfg, recipe.seed, scorers)
    pairs, tasks = build_pairs(rows, answers, cfg, recipe.seed, scorers)
    for task, s in tasks.items():
        s["sample_seconds"] = seconds[task]
        log.info(
            "%s: %d prompts -> %d pairs (dropped %d below min_gap, %d identical, %d to balance error directions)",
            task,
            s["prompts"],
            s["kept"],
            s["dropped_gap"],
            s["dropped_identical"],
            s["dropped_balance"],
        )
    manifest = {
        "out": str(out),
        "sft_model": str(sft_dir),
        "seed": recipe.seed,
        "prompts": len(rows),
        "pairs": len(pairs),
        "tasks": tasks,
        "wall_time_s": round(time.time() - started, 1),
        "versions": library_versions(),
        "recipe": to_dict(recipe),
    }
    path = write_pairs(out, pairs, manifest)
    if not pairs:
        log.warning("no pairs kept: lower pairs.min_gap, raise pairs.k or pairs.temperature, or set include_reference")
    return PairsResult(out, path, len(rows), len(pairs), tasks)
