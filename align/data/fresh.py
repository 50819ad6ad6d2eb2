"""A larger held-out test set for the bundled tasks, built with another seed and kept clear of the bundled data.

The bundled test split (80 triage and 80 reasoning prompts) gives 95 % intervals about +-0.1 wide on an accuracy
difference, too wide to tell a real DPO gain from noise. `align data fresh-test` builds N more test prompts per task
with the same generators and another seed, and drops every prompt that is a near-duplicate (word Jaccard >= 0.85
over the whole prompt, as the bundled splits are kept apart) of any train, eval or test prompt already in the bundled
folder, so nothing a model trained on reaches the fresh set. Point the report at it: `report.test_data` / `report.pref_data`.
"""

from __future__ import annotations

import json
from pathlib import Path

from align.data.build import dumps
from align.data.tasks import TASKS
from align.data.tasks.common import NEAR_DUP_JACCARD, jaccard, token_set
from align.errors import UserError
from align.runinfo import read_jsonl

MAX_GROWTH = 8  # generate at most n * MAX_GROWTH candidates before giving up


def prompt_text(row: dict) -> str:
    return row["prompt"][-1]["content"]


def bundled_prompts(folder: Path, task: str) -> list[frozenset[str]]:
    """Token sets of every prompt of `task` in the folder's sft_{train,eval,test}.jsonl."""
    out = []
    for split in ("train", "eval", "test"):
        path = folder / f"sft_{split}.jsonl"
        if not path.is_file():
            raise UserError(f"{path} not found", "point --against at a folder written by `align data build`")
        for row in read_jsonl(path):
            if row.get("task") == task:
                out.append(token_set(prompt_text(row)))
    return out


def fresh_rows(task: str, n: int, seed: int, against: list[frozenset[str]]) -> dict[str, list[dict]]:
    """{"sft": rows, "pref": rows}: n test items of `task` from `seed`, none near-identical to `against`."""
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}", f"use one of {', '.join(TASKS)}")
    if n < 1:
        raise UserError(f"--n {n}: the fresh test set needs at least one prompt per task", "use e.g. --n 320")
    size = n + n // 4
    while True:
        built = TASKS[task]({"train": 0, "eval": 0, "test": size}, seed, None)["test"]
        keep = [
            i
            for i, row in enumerate(built["sft"])
            if all(jaccard(token_set(prompt_text(row)), seen) < NEAR_DUP_JACCARD for seen in against)
        ][:n]
        if len(keep) == n:
            break
        if size >= n * MAX_GROWTH:
            raise UserError(
                f"task {task}: only {len(keep)} of {size} generated prompts are new with seed {seed}",
                "ask for fewer prompts (--n) or use another --seed",
            )
        size *= 2
    out: dict[str, list[dict]] = {}
    for kind in ("sft", "pref"):
        rows = [built[kind][i] for i in keep]
        out[kind] = [{**row, "id": f"{task}-fresh{seed}-{j:04d}"} for j, row in enumerate(rows)]
    return out


def write_fresh_test(against: Path, out_dir: Path, tasks: list[str], n: int, seed: int) -> dict:
    """Write sft_test.jsonl, pref_test.jsonl and manifest.json into out_dir; return the manifest."""
    against = Path(against)
    bundled_seed = _bundled_seed(against)
    if bundled_seed == seed:
        raise UserError(f"seed {seed} is the seed the bundled data was built with", "use another --seed, e.g. 7")
    files: dict[str, list[dict]] = {"sft_test.jsonl": [], "pref_test.jsonl": []}
    for task in tasks:
        rows = fresh_rows(task, n, seed, bundled_prompts(against, task))
        files["sft_test.jsonl"] += rows["sft"]
        files["pref_test.jsonl"] += rows["pref"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        tmp = out_dir / f".{name}.tmp"
        tmp.write_text("".join(dumps(r) + "\n" for r in rows), encoding="utf-8")
        tmp.replace(out_dir / name)
    manifest = {"seed": seed, "n_per_task": n, "tasks": list(tasks), "checked_against": str(against)}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _bundled_seed(folder: Path) -> int | None:
    manifest = folder / "manifest.json"
    return json.loads(manifest.read_text(encoding="utf-8")).get("seed") if manifest.is_file() else None
