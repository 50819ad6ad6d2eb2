"""Mixing several datasets by weight and splitting rows into train/eval by unique prompt (deterministic by seed)."""

from __future__ import annotations

import json
import random
from typing import Any

from align.errors import UserError


def mix(datasets: list[tuple[list[dict[str, Any]], float]], seed: int) -> list[dict[str, Any]]:
    """Sample each dataset by weight (1.0 = every row once, 0.5 = a random half, 2.0 = every row twice).

    A fractional part takes round(frac * len) distinct rows. Datasets stay in order (the trainers shuffle), so
    `limit_per_task` keeps a file's first rows. Deterministic for a given seed.
    """
    rng, out = random.Random(seed), []
    for rows, weight in datasets:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise UserError(f"mixing weight must be a number >= 0, got {weight!r}", "use e.g. 1.0 (all rows once)")
        whole, frac = divmod(float(weight), 1.0)
        out.extend(row for _ in range(int(whole)) for row in rows)
        out.extend(rng.sample(rows, round(frac * len(rows))))
    return out


def split_rows(
    rows: list[dict[str, Any]], test_split_size: float | int, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, eval) split by unique prompt, so a prompt never lands in both; original row order is kept.

    `test_split_size` (the recipe's `data.test_split_size`) is a fraction of the rows in (0, 1), e.g. 0.1, or a row
    count >= 1, e.g. 3 (a whole float such as 3.0 counts rows too: a YAML `3` may arrive through a float field).
    Whole prompt groups move to eval, in seeded random order, until at least that many rows are there; a size that
    leaves no training row is a UserError.
    """
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(json.dumps(row["prompt"], sort_keys=True), []).append(i)
    target = _eval_target(test_split_size, len(rows))
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    eval_ids: set[int] = set()
    for key in keys:
        if len(eval_ids) >= target:
            break
        eval_ids.update(groups[key])
    if len(eval_ids) == len(rows):
        raise UserError(
            f"data.test_split_size={test_split_size} leaves no training rows ({len(rows)} rows, {len(groups)} "
            "unique prompts)",
            "use a smaller test_split_size or give a separate data.eval file",
        )
    return [r for i, r in enumerate(rows) if i not in eval_ids], [r for i, r in enumerate(rows) if i in eval_ids]


def _eval_target(size: float | int, n_rows: int) -> int:
    """How many rows `data.test_split_size` asks for: round(size * n_rows) (at least 1) or the count itself."""
    example = "use e.g. 0.1 (a tenth of the rows) or 3 (three rows)"
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        raise UserError(f"data.test_split_size must be a number, got {size!r}", example)
    if 0.0 < size < 1.0:
        return max(1, round(size * n_rows))
    if size >= 1 and float(size).is_integer():
        return int(size)
    raise UserError(
        f"data.test_split_size={size} is neither a fraction in (0, 1) nor a whole number of rows >= 1", example
    )
