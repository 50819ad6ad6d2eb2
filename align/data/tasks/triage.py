"""Emergency department triage (ESI v4): synthetic vignettes, labelled by a pure function of the ESI decision points.

`esi_level(v)` walks the ESI v4 algorithm: (A) needs an immediate life-saving intervention -> 1; (B) high-risk
situation, new confusion/lethargy/disorientation, severe pain (>= 7/10) or severe distress -> 2; (C) count the
expected resources from the complaint's table: >= 2 -> 3, upgraded to 2 by danger-zone vital signs (D); 1 -> 4;
0 -> 5. Vignettes are generated per target level so levels come out balanced, but the label always comes from
`esi_level`, never from the generator's intent. The answer walks the same decision points one line each before the
level (`walk_of`, rendered by triage_walk.py); a rejected answer reads one of them wrong.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from align.data.tasks.common import (
    Item,
    RejectedLabelPicker,
    Rows,
    add_errors,
    article,
    assign_splits,
    resolve_mix,
    to_rows,
)
from align.data.tasks.triage_table import COMPLAINTS, L1_OVERRIDES, MENTAL_TEXT, Complaint
from align.data.tasks.triage_walk import Walk, flip_levels, one_step_flips, same_level_wrong_resources
from align.tasks.builtin import TRIAGE

TASK = "triage"
INSTRUCTION = TRIAGE.instruction  # the task's own definition: align/tasks/builtin.py
DEFAULT_MIX = {"under_triage": 0.4, "over_triage": 0.4, "wrong_reason": 0.2}
NEW_ALTERED = {"confused": "new confusion", "lethargic": "lethargy", "disoriented": "disorientation"}


@dataclass(frozen=True)
class Vignette:
    """One ED patient at triage. hr/rr/sbp of 0 mean absent (pulseless, apneic, unobtainable)."""

    age: int
    sex: str  # "M" | "F"
    complaint: str  # key into COMPLAINTS
    hr: int
    sbp: int
    dbp: int
    rr: int
    spo2: int
    temp: float
    history: str
    mental: str  # "alert" | "confused" | "lethargic" | "disoriented" | "unresponsive"
    pain: int  # 0..10
    distress: str = "none"  # "none" | "mild" | "severe"
    perfusion: str = "normal"  # "normal" | "poor"


def danger_zone_limits(age: int) -> tuple[int, int]:
    """ESI v4 danger-zone HR and RR limits by age (years); SpO2 < 92 applies at every age."""
    if age < 3:
        return 160, 40
    if age <= 8:
        return 140, 30
    return 100, 20


def danger_zone_findings(v: Vignette) -> list[str]:
    hr_max, rr_max = danger_zone_limits(v.age)
    found = []
    if v.hr > hr_max:
        found.append(f"HR {v.hr} above {hr_max} (danger zone)")
    if v.rr > rr_max:
        found.append(f"RR {v.rr} above {rr_max} (danger zone)")
    if v.spo2 < 92:
        found.append(f"SpO2 {v.spo2}% below 92% (danger zone)")
    return found


def expected_resources(c: Complaint) -> tuple[str, ...]:
    """ESI counts resource *types*: several lab tests are one resource."""
    return tuple(dict.fromkeys(c.resources))


def life_saving_findings(v: Vignette) -> list[str]:
    """ESI decision point A: the findings that need an immediate life-saving intervention."""
    found = []
    if v.hr == 0:
        found.append("pulseless")
    if v.rr == 0:
        found.append("apneic")
    if v.mental == "unresponsive":
        found.append("unresponsive")
    if v.spo2 < 90 and v.distress == "severe":
        found.append(f"SpO2 {v.spo2}% with severe respiratory distress")
    if 0 < v.sbp < 80 and v.perfusion == "poor":
        found.append(f"systolic BP {v.sbp} with poor perfusion")
    return found


def high_risk_findings(v: Vignette) -> list[str]:
    """ESI decision point B: a high-risk situation, new confusion/lethargy/disorientation, severe pain or distress."""
    c = COMPLAINTS[v.complaint]
    found = []
    if c.high_risk:
        found.append(f"high-risk situation ({c.high_risk})")
    if v.mental in NEW_ALTERED:
        found.append(NEW_ALTERED[v.mental])
    if v.pain >= 7:
        found.append(f"severe pain {v.pain}/10")
    if v.distress == "severe":
        found.append("severe distress")
    return found


def esi_level(v: Vignette) -> tuple[int, list[str]]:
    """ESI v4 level and the findings that decided it (at the decision point that fired)."""
    c = COMPLAINTS[v.complaint]
    if life_saving := life_saving_findings(v):
        return 1, life_saving
    if high_risk := high_risk_findings(v):
        return 2, high_risk
    res = expected_resources(c)
    if len(res) >= 2:
        counted = f"{len(res)} resources expected ({', '.join(res)})"
        upgrade = danger_zone_findings(v)
        return (2, [counted, *upgrade]) if upgrade else (3, [counted])
    if len(res) == 1:
        return 4, [f"1 resource expected ({res[0]})"]
    return 5, ["no resources expected"]


# ---- rendering -----------------------------------------------------------------------------------------------------


def _who(v: Vignette) -> str:
    if v.age < 18:
        return "boy" if v.sex == "M" else "girl"
    return "man" if v.sex == "M" else "woman"


def _vitals(v: Vignette) -> dict[str, str]:
    return {
        "hr": "no palpable pulse" if v.hr == 0 else f"HR {v.hr}",
        "bp": "BP unobtainable" if v.sbp == 0 else f"BP {v.sbp}/{v.dbp}",
        "rr": "not breathing" if v.rr == 0 else f"RR {v.rr}",
        "spo2": "SpO2 not recordable" if v.spo2 == 0 else f"SpO2 {v.spo2}% on room air",
        "temp": f"temp {v.temp:.1f} °C",
    }


def _extras(v: Vignette) -> str:
    parts = []
    if v.distress == "severe":
        parts.append("In severe respiratory distress.")
    elif v.distress == "mild":
        parts.append("Appears uncomfortable.")
    if v.perfusion == "poor":
        parts.append("Skin cool, pale and mottled with delayed capillary refill.")
    return (" " + " ".join(parts)) if parts else ""


def render_vignette(v: Vignette, style: int) -> str:
    """Short natural triage text in one of three styles."""
    c, vt, hist = COMPLAINTS[v.complaint], _vitals(v), v.history or "none"
    pain = "Pain not assessable." if v.mental == "unresponsive" else f"Pain {v.pain}/10."
    mental = MENTAL_TEXT[v.mental]
    vitals = ", ".join(vt.values())
    if style == 0:
        return (
            f"{v.age}-year-old {_who(v)} with {c.text}. History: {hist}. {mental.capitalize()}. {vitals}. {pain}"
            + _extras(v)
        )
    if style == 1:
        return (
            f"{article(v.age)} {v.age}-year-old {_who(v)} presents with {c.text}. Past history: {hist}. "
            f"On arrival the patient is {mental}. Vital signs: {vitals}. {pain}{_extras(v)}"
        )
    return (
        f"Triage note: {v.age} y/o {'M' if v.sex == 'M' else 'F'}, {c.text}. PMH: {hist}. Mental status: {mental}. "
        f"Vitals: {' | '.join(vt.values())}. {pain}{_extras(v)}"
    )


# ---- answers -------------------------------------------------------------------------------------------------------


def walk_of(v: Vignette) -> Walk:
    """The ESI decision points as read from this vignette (align/data/tasks/triage_walk.py renders them)."""
    c = COMPLAINTS[v.complaint]
    pain = "pain not assessable" if v.mental == "unresponsive" else f"pain {v.pain}/10"
    read = (f"{c.short} ({c.high_risk})" if c.high_risk else c.short, NEW_ALTERED.get(v.mental, v.mental), pain)
    walk = Walk(
        life_saving=tuple(life_saving_findings(v)),
        high_risk_read=read + (("severe distress",) if v.distress == "severe" else ()),
        high_risk=bool(high_risk_findings(v)),
        resources=expected_resources(c),
        limits=danger_zone_limits(v.age),
        vitals=(v.hr, v.rr, v.spo2),
        danger=bool(danger_zone_findings(v)),
    )
    assert walk.level == esi_level(v)[0], walk  # the same decision points, read the same way
    return walk


def chosen_answer(v: Vignette) -> str:
    return walk_of(v).render()


def corrupt(item: Item, error_type: str, rng: random.Random, levels: RejectedLabelPicker) -> tuple[str, dict]:
    """A walk with one decision point read wrong: toward a later level (under-triage), an earlier one (over-triage),
    or the right level from the wrong resources (wrong_reason)."""
    walk, level = walk_of(item.data), item.meta["esi"]
    if error_type == "wrong_reason":
        wrong = same_level_wrong_resources(walk, rng)
        assert wrong is not None, item.meta
        return wrong.render(), {"rejected_esi": level}
    later = error_type == "under_triage"
    flips = [f for f in one_step_flips(walk, rng) if (f.level > level) == later]
    pick = levels.pick(level, sorted({f.level for f in flips}), rng, prefer=lambda w: -abs(w - level))
    flip = rng.choice([f for f in flips if f.level == pick])
    return flip.render(), {"rejected_esi": pick}


def allowed_errors(item: Item) -> list[str]:
    walk, level = walk_of(item.data), item.meta["esi"]
    reached = flip_levels(walk)
    return [
        e
        for e, ok in (
            ("under_triage", any(w > level for w in reached)),
            ("over_triage", any(w < level for w in reached)),
            ("wrong_reason", same_level_wrong_resources(walk, random.Random(0)) is not None),
        )
        if ok
    ]


# ---- generation ----------------------------------------------------------------------------------------------------


def _pick_complaint(rng: random.Random, group: str) -> tuple[str, Complaint]:
    keys = sorted(k for k, c in COMPLAINTS.items() if c.group == group)
    key = rng.choice(keys)
    return key, COMPLAINTS[key]


def _normal_vignette(rng: random.Random, key: str, c: Complaint) -> Vignette:
    age = rng.randint(*c.ages)
    sex = c.sex or rng.choice("MF")
    if age <= 8:
        hr, rr, sbp = rng.randint(80, 125), rng.randint(18, 26), rng.randint(92, 112)
    elif age < 18:
        hr, rr, sbp = rng.randint(65, 98), rng.randint(14, 20), rng.randint(100, 122)
    else:
        hr, rr, sbp = rng.randint(60, 96), rng.randint(12, 18), rng.randint(108, 152)
    fever = c.fever and rng.random() < 0.8
    temp = round(rng.uniform(38.1, 39.6) if fever else rng.uniform(36.4, 37.4), 1)
    pain = rng.randint(*c.pain)
    history = rng.choice(c.histories) if age >= 18 else rng.choice(("", "asthma", "no prior illnesses"))
    return Vignette(
        age=age,
        sex=sex,
        complaint=key,
        hr=hr,
        sbp=sbp,
        dbp=rng.randint(min(60, sbp - 40), min(95, sbp - 30)),
        rr=rr,
        spo2=rng.randint(95, 100),
        temp=temp,
        history=history,
        mental="alert",
        pain=pain,
        distress="mild" if pain >= 4 and rng.random() < 0.5 else "none",
    )


def _danger_zone(rng: random.Random, v: Vignette) -> Vignette:
    hr_max, rr_max = danger_zone_limits(v.age)
    which = rng.choice(("hr", "rr", "spo2", "hr+rr"))
    changes: dict = {}
    if "hr" in which:
        changes["hr"] = hr_max + rng.randint(4, 30)
    if "rr" in which:
        changes["rr"] = rr_max + rng.randint(2, 10)
    if which == "spo2":
        changes["spo2"] = rng.randint(90, 91)  # below 92 but not the < 90 + distress of level 1
    return _replace(v, **changes)


def _replace(v: Vignette, **changes) -> Vignette:
    return Vignette(**{**v.__dict__, **changes})


def make_vignette(rng: random.Random, counter: int) -> Vignette:
    """A vignette aimed at level (counter % 5) + 1; level 2 cycles through its triggers."""
    target = counter % 5 + 1
    if target == 1:
        key, c = _pick_complaint(rng, "L1")
        return _replace(_normal_vignette(rng, key, c), **L1_OVERRIDES[key](rng))
    if target == 2:
        trigger = (counter // 5) % 4
        if trigger == 0:
            key, c = _pick_complaint(rng, "high_risk")
            return _normal_vignette(rng, key, c)
        key, c = _pick_complaint(rng, rng.choice(("two", "two", "one")) if trigger < 3 else "two")
        v = _normal_vignette(rng, key, c)
        if trigger == 1:
            return _replace(v, mental=rng.choice(sorted(NEW_ALTERED)), age=max(v.age, rng.randint(60, 92)))
        if trigger == 2:
            return _replace(v, pain=rng.randint(7, 10), distress="mild")
        return _danger_zone(rng, v)
    key, c = _pick_complaint(rng, {3: "two", 4: "one", 5: "zero"}[target])
    return _normal_vignette(rng, key, c)


def vignette_key(v: Vignette) -> tuple:
    """Label-relevant fields with vitals rounded, so near-identical patients collide."""
    return (v.complaint, v.age // 5, v.sex, v.history, v.mental, v.pain, v.hr // 4, v.sbp // 8, v.rr // 3, v.spo2)


def build(n: dict[str, int], seed: int, error_mix: dict[str, float] | None = None) -> Rows:
    """{split: {"sft": rows, "pref": rows}} with n[split] distinct vignettes per split."""
    rng = random.Random(f"{seed}-{TASK}")

    def make_item(counter: int) -> Item | None:
        v = make_vignette(rng, counter)
        level, findings = esi_level(v)
        meta = {"esi": level, "deciding_findings": findings}
        return Item(vignette_key(v), INSTRUCTION, render_vignette(v, rng.randrange(3)), chosen_answer(v), meta, v)

    items = assign_splits(n, make_item)
    err_rng = random.Random(f"{seed}-{TASK}-err")
    # stratum: each level gets the error mix its allowed types permit
    add_errors(items, resolve_mix(error_mix, DEFAULT_MIX), allowed_errors, corrupt, err_rng, lambda it: it.meta["esi"])
    return to_rows(TASK, items)
