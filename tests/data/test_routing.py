"""Provider routing build: answer format, balanced routes, and rejected answers that err in the stated direction."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from align.data.tasks import DEFAULT_SIZES
from align.data.tasks.routing import ROUTES, build

FORMAT = re.compile(r"^Route to: (physician|nurse|pharmacist|front_desk)\nReason: \S.*$", re.S)


@pytest.fixture(scope="module")
def rows():
    return build(DEFAULT_SIZES["provider_routing"], seed=0)


def test_chosen_format_and_balanced_routes(rows):
    for split in rows:
        labels = Counter()
        for r in rows[split]["sft"]:
            m = FORMAT.match(r["completion"][0]["content"])
            assert m and m.group(1) == r["meta"]["label"]
            assert r["prompt"][0]["content"].count("Message: ") == 1
            labels[m.group(1)] += 1
        assert set(labels) == set(ROUTES)
        assert max(labels.values()) - min(labels.values()) <= 1, labels  # cycled on accepted items


def test_keyword_examples_route_as_documented(rows):
    for r in rows["train"]["sft"]:
        text, label = r["prompt"][0]["content"], r["meta"]["label"]
        if "send a refill" in text:
            assert label == "pharmacist"
        if "received a bill" in text or "book my yearly physical" in text:
            assert label == "front_desk"
        if "dressing got wet" in text:
            assert label == "nurse"
        if "came back with" in text:
            assert label == "physician"


def test_rejected_direction_and_balance(rows):
    counts = Counter()
    for split in rows:
        for r in rows[split]["pref"]:
            meta = r["meta"]
            assert r["rejected"] != r["chosen"]
            m = FORMAT.match(r["rejected"][0]["content"])
            assert m and m.group(1) == meta["rejected_label"]
            right, wrong = ROUTES.index(meta["label"]), ROUTES.index(meta["rejected_label"])
            err = meta["error_type"]
            counts[err] += 1
            assert {
                "under_escalation": wrong < right,
                "over_escalation": wrong > right,
                "wrong_reason": wrong == right,
            }[err]
    assert counts["wrong_reason"] > 0
    assert counts["under_escalation"] <= 2 * counts["over_escalation"] <= 4 * counts["under_escalation"]


def test_deterministic_by_seed():
    sizes = {"train": 12, "eval": 4, "test": 4}
    assert build(sizes, seed=5) == build(sizes, seed=5)
    assert build(sizes, seed=5) != build(sizes, seed=6)
