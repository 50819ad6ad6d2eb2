"""PHI scan: planted identifiers are counted exactly and never echoed; clinical text raises no false alarm."""

from __future__ import annotations

import pytest

from align.data.phi import PATTERNS, require_no_phi, scan_phi, scan_text
from align.errors import UserError

# (text, kind, count); the values are fake and exist only to be found
PLANTED = [
    ("Call me back at (617) 555-0143 or 617-555-0199.", "phone", 2),
    ("Her cell is +1 415.555.0108.", "phone", 1),
    ("Send the results to jane.doe@example.org please.", "email", 1),
    ("SSN 123-45-6789 on file; also SSN: 987654321.", "ssn", 2),
    ("MRN: 1234567. Old chart: medical record number 12345678.", "mrn", 2),
    ("Patient id 00098765 was merged.", "mrn", 1),
    ("DOB: 01/02/1960.", "dob", 1),
    ("She was born on March 3, 1950 in Ohio; date of birth is 1950-03-03.", "dob", 2),
    ("Lives at 123 Main Street with her son, previously 45 Oak Ave.", "address", 2),
    ("Seen with Mr. Smith and Dr. Jane Doe; Mrs. O'Neil called.", "name", 3),
]

CLINICAL = [
    "67-year-old man with chest pain, BP 150/90, HR 110, RR 22, SpO2 94% on room air.",
    "ESI level: 2\nRationale: chest pain with tachycardia needs an ECG within 10 minutes.",
    "Started metformin 500 mg twice daily; A1c 8.2% on 03/14/2024.",
    "Seen in clinic on 2024-01-15 for follow-up of hypertension; lisinopril 10 mg daily continued.",
    "Labs: Na 135 mmol/L, K 4.1, creatinine 1.2 mg/dL, WBC 12.3 x10^9/L, Hgb 10.4 g/dL.",
    "Temp 38.9 C, lactate 4.2 mmol/L, given 30 mL/kg crystalloid (2100 mL) and ceftriaxone 2 g IV.",
    "Discussed with Dr. on call, who recommended admission to 4 West.",
    "Route to: pharmacist\nReason: refill question about atorvastatin 40 mg.",
    "Answer: C\nExplanation: a 34-year-old with fever, neck stiffness and photophobia needs a lumbar puncture.",
    "Allergic to penicillin (rash). Left knee effusion, aspirated 30 mL on 5/2/2023.",
    "Insulin glargine 20 units at bedtime; glucose 250-300 mg/dL over the past 3 days.",
    "Weight 82 kg, BMI 27.4, pain 7/10, GCS 15, ECOG 1.",
    "Troponin 0.04 ng/mL at 0 h and 0.05 ng/mL at 3 h; ECG with 1 mm ST depression in V4-V6.",
    "Admitted 12/01/2023, discharged 12/05/2023; follow up in 2 weeks with cardiology.",
    "Apixaban 5 mg BID, INR 1.1, platelets 150 000/uL.",
    "A 45-year-old woman, G2P2, presents with 3 days of dysuria; urinalysis positive for nitrites.",
    "Ventilator: TV 450 mL, PEEP 8 cm H2O, FiO2 40%, rate 16.",
    "The patient walked 3 blocks down the street before stopping because of dyspnea.",
    "Summary: CHF exacerbation, furosemide 40 mg IV, net negative 1.5 L, Cr 1.4 from 1.1.",
    "Dose range 0.5-1 mg/kg every 6-8 h, max 4 g/day; recheck LFTs on 2024-02-01.",
    "MR and TR on echo; EF 35-40%; ICD placed 2019; follow-up per Cardiology.",
]


def row(text: str, n: int = 0) -> dict:
    return {"id": f"custom-{n}", "prompt": [{"role": "user", "content": text}], "completion": []}


@pytest.mark.parametrize(("text", "kind", "count"), PLANTED)
def test_planted_identifier_counted_exactly(text: str, kind: str, count: int) -> None:
    assert scan_text(text) == {kind: count}


def test_report_counts_locations_and_never_values() -> None:
    rows = [row(text, i) for i, (text, _, _) in enumerate(PLANTED)]
    rows.append(
        {
            "id": "custom-99",
            "prompt": [{"role": "user", "content": "Question"}],
            "chosen": [{"role": "assistant", "content": "Email bob@example.com"}],
            "rejected": [{"role": "assistant", "content": "No identifiers."}],
        }
    )
    report = scan_phi(rows)
    assert report.rows_scanned == len(PLANTED) + 1
    assert report.counts == {"phone": 3, "email": 2, "ssn": 2, "mrn": 3, "dob": 3, "address": 2, "name": 3}
    assert report.locations["email"] == ["custom-2 prompt", "custom-99 chosen"]
    assert not report.clean
    text = report.format()
    assert "2 email, 3 phone, 2 ssn, 3 mrn, 3 dob, 2 address, 3 name" in text  # pattern order
    for value in [
        "555-0143",
        "jane.doe",
        "bob@",
        "123-45-6789",
        "1234567",
        "01/02/1960",
        "Main Street",
        "Smith",
        "O'Neil",
    ]:
        assert value not in text


@pytest.mark.parametrize("sentence", CLINICAL)
def test_no_false_alarm_on_clinical_text(sentence: str) -> None:
    assert scan_text(sentence) == {}


def test_clinical_rows_are_clean_and_pass_the_guard() -> None:
    rows = [row(s, i) for i, s in enumerate(CLINICAL)]
    report = require_no_phi(rows, allow_phi=False, where="data/train.jsonl")
    assert report.clean and report.rows_scanned == len(CLINICAL)
    assert report.format() == f"PHI scan: clean ({len(CLINICAL)} rows scanned)"


def test_require_no_phi_raises_with_counts_and_the_way_out() -> None:
    rows = [row("Call 617-555-0143.", 0), row("MRN: 7654321, DOB: 02/03/1971", 1)]
    with pytest.raises(UserError) as err:
        require_no_phi(rows, allow_phi=False, where="data/train.jsonl")
    message = str(err.value)
    assert message.startswith("data/train.jsonl: possible protected health information: 1 phone, 1 mrn, 1 dob")
    assert "allow_phi: true" in message and "--allow-phi" in message
    assert "617-555-0143" not in message and "7654321" not in message and "\n" not in message
    assert require_no_phi(rows, allow_phi=True, where="x").counts == {"phone": 1, "mrn": 1, "dob": 1}


def test_every_kind_is_planted() -> None:
    assert {kind for _, kind, _ in PLANTED} == set(PATTERNS)


def test_locations_are_path_and_line_for_read_rows_and_never_a_meta_text() -> None:
    from align.data.formats import Row

    read = Row(row("Call 617-555-0143.", 2), "data/train.jsonl:4")  # what the reader returns: it knows its line
    note = {"prompt": [{"role": "user", "content": "Summarize: call 617-555-0199."}], "meta": {"source": "Mr. Smith"}}
    report = scan_phi([read, note])
    assert report.locations == {"phone": ["data/train.jsonl:4 prompt", "row 1 prompt"]}  # not the note's text
