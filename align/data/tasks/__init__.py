"""Bundled clinical task builders: `TASKS[name](n, seed, error_mix)` -> {split: {"sft": rows, "pref": rows}}.

Every builder is deterministic given its seed (its own `random.Random`, never the global one), fills test, then
eval, then train, and keeps near-duplicates out of different splits (see `common.assign_splits`).
"""

from __future__ import annotations

from collections.abc import Callable

from align.data.tasks import reasoning, routing, summarization, triage

TaskBuilder = Callable[[dict[str, int], int, "dict[str, float] | None"], dict[str, dict[str, list[dict]]]]

TASKS: dict[str, TaskBuilder] = {
    "triage": triage.build,
    "provider_routing": routing.build,
    "reasoning": reasoning.build,
    "summarization": summarization.build,
}

# distinct items per split, sized so the whole SFT + DPO pipeline runs on a 2-core CPU
DEFAULT_SIZES: dict[str, dict[str, int]] = {
    "triage": {"train": 240, "eval": 24, "test": 80},
    "provider_routing": {"train": 120, "eval": 16, "test": 48},
    "reasoning": {"train": 240, "eval": 24, "test": 80},
    "summarization": {"train": 80, "eval": 12, "test": 24},
}

ERROR_TYPES: dict[str, tuple[str, ...]] = {
    "triage": tuple(triage.DEFAULT_MIX),
    "provider_routing": tuple(routing.DEFAULT_MIX),
    "reasoning": tuple(reasoning.DEFAULT_MIX),
    "summarization": tuple(summarization.DEFAULT_MIX),
}
