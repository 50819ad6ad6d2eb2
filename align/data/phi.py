"""Scan canonical rows for likely protected health information (PHI) before training on them.

Patterns look for identifiers, not clinical content: phone numbers, e-mail addresses, SSNs, MRN-like ids after a
record label, dates of birth (a date after a DOB/born label), street addresses, and names after a title. Vital
signs (BP 120/80), doses (500 mg), lab values, ages, ESI levels and visit dates without a birth label do not match.
The report holds counts and row locations only, never the matched text, so it is safe to print and log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from align.errors import UserError

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DATE = rf"(?:\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}}|\d{{4}}-\d{{2}}-\d{{2}}|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|\d{{1,2}}\s+{_MONTH}\s+\d{{4}})"
_NAME = r"[A-Z](?:['’][A-Z])?[a-z][A-Za-z'’-]*"  # Smith, O'Neil, McDonald, Smith-Jones; not ED or ICU
_STREET = r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Circle|Parkway|Pkwy|Highway|Hwy)"

PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"),
    "phone": re.compile(r"(?<![\w/.-])(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w/-])"),
    "ssn": re.compile(r"(?<![\w/-])\d{3}-\d{2}-\d{4}(?![\w/-])|\bSSN\s*[:#]?\s*\d{9}\b"),
    "mrn": re.compile(
        r"\b(?:MRN|medical record(?: number| no\.?| #)?|record (?:number|no\.?|#)|patient id|chart (?:number|no\.?|#))"
        r"\s*(?:is\s+|was\s+)?[:#]?\s*[A-Z]{0,3}\d{6,10}\b",
        re.IGNORECASE,
    ),
    "dob": re.compile(
        rf"\b(?:DOB|D\.O\.B\.|date of birth|birth ?date)\s*(?:is\s+|was\s+|of\s+)?[:#-]?\s*{_DATE}|\bborn (?:on )?{_DATE}",
        re.IGNORECASE,
    ),
    "address": re.compile(rf"\b\d{{1,6}}\s+(?:{_NAME}\s+){{1,3}}{_STREET}\b"),
    "name": re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?\s+{_NAME}(?:\s+{_NAME})?"),
}
TEXT_FIELDS = ("prompt", "chosen", "rejected", "completion", "text")  # text: domain corpus documents
MAX_LOCATIONS = 10  # per kind in the printed report; the counts stay exact


@dataclass
class PhiReport:
    """Counts per kind and where they are, never the matched text.

    A location is `path:line field` (e.g. `data/train.jsonl:4 prompt`) for rows the reader returned, which know
    their line; a row built in memory is named by its id (`triage-3 prompt`), else its index (`row 3 prompt`).
    """

    rows_scanned: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    locations: dict[str, list[str]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not any(self.counts.values())

    def summary(self) -> str:
        """`2 phone, 1 email` (kinds with hits, in pattern order)."""
        return ", ".join(f"{self.counts[k]} {k}" for k in PATTERNS if self.counts.get(k))

    def format(self) -> str:
        if self.clean:
            return f"PHI scan: clean ({self.rows_scanned} rows scanned)"
        lines = [f"PHI scan: possible identifiers in {self.rows_scanned} rows scanned: {self.summary()}"]
        for kind in PATTERNS:
            where = self.locations.get(kind, [])
            if where:
                more = f" and {len(where) - MAX_LOCATIONS} more" if len(where) > MAX_LOCATIONS else ""
                lines.append(f"  {kind}: {', '.join(where[:MAX_LOCATIONS])}{more}")
        return "\n".join(lines)


def scan_text(text: str) -> dict[str, int]:
    """Hit counts per kind in one string (kinds without hits are left out)."""
    counts = {kind: len(pattern.findall(text)) for kind, pattern in PATTERNS.items()}
    return {k: n for k, n in counts.items() if n}


def scan_phi(rows: Iterable[dict[str, Any]]) -> PhiReport:
    """Scan every message content of prompt/chosen/rejected/completion (and `text`) in canonical rows."""
    report = PhiReport()
    for i, row in enumerate(rows):
        report.rows_scanned += 1
        where = _where(row, i)
        for name in TEXT_FIELDS:
            for kind, n in scan_text(_field_text(row.get(name))).items():
                report.counts[kind] = report.counts.get(kind, 0) + n
                report.locations.setdefault(kind, []).append(f"{where} {name}")
    return report


def _where(row: dict[str, Any], i: int) -> str:
    """`path:line` (a `formats.Row` carries it as an attribute), else the row's id, else its index."""
    source = getattr(row, "source", None)
    return str(source or row.get("id") or f"row {i}")


def _field_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # messages; contents are joined with a blank line so patterns never span two
        return "\n\n".join(m.get("content") or "" for m in value if isinstance(m, dict))
    return ""


def require_no_phi(rows: Iterable[dict[str, Any]], allow_phi: bool, where: str) -> PhiReport:
    """Raise UserError if rows look like they hold PHI, unless the user said the data is de-identified."""
    report = scan_phi(rows)
    if not report.clean and not allow_phi:
        first = next(iter(v[0] for v in report.locations.values() if v))
        raise UserError(
            f"possible protected health information: {report.summary()} (first in {first}); run "
            "`align data validate` to list the rows",
            "remove or de-identify it, or if the data is already de-identified set `allow_phi: true` in the recipe "
            "or pass --allow-phi",
            path=where,
        )
    return report
