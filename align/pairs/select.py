"""Choose one (chosen, rejected) pair per prompt from scored candidates, then balance error directions per task.

Per prompt: chosen = the best candidate (samples, plus the gold answer when it competes; on a tie the gold answer
wins), rejected = the worst *sample* (the gold answer is never rejected). Identical texts count once. The pair is
dropped when chosen and rejected are the same text or their score gap is below `min_gap`.

Balance: DPO pushes away from the rejected answers, so if most rejected triage answers over-triage, DPO teaches the
model to under-triage (a probe moved under-triage from 11% to 62% that way). Per task with directional errors, the
larger direction is downsampled (seeded) to the size of the smaller one; pairs whose rejected answer has another error
type (unparseable, ...) are kept.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Candidate:
    text: str
    score: float
    error_type: str
    source: Literal["sample", "reference"] = "sample"
    prediction: Any = None


@dataclass(frozen=True)
class Pair:
    chosen: Candidate
    rejected: Candidate

    @property
    def gap(self) -> float:
        return self.chosen.score - self.rejected.score


def dedupe(candidates: list[Candidate]) -> list[Candidate]:
    """First candidate of each distinct text (surrounding whitespace ignored), in order."""
    seen: set[str] = set()
    out = []
    for cand in candidates:
        if cand.text.strip() not in seen:
            seen.add(cand.text.strip())
            out.append(cand)
    return out


def select_pair(
    samples: list[Candidate], reference: Candidate | None, min_gap: float
) -> tuple[Pair | None, Literal["kept", "identical", "gap"]]:
    """(pair, "kept"), or (None, why): "identical" when no two distinct texts remain, "gap" when gap < min_gap."""
    assert samples, "select_pair needs at least one sample"
    distinct = dedupe(samples)
    pool = dedupe(distinct + ([reference] if reference is not None else []))  # a sample equal to gold stays a sample
    best = max(c.score for c in pool)
    # the gold answer wins ties: a sample is chosen only when it scores strictly higher
    chosen = next((c for c in pool if c.source == "reference" and c.score == best), None)
    chosen = chosen or next(c for c in pool if c.score == best)
    rejected = min(distinct, key=lambda c: c.score)  # first of the worst
    if chosen.text.strip() == rejected.text.strip():
        return None, "identical"
    pair = Pair(chosen, rejected)
    if pair.gap < min_gap:
        return None, "gap"
    return pair, "kept"


def balance_directions(
    rows: list[dict], seed: int, directions: dict[str, tuple[str, str]]
) -> tuple[list[dict], dict[str, int]]:
    """Downsample the larger error direction of each task in `directions` (task -> its two error types, e.g.
    under_triage / over_triage); (kept rows in order, dropped per task).

    Rows are output pair rows: `task` and `meta.error_type` (the rejected answer's error type) are read.
    """
    rng = random.Random(seed)
    by_direction: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        error = row["meta"]["error_type"]
        if error in directions.get(row["task"], ()):
            by_direction[(row["task"], error)].append(i)
    dropped: set[int] = set()
    counts: dict[str, int] = {}
    for task, (a, b) in directions.items():
        first, second = by_direction[(task, a)], by_direction[(task, b)]
        larger, n = (first, len(second)) if len(first) > len(second) else (second, len(first))
        drop = set(larger) - set(rng.sample(larger, n))
        dropped |= drop
        if first or second:
            counts[task] = len(drop)
    return [row for i, row in enumerate(rows) if i not in dropped], counts
