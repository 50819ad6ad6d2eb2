"""ESI v4 labelling on hand-written vignettes (every decision point) and the properties of the triage build."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from align.data.tasks import DEFAULT_SIZES
from align.data.tasks.triage import DEFAULT_MIX, Vignette, build, esi_level

FORMAT = re.compile(r"^ESI level: ([1-5])\nRationale: \S.*$", re.S)


def vig(**changes) -> Vignette:
    """A stable adult with a twisted ankle (1 resource: X-ray) unless changed."""
    base = dict(age=40, sex="F", complaint="ankle", hr=80, sbp=125, dbp=80, rr=16, spo2=98, temp=36.8,
                history="", mental="alert", pain=4)  # fmt: skip
    return Vignette(**{**base, **changes})


@pytest.mark.parametrize(
    ("changes", "level", "finding"),
    [
        ({"mental": "unresponsive", "complaint": "overdose"}, 1, "unresponsive"),
        ({"rr": 0, "mental": "unresponsive"}, 1, "apneic"),
        ({"hr": 0, "rr": 0, "sbp": 0, "mental": "unresponsive"}, 1, "pulseless"),
        ({"spo2": 86, "distress": "severe"}, 1, "SpO2 86% with severe respiratory distress"),
        ({"sbp": 72, "perfusion": "poor"}, 1, "systolic BP 72 with poor perfusion"),
        ({"complaint": "acs"}, 2, "possible acute coronary syndrome"),
        ({"complaint": "stroke", "pain": 0}, 2, "possible acute stroke"),
        ({"mental": "confused"}, 2, "new confusion"),
        ({"mental": "lethargic"}, 2, "lethargy"),
        ({"mental": "disoriented"}, 2, "disorientation"),
        ({"pain": 7}, 2, "severe pain 7/10"),
        ({"distress": "severe"}, 2, "severe distress"),
        ({"complaint": "fever_cough"}, 3, "2 resources expected (labs, X-ray)"),
        ({"complaint": "rlq_pain"}, 3, "3 resources expected (labs, CT, IV fluids)"),
        ({"complaint": "fever_cough", "hr": 101}, 2, "HR 101 above 100 (danger zone)"),
        ({"complaint": "fever_cough", "rr": 21}, 2, "RR 21 above 20 (danger zone)"),
        ({"complaint": "fever_cough", "spo2": 91}, 2, "SpO2 91% below 92% (danger zone)"),
        ({"complaint": "fever_cough", "age": 6, "hr": 141}, 2, "HR 141 above 140 (danger zone)"),
        ({}, 4, "1 resource expected (X-ray)"),
        ({"complaint": "laceration"}, 4, "1 resource expected (simple procedure)"),
        ({"complaint": "sore_throat"}, 5, "no resources expected"),
    ],
)
def test_esi_decision_points(changes, level, finding):
    got, findings = esi_level(vig(**changes))
    assert got == level
    assert any(finding in f for f in findings), findings


@pytest.mark.parametrize(
    ("changes", "level"),
    [
        ({"spo2": 86}, 4),  # low SpO2 without severe distress is not level 1, and danger zone only upgrades 3
        ({"sbp": 75}, 4),  # hypotension with normal perfusion is not level 1 by itself here
        ({"pain": 6}, 4),  # 6/10 is below the severe-pain threshold
        ({"complaint": "fever_cough", "hr": 100, "rr": 20, "spo2": 92}, 3),  # limits are exclusive
        ({"complaint": "fever_cough", "age": 6, "hr": 130, "rr": 28}, 3),  # child limits are higher
        ({"hr": 130}, 4),  # tachycardia does not upgrade a one-resource patient
    ],
)
def test_esi_boundaries(changes, level):
    assert esi_level(vig(**changes))[0] == level


@pytest.fixture(scope="module")
def rows():
    return build(DEFAULT_SIZES["triage"], seed=0)


def test_sizes_and_balanced_levels(rows):
    for split, n in DEFAULT_SIZES["triage"].items():
        assert len(rows[split]["sft"]) == len(rows[split]["pref"]) == n
    levels = Counter(r["meta"]["esi"] for r in rows["train"]["sft"])
    assert set(levels) == {1, 2, 3, 4, 5}
    assert max(levels.values()) <= 1.2 * min(levels.values()), levels


def test_chosen_format_matches_meta(rows):
    for split in rows:
        for r in rows[split]["sft"]:
            m = FORMAT.match(r["completion"][0]["content"])
            assert m, r["completion"]
            assert int(m.group(1)) == r["meta"]["esi"]
            rationale = r["completion"][0]["content"].lower()
            assert all(f.lower() in rationale for f in r["meta"]["deciding_findings"])


def test_rejected_errors_have_the_stated_direction(rows):
    counts = Counter()
    for split in rows:
        for r in rows[split]["pref"]:
            meta, rejected = r["meta"], r["rejected"][0]["content"]
            assert rejected != r["chosen"][0]["content"]
            m = FORMAT.match(rejected)
            assert m and int(m.group(1)) == meta["rejected_esi"]
            err, esi, wrong = meta["error_type"], meta["esi"], meta["rejected_esi"]
            counts[err] += 1
            assert {"under_triage": wrong > esi, "over_triage": wrong < esi, "wrong_reason": wrong == esi}[err]
            if err == "wrong_reason":
                assert not any(f.lower() in rejected.lower() for f in meta["deciding_findings"])
    assert set(counts) == set(DEFAULT_MIX)
    assert counts["under_triage"] <= 2 * counts["over_triage"] and counts["over_triage"] <= 2 * counts["under_triage"]


def test_error_mix_is_honoured():
    rows = build({"train": 50, "eval": 5, "test": 5}, seed=1, error_mix={"under_triage": 1.0})
    for r in rows["train"]["pref"]:
        if r["meta"]["esi"] < 5:  # level 5 cannot be under-triaged
            assert r["meta"]["error_type"] == "under_triage"


def test_deterministic_by_seed():
    a, b, c = (build({"train": 20, "eval": 5, "test": 5}, seed=s) for s in (3, 3, 4))
    assert a == b
    assert a != c
