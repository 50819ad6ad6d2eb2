"""What the report scores: held-out rows that no compared model trained on, grouped by task.

`report.test_data` / `report.pref_data` are dataset declarations like `data.train` (any file type, column maps,
shapes, task names), read by the reader training uses. When a recipe leaves them empty, the report scores what the
stages held out (`heldout.jsonl` beside SFT and DPO: their data.eval, or the split data.test_split_size carved).
Declared files of the user's are scanned for likely PHI before any model loads (the report puts prompts into pages
meant to be shared); the stages' held-out splits passed the same scan when they trained. Either way, a row whose
prompt any compared stage trained on (`trained_prompts.json`) is dropped and counted: the
report never scores a prompt that trained. A task that has held-out pairs but no test rows is scored on the pairs'
prompts, against their chosen answers.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from align.config import DataConfig, DatasetConfig, ReportRecipe
from align.data.load import check_phi, ensure_bundled, load_rows
from align.errors import UserError
from align.stage import prompt_key, read_heldout, trained_prompts

log = logging.getLogger("align")


@dataclass
class HeldOut:
    tasks: dict[str, list[dict]]  # task -> SFT-form rows (prompt, completion, meta) to answer
    pairs: list[dict]  # preference rows for the implicit-reward metrics
    sources: dict[str, str] = field(default_factory=dict)  # what was read, for the report's meta
    dropped_trained: int = 0


def read_held_out(recipe: ReportRecipe, stages: list[Path], allow_phi: bool = False) -> HeldOut:
    """Test rows and pairs (declared, or the stages' held-out splits), minus every prompt a stage trained on."""
    report = recipe.report
    tests = _read(report.test_data, "sft", recipe, allow_phi) if report.test_data else _saved(stages[:1])
    pairs = _read(report.pref_data, "preference", recipe, allow_phi) if report.pref_data else _saved(stages[1:2])
    if not tests and not pairs:
        raise UserError(
            "no held-out data to score",
            "set report.test_data (and report.pref_data), or train with data.eval or data.test_split_size",
        )
    trained = set().union(*(trained_prompts(s) for s in stages))
    kept_tests = [r for r in tests if prompt_key(r["prompt"]) not in trained]
    kept_pairs = [r for r in pairs if prompt_key(r["prompt"]) not in trained]
    dropped = len(tests) - len(kept_tests) + len(pairs) - len(kept_pairs)
    if dropped:
        log.warning("report: %d held-out rows left out: a compared stage trained on their prompts", dropped)
    groups = by_task(kept_tests, report.max_examples_per_task)
    for task, rows in by_task([as_test_row(p) for p in kept_pairs], report.max_examples_per_task).items():
        groups.setdefault(task, rows)  # scored against the chosen answers when the task has no test rows
    pair_groups = by_task(kept_pairs, report.max_pairs_per_task)
    sources = {
        "test_data": ", ".join(d.path for d in report.test_data)
        or " + ".join(f"{s}/heldout.jsonl" for s in stages[:1]),
        "pref_data": ", ".join(d.path for d in report.pref_data)
        or " + ".join(f"{s}/heldout.jsonl" for s in stages[1:2]),
    }
    return HeldOut(groups, [r for rows in pair_groups.values() for r in rows], sources, dropped)


def _read(specs: list[DatasetConfig], kind: str, recipe: ReportRecipe, allow_phi: bool) -> list[dict]:
    ensure_bundled(DataConfig(train=list(specs)))
    rows: list[dict] = []
    for spec in specs:
        if not Path(spec.path).exists():
            raise UserError(
                f"held-out data not found: {spec.path}", "run `align data build` or fix report.test_data / pref_data"
            )
        rows += load_rows(spec, kind, recipe.model.allow_network)
    check_phi(DataConfig(train=list(specs)), rows, allow_phi)
    return rows


def _saved(stages: list[Path]) -> list[dict]:
    return [row for stage in stages for row in read_heldout(stage)]


def as_test_row(pair: dict) -> dict:
    """A preference row as a row to answer: its prompt, with the chosen answer as the gold."""
    return {k: v for k, v in pair.items() if k not in ("chosen", "rejected")} | {"completion": pair["chosen"]}


def by_task(rows: list[dict], limit: int) -> dict[str, list[dict]]:
    """Rows grouped by task in first-seen order, at most `limit` per task (0 = all)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if not limit or len(groups[row["task"]]) < limit:
            groups[row["task"]].append(row)
    return dict(groups)
