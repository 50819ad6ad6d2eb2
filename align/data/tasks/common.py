"""Shared pieces of the clinical task builders: canonical rows, split assignment with near-duplicate checks, error mixes.

Every builder makes `Item`s (prompt text, answers, meta, a normalised dedupe key) from a seeded `random.Random` and
hands a generator of them to `assign_splits`, which fills test, then eval, then train. Filling the held-out splits
first means a larger `scale` adds training items without changing eval or test.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

SPLITS: tuple[str, ...] = ("train", "eval", "test")
FILL_ORDER: tuple[str, ...] = ("test", "eval", "train")
# Two items from different splits whose texts (the prompt after the shared instruction) have token-set Jaccard at or
# above this count as near-duplicates. The tests use 0.9; the margin keeps a tokenisation difference from flipping it.
NEAR_DUP_JACCARD = 0.85
MAX_ATTEMPTS_PER_ITEM = 400

Rows = dict[str, dict[str, list[dict]]]  # {split: {"sft": [...], "pref": [...]}}


@dataclass
class Item:
    """One generated example before it becomes an SFT row and a preference row."""

    key: tuple  # normalised label-relevant fields; two items with the same key are the same item
    instruction: str  # the task instruction, identical for every item of a task
    text: str  # the item itself (vignette, message, question, note); the near-duplicate check compares these
    chosen: str
    meta: dict  # meta shared by both rows
    data: object = None  # the builder's structured record (vignette, note...), used to write the rejected answer
    rejected: str = ""
    pair_meta: dict = field(default_factory=dict)  # extra meta for the preference row only (error_type, ...)


def token_set(text: str) -> frozenset[str]:
    """Lower-cased word tokens, the unit of the near-duplicate check."""
    return frozenset(re.findall(r"\w+", text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def assign_splits(n: dict[str, int], make_item: Callable[[int], Item | None]) -> dict[str, list[Item]]:
    """Fill each split with `n[split]` items whose keys never repeat and whose prompts are not near-duplicates of any
    prompt in another split. `make_item(i)` gets the number of items accepted so far (builders cycle target labels on
    it, so labels stay balanced even when candidates are rejected) and may return None to skip."""
    out: dict[str, list[Item]] = {s: [] for s in SPLITS}
    seen_keys: set[tuple] = set()
    held_out: list[frozenset[str]] = []  # token sets of items already placed in earlier-filled splits
    accepted = 0
    for split in FILL_ORDER:
        placed: list[frozenset[str]] = []
        attempts = 0
        while len(out[split]) < n.get(split, 0):
            attempts += 1
            if attempts > MAX_ATTEMPTS_PER_ITEM * max(1, n[split]):
                raise RuntimeError(f"could not generate {n[split]} distinct items for split {split!r}")
            item = make_item(accepted)
            if item is None or item.key in seen_keys:
                continue
            toks = token_set(item.text)
            if any(jaccard(toks, other) >= NEAR_DUP_JACCARD for other in held_out):
                continue
            seen_keys.add(item.key)
            placed.append(toks)
            out[split].append(item)
            accepted += 1
        held_out.extend(placed)
    return out


def to_rows(task: str, items: dict[str, list[Item]]) -> Rows:
    """Turn items into canonical SFT and preference rows with ids `task-split-0000`."""
    rows: Rows = {}
    for split in SPLITS:
        sft, pref = [], []
        for i, it in enumerate(items[split]):
            prompt = [{"role": "user", "content": f"{it.instruction}\n\n{it.text}"}]
            rid = f"{task}-{split}-{i:04d}"
            sft.append(
                {
                    "id": rid,
                    "task": task,
                    "prompt": prompt,
                    "completion": [{"role": "assistant", "content": it.chosen}],
                    "meta": dict(it.meta),
                }
            )
            pref.append(
                {
                    "id": rid,
                    "task": task,
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": it.chosen}],
                    "rejected": [{"role": "assistant", "content": it.rejected}],
                    "meta": {**it.meta, **it.pair_meta},
                }
            )
        rows[split] = {"sft": sft, "pref": pref}
    return rows


def resolve_mix(error_mix: dict[str, float] | None, default: dict[str, float]) -> dict[str, float]:
    """This task's share of each error type. Keys meant for other tasks are ignored; if none of this task's keys are
    given, the default applies; listed keys the user left out get weight 0."""
    if not error_mix or not any(k in default for k in error_mix):
        return dict(default)
    return {k: float(error_mix.get(k, 0.0)) for k in default}


class ErrorPicker:
    """Chooses error types deterministically so realised counts track the target mix as closely as the allowed types
    permit (largest deficit first), instead of drifting the way independent random draws do on small splits."""

    def __init__(self, mix: dict[str, float]) -> None:
        total = sum(mix.values())
        self.share = {k: (v / total if total > 0 else 0.0) for k, v in mix.items()}
        self.counts = dict.fromkeys(mix, 0)
        self.n = 0

    def pick(self, allowed: Iterable[str], rng: random.Random) -> str:
        allowed = [a for a in allowed if a in self.share]
        assert allowed, "no error type is possible for this item"
        weighted = [a for a in allowed if self.share[a] > 0] or allowed
        self.n += 1
        # deficit = how far below its target share this type is after this pick; ties broken by the seeded rng
        best = max(weighted, key=lambda a: (self.share[a] * self.n - self.counts[a], rng.random()))
        self.counts[best] += 1
        return best


class RejectedLabelPicker:
    """Picks the label of a rejected answer so that, within a split, each label is rejected about as often as it is
    chosen. Without this, DPO on label-changing pairs also learns a shift of the label prior (toward the labels that are
    seldom rejected, e.g. ESI 1 and 5 when errors move one level) instead of which label fits which input.
    add_errors gives each split a new one."""

    def __init__(self) -> None:
        self.chosen: dict = {}
        self.rejected: dict = {}

    def pick(self, gold, options: Iterable, rng: random.Random, prefer: Callable[[object], float] | None = None):
        """The option rejected least often relative to how often it was chosen so far (this pair's gold counted), then
        the one `prefer` ranks highest, then a seeded coin."""
        options = list(options)
        assert options, f"no wrong label to pick for {gold!r}"
        self.chosen[gold] = self.chosen.get(gold, 0) + 1

        def rank(w) -> tuple:
            deficit = self.chosen.get(w, 0) - self.rejected.get(w, 0)
            return (deficit, prefer(w) if prefer else 0.0, rng.random())

        wrong = max(options, key=rank)
        self.rejected[wrong] = self.rejected.get(wrong, 0) + 1
        return wrong


Corrupt = Callable[[Item, str, random.Random, RejectedLabelPicker], tuple[str, dict]]


def add_errors(
    items: dict[str, list[Item]],
    mix: dict[str, float],
    allowed: Callable[[Item], list[str]],
    corrupt: Corrupt,
    rng: random.Random,
    stratum: Callable[[Item], object] | None = None,
) -> None:
    """Give every item a rejected answer with one error type; each split is balanced on its own, and within a split
    each `stratum` (e.g. the gold label) on its own, so the error mix cannot alias with a label cycle in the item
    order. `corrupt(item, error_type, rng, labels)` writes the rejected answer; `labels` is the split's
    RejectedLabelPicker, for tasks whose errors change a label. Held-out splits go first so the size of train never
    changes their rejected answers."""
    for split in FILL_ORDER:
        pickers: dict[object, ErrorPicker] = {}
        labels = RejectedLabelPicker()
        for it in items[split]:
            key = stratum(it) if stratum is not None else None
            error_type = pickers.setdefault(key, ErrorPicker(mix)).pick(allowed(it), rng)
            it.rejected, extra = corrupt(it, error_type, rng, labels)
            assert it.rejected != it.chosen, (error_type, it.chosen)
            it.pair_meta = {"error_type": error_type, **extra}


def article(age: int) -> str:
    """'An' for ages read aloud with a vowel sound (8, 11, 18, 80-89), else 'A'."""
    return "An" if str(age).startswith("8") or age in (11, 18) else "A"
