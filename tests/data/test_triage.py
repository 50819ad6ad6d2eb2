"""ESI v4 labelling on hand-written vignettes (every decision point), the walk answers and their one-step errors, and
the properties of the triage build."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from align.data.tasks import DEFAULT_SIZES
from align.data.tasks.triage import DEFAULT_MIX, Vignette, build, esi_level, walk_of
from align.data.tasks.triage_walk import flip_levels, one_step_flips, same_level_wrong_resources
from align.tasks.parse import parse_esi

# A, then B..D as far as the deciding point, then the level; parse_esi reads the last line
FORMAT = re.compile(
    r"^A\. [^\n]+(?:\nB\. [^\n]+ -> (?:yes|no))?(?:\nC\. [^\n]+ -> \d)?(?:\nD\. [^\n]+ -> (?:yes|no))?\nESI level: ([1-5])$"
)


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
            answer = r["completion"][0]["content"]
            m = FORMAT.match(answer)
            assert m, answer
            assert int(m.group(1)) == r["meta"]["esi"] == parse_esi(answer)


def _first_difference(chosen: str, rejected: str) -> tuple[str, str]:
    return next((a, b) for a, b in zip(chosen.split("\n"), rejected.split("\n"), strict=False) if a != b)


def test_rejected_answers_read_one_decision_point_wrong(rows):
    counts = Counter()
    for split in rows:
        for r in rows[split]["pref"]:
            meta, chosen, rejected = r["meta"], r["chosen"][0]["content"], r["rejected"][0]["content"]
            m = FORMAT.match(rejected)
            assert m and int(m.group(1)) == meta["rejected_esi"], rejected
            err, esi, wrong = meta["error_type"], meta["esi"], meta["rejected_esi"]
            counts[err] += 1
            assert {"under_triage": wrong > esi, "over_triage": wrong < esi, "wrong_reason": wrong == esi}[err]
            ours, theirs = _first_difference(chosen, rejected)
            assert ours[:2] == theirs[:2], (chosen, rejected)  # the same decision point, read differently
            if ours[:2] in ("B.", "D."):  # what was read is right; the verdict is wrong
                assert ours.rsplit(" -> ", 1)[0] == theirs.rsplit(" -> ", 1)[0]
            if err == "wrong_reason":  # as many resources, the wrong ones
                assert ours.startswith("C.") and ours[-1] == theirs[-1]
    assert set(counts) == set(DEFAULT_MIX)
    assert counts["under_triage"] <= 2 * counts["over_triage"] and counts["over_triage"] <= 2 * counts["under_triage"]


WALKS = [
    ({}, "A. Life-saving intervention: no\nB. High-risk: ankle injury; alert; pain 4/10 -> no\n"
         "C. Resources: X-ray -> 1\nESI level: 4"),
    ({"complaint": "acs"}, "A. Life-saving intervention: no\n"
     "B. High-risk: chest pressure (possible acute coronary syndrome); alert; pain 4/10 -> yes\nESI level: 2"),
    ({"mental": "lethargic"}, "A. Life-saving intervention: no\nB. High-risk: ankle injury; lethargy; pain 4/10 -> yes\n"
     "ESI level: 2"),
    ({"complaint": "fever_cough", "hr": 101}, "A. Life-saving intervention: no\n"
     "B. High-risk: cough and fever; alert; pain 4/10 -> no\nC. Resources: labs, X-ray -> 2\n"
     "D. Danger zone (HR > 100, RR > 20, SpO2 < 92): HR 101, RR 16, SpO2 98% -> yes\nESI level: 2"),
    ({"complaint": "fever_cough", "age": 6, "hr": 130}, "A. Life-saving intervention: no\n"
     "B. High-risk: cough and fever; alert; pain 4/10 -> no\nC. Resources: labs, X-ray -> 2\n"
     "D. Danger zone (HR > 140, RR > 30, SpO2 < 92): HR 130, RR 16, SpO2 98% -> no\nESI level: 3"),
    ({"spo2": 86, "distress": "severe"}, "A. Life-saving intervention: yes (SpO2 86% with severe respiratory distress)\n"
     "ESI level: 1"),
    ({"complaint": "sore_throat"}, "A. Life-saving intervention: no\nB. High-risk: sore throat; alert; pain 4/10 -> no\n"
     "C. Resources: none -> 0\nESI level: 5"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "answer"), WALKS)
def test_walk_answers_by_hand(changes, answer):
    assert walk_of(vig(**changes)).render() == answer


@pytest.mark.parametrize(
    ("changes", "levels"),
    [
        ({}, {1, 2, 3, 5}),  # A or B imagined; the X-ray missed; a resource imagined (2, no danger zone: 3)
        ({"complaint": "fever_cough", "hr": 101}, {1, 3, 4, 5}),  # B imagined is still 2; D missed; resources missed
        ({"complaint": "rlq_pain"}, {1, 2, 4, 5}),  # one of 3 resources missed is still 3; two or all missed: 4, 5
        ({"spo2": 86, "distress": "severe"}, {2}),  # A missed: B's severe distress still makes it 2
        ({"complaint": "acs"}, {1, 3}),  # A imagined; the high-risk situation missed: 3 resources, no danger zone
    ],
)
def test_one_step_flips_reach_these_levels(changes, levels):
    walk = walk_of(vig(**changes))
    assert flip_levels(walk) == levels
    assert all(f.level != walk.level for f in one_step_flips(walk, random.Random(1)))


def test_wrong_resources_keep_the_level_and_the_count():
    for changes in ({}, {"complaint": "rlq_pain"}):
        walk = walk_of(vig(**changes))
        wrong = same_level_wrong_resources(walk, random.Random(0))
        assert wrong.level == walk.level and len(wrong.resources) == len(walk.resources)
        assert not set(wrong.resources) & set(walk.resources)
    for changes in ({"complaint": "acs"}, {"complaint": "fever_cough", "hr": 101}, {"complaint": "sore_throat"}):
        assert same_level_wrong_resources(walk_of(vig(**changes)), random.Random(0)) is None


def test_error_mix_is_honoured():
    rows = build({"train": 50, "eval": 5, "test": 5}, seed=1, error_mix={"under_triage": 1.0})
    for r in rows["train"]["pref"]:
        if r["meta"]["esi"] < 5:  # level 5 cannot be under-triaged
            assert r["meta"]["error_type"] == "under_triage"


def test_deterministic_by_seed():
    a, b, c = (build({"train": 20, "eval": 5, "test": 5}, seed=s) for s in (3, 3, 4))
    assert a == b
    assert a != c
