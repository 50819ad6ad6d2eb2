"""Summarization build: key facts verbatim in chosen summaries, exactly the stated error in rejected ones."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from align.data.tasks import DEFAULT_SIZES
from align.data.tasks.summarization import DEFAULT_MIX, MEDS, build
from align.tasks.text import DRUG_LEXICON as DRUGS

DOSE = re.compile(r"\d+(?:\.\d+)? (?:mg|mcg|units)")


@pytest.fixture(scope="module")
def rows():
    return build(DEFAULT_SIZES["summarization"], seed=0)


def _missing(facts: list[str], text: str) -> list[str]:
    return [f for f in facts if f.lower() not in text.lower()]


def test_key_facts_verbatim_in_source_and_chosen(rows):
    for split in rows:
        for r in rows[split]["sft"]:
            facts, summary = r["meta"]["key_facts"], r["completion"][0]["content"]
            assert len(facts) >= 5
            assert _missing(facts, summary) == []
            assert _missing(facts, r["meta"]["source"]) == []
            assert r["meta"]["source"] in r["prompt"][0]["content"]
            assert len(summary.split()) < len(r["meta"]["source"].split())


def test_rejected_has_exactly_its_error(rows):
    med_names = {m for m, _, _ in MEDS}
    counts = Counter()
    for split in rows:
        for r in rows[split]["pref"]:
            meta, rejected = r["meta"], r["rejected"][0]["content"]
            facts, source, err = meta["key_facts"], meta["source"].lower(), meta["error_type"]
            counts[err] += 1
            missing = _missing(facts, rejected)
            if err == "hallucinated_fact":
                assert missing == []
                assert [d for d in DRUGS if d in rejected.lower() and d not in source]
            elif err == "wrong_dose":
                assert len(missing) == 1
                drug = next(m for m in med_names if missing[0].startswith(m + " "))
                new = re.search(re.escape(drug) + r" (" + DOSE.pattern + ")", rejected)
                assert new and new.group(1) not in missing[0]
            elif err == "dropped_allergy":
                assert missing == [f for f in facts if f.startswith("allergic to ")] and len(missing) == 1
            else:
                assert err == "flipped_laterality" and missing
                side = "left" if " left " in f" {missing[0]} " else "right"
                other = {"left": "right", "right": "left"}[side]
                assert missing[0].replace(side, other).lower() in rejected.lower()
    assert set(counts) == set(DEFAULT_MIX)
    assert max(counts.values()) <= 2 * min(counts.values()), counts


def test_drug_lexicon_covers_note_medications():
    assert {m for m, _, _ in MEDS} <= set(DRUGS)
    assert list(DRUGS) == sorted(set(DRUGS))


def test_deterministic_by_seed():
    sizes = {"train": 6, "eval": 2, "test": 2}
    assert build(sizes, seed=1) == build(sizes, seed=1)
    assert build(sizes, seed=1) != build(sizes, seed=2)
