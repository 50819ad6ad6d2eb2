"""The triage answer: a walk through the ESI v4 decision points A-D, one line each, then the level on the last line.

Each line is checkable from the vignette (what it read, then its verdict), and the level follows from the verdicts by
the ESI rule (`Walk.level`), so a 135M model learns one small step at a time instead of the whole decision in one
token. Rejected answers (`one_step_flips`) get exactly one decision point wrong and follow the rule from there, so a
preference pair differs at the step that decided the level, not only in the final digit.

    A. Life-saving intervention: no
    B. High-risk: abdominal pain; alert; pain 3/10 -> no
    C. Resources: labs, CT, IV fluids -> 3
    D. Danger zone (HR > 100, RR > 20, SpO2 < 92): HR 67, RR 18, SpO2 96% -> no
    ESI level: 3
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from align.data.tasks.triage_table import RESOURCE_TYPES  # an overcount adds a type the complaint does not need


@dataclass(frozen=True)
class Walk:
    """The four ESI decision points as a triager reads them; only the lines up to the one that decides are written."""

    life_saving: tuple[str, ...]  # A: the findings needing a life-saving intervention (none = no)
    high_risk_read: tuple[str, ...]  # B: what was checked (complaint, mental status, pain, distress)
    high_risk: bool  # B: the verdict
    resources: tuple[str, ...]  # C: the expected resource types
    limits: tuple[int, int]  # D: the age's danger-zone HR and RR limits
    vitals: tuple[int, int, int]  # D: HR, RR, SpO2 as read
    danger: bool  # D: the verdict

    @property
    def level(self) -> int:
        """ESI v4 from the verdicts: A -> 1; B -> 2; >= 2 resources -> 3, or 2 with danger-zone vitals; 1 -> 4; 0 -> 5."""
        if self.life_saving:
            return 1
        if self.high_risk:
            return 2
        if len(self.resources) >= 2:
            return 2 if self.danger else 3
        return 4 if self.resources else 5

    def render(self) -> str:
        lines = [
            f"A. Life-saving intervention: {'yes (' + '; '.join(self.life_saving) + ')' if self.life_saving else 'no'}"
        ]
        if not self.life_saving:
            lines.append(f"B. High-risk: {'; '.join(self.high_risk_read)} -> {_yes_no(self.high_risk)}")
        if not self.life_saving and not self.high_risk:
            listed = ", ".join(self.resources) if self.resources else "none"
            lines.append(f"C. Resources: {listed} -> {len(self.resources)}")
            if len(self.resources) >= 2:
                (hr_max, rr_max), (hr, rr, spo2) = self.limits, self.vitals
                lines.append(
                    f"D. Danger zone (HR > {hr_max}, RR > {rr_max}, SpO2 < 92): HR {hr}, RR {rr}, SpO2 {spo2}% -> "
                    + _yes_no(self.danger)
                )
        return "\n".join([*lines, f"ESI level: {self.level}"])


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def one_step_flips(walk: Walk, rng: random.Random) -> list[Walk]:
    """Every walk that reads one decision point wrong at or before the point that decided, each with another level.

    A missed or imagined life-saving need; a missed or imagined high-risk situation; resources missed, or one too many;
    danger-zone vitals missed or imagined. Points after the deciding one are not written, so they cannot be wrong."""
    flips = [replace(walk, life_saving=() if walk.life_saving else (f"{walk.high_risk_read[0]} could deteriorate",))]
    if not walk.life_saving:
        flips.append(replace(walk, high_risk=not walk.high_risk))
    if not walk.life_saving and not walk.high_risk:
        flips += [replace(walk, resources=walk.resources[:k]) for k in range(len(walk.resources))]
        extra = [r for r in RESOURCE_TYPES if r not in walk.resources]
        flips.append(replace(walk, resources=(*walk.resources, rng.choice(extra))))
        if len(walk.resources) >= 2:
            flips.append(replace(walk, danger=not walk.danger))
    return [f for f in flips if f.level != walk.level]


def same_level_wrong_resources(walk: Walk, rng: random.Random) -> Walk | None:
    """The right level for a wrong reason: as many resources, but not the ones this complaint needs (levels 3-4)."""
    if walk.life_saving or walk.high_risk or not walk.resources or walk.danger:
        return None
    others = [r for r in RESOURCE_TYPES if r not in walk.resources]
    return replace(walk, resources=tuple(rng.sample(others, len(walk.resources))))


def flip_levels(walk: Walk) -> set[int]:
    """The levels one wrong decision point can reach (which extra resource an overcount adds does not change them)."""
    return {f.level for f in one_step_flips(walk, random.Random(0))}
