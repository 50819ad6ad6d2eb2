"""Rejected labels track chosen labels: the picker by hand, and every bundled label task's splits."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from align.data.tasks import DEFAULT_SIZES, reasoning, routing, triage
from align.data.tasks.common import Item, RejectedLabelPicker, add_errors


def test_picker_prefers_the_most_under_rejected_label_then_prefer_then_coin():
    p = RejectedLabelPicker()
    rng = random.Random(0)
    # gold 2 chosen once; options 1 and 3 both have deficit 0 -> prefer decides (nearer to 2.9 wins)
    assert p.pick(2, [1, 3], rng, prefer=lambda w: -abs(w - 2.9)) == 3
    # chosen {2: 2}, rejected {3: 1}: deficits 1: 0 - 0 = 0, 3: 0 - 1 = -1 -> 1
    assert p.pick(2, [1, 3], rng) == 1
    # gold 1 chosen: deficits 1: 1-1 = 0, 2: 2-0 = 2, 3: -1 -> 2
    assert p.pick(1, [2, 3], rng) == 2
    assert p.chosen == {2: 2, 1: 1} and p.rejected == {3: 1, 1: 1, 2: 1}


def test_picker_refuses_an_empty_option_list():
    with pytest.raises(AssertionError):
        RejectedLabelPicker().pick(1, [], random.Random(0))


def test_add_errors_balances_the_mix_per_stratum_with_a_new_label_picker_per_split():
    # labels cycle 0,1,0,1...; with one picker per split the 50/50 mix would alias onto the label cycle
    items = {s: [Item((s, i), "", f"{s}{i}", "ok", {"y": i % 2}) for i in range(8)] for s in ("train", "eval", "test")}
    pickers: dict[str, list[RejectedLabelPicker]] = {}  # holds the pickers, so no id() is reused while we compare

    def corrupt(it: Item, error: str, rng: random.Random, labels: RejectedLabelPicker) -> tuple[str, dict]:
        pickers.setdefault(it.text[:-1], []).append(labels)
        return error, {}

    add_errors(items, {"a": 0.5, "b": 0.5}, lambda it: ["a", "b"], corrupt, random.Random(0), lambda it: it.meta["y"])
    assert all(all(p is seen[0] for p in seen) for seen in pickers.values())  # one picker within a split
    assert len({id(seen[0]) for seen in pickers.values()}) == 3  # a new one for each split
    for split in items:
        per_label = Counter((it.meta["y"], it.rejected) for it in items[split])
        assert per_label == {(0, "a"): 2, (0, "b"): 2, (1, "a"): 2, (1, "b"): 2}


# (task, gold field, rejected field, largest gap allowed as a share of a split's pairs). A triage reject reads one
# decision point wrong and its level follows from the walk (a missed life-saving need lands on 2 or later), so the
# picker balances among the levels one wrong point reaches: within 6 % there (measured: 5 of 220 train pairs, 4 of 74 test pairs), within 2 pairs where any label can be
# picked.
CASES = [
    (triage, "esi", "rejected_esi", 0.06),
    (routing, "label", "rejected_label", 0.0),
    (reasoning, "answer", "rejected_answer", 0.0),
]


@pytest.mark.parametrize(("task", "gold", "rejected", "share"), CASES, ids=lambda c: getattr(c, "TASK", ""))
def test_each_label_is_rejected_about_as_often_as_it_is_chosen(task, gold, rejected, share):
    sizes = DEFAULT_SIZES[task.TASK]  # the bundled sizes
    rows = task.build(sizes, seed=0)
    for split in sizes:
        pairs = [r["meta"] for r in rows[split]["pref"] if r["meta"]["error_type"] != "wrong_reason"]
        chosen, rej = Counter(m[gold] for m in pairs), Counter(m[rejected] for m in pairs)
        assert all(m[gold] != m[rejected] for m in pairs)
        gap = max(abs(chosen[k] - rej[k]) for k in chosen | rej)
        assert gap <= max(2, share * len(pairs)), (split, chosen, rej)


def test_triage_error_mix_is_spread_over_levels():
    """Every ESI level gets wrong-level pairs (the old single picker put all wrong-reason pairs on one level)."""
    sizes = DEFAULT_SIZES[triage.TASK]
    rows = triage.build(sizes, seed=0)
    per_level = Counter(r["meta"]["esi"] for r in rows["train"]["pref"] if r["meta"]["error_type"] != "wrong_reason")
    assert set(per_level) == {1, 2, 3, 4, 5} and min(per_level.values()) >= 0.5 * sizes["train"] / 5
