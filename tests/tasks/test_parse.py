"""Answer parsing on the formats models actually produce, including the tricky and ambiguous ones."""

from __future__ import annotations

import pytest

from align.tasks.parse import parse_choice, parse_esi, parse_route, parse_yes_no_maybe


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ESI level: 2\nRationale: chest pain", 2),
        ("ESI 2", 2),
        ("Level 2", 2),
        ("esi-level 2", 2),
        ("ESI-4 because stable", 4),
        ("I'd say ESI 3, not 2", 3),  # first match wins
        ("Triage level: 5.", 5),
        ("3", 3),  # a bare digit reply
        ("ESI level 10", None),  # 10 is not level 1
        ("ESI level 0", None),
        ("The patient is 2 years old.", None),  # a number without ESI/level is not an answer
        ("", None),
    ],
)
def test_parse_esi(text: str, expected: int | None) -> None:
    assert parse_esi(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Route to: nurse\nReason: the physician is away", "nurse"),  # the Route line beats later mentions
        ("Route to: Pharmacist", "pharmacist"),
        ("route to: front_desk", "front_desk"),
        ("Please have the doctor call back.", "physician"),
        ("Send this to the front desk.", "front_desk"),
        ("This is a scheduling request.", "front_desk"),
        ("Billing question about a copay.", "front_desk"),
        ("Ask the pharmacy about the refill.", "pharmacist"),
        ("Route to: RN", "nurse"),
        ("A scheduled follow-up is fine.", None),  # "scheduled" is not "scheduling"
        ("I am not sure.", None),
    ],
)
def test_parse_route(text: str, expected: str | None) -> None:
    assert parse_route(text) == expected


OPTIONS = {"A": "Aspirin", "B": "Metformin", "C": "Insulin glargine", "D": "Insulin"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Answer: C\nExplanation: basal insulin.", "C"),
        ("C.", "C"),
        ("C. Insulin glargine", "C"),
        ("(C)", "C"),
        ("The answer is C", "C"),
        ("answer: c", "C"),
        ("Answer: (b)", "B"),
        ("The correct option is D.", "D"),
        ("Answer: C\nExplanation: the answer is not A, because aspirin is for pain.", "C"),  # negated A ignored
        ("the answer is not A; it is C", "C"),
        ("A 45-year-old man with diabetes. Answer: B", "B"),  # the article "A" is not a claim
        ("Insulin glargine", "C"),  # option text only; longest match beats "Insulin"
        ("insulin", "D"),  # exact option text
        ("Start metformin first.", "B"),
        ("Answer: A or C", None),  # two letters claimed
        ("answer: b and d", None),
        ("Answer: C, a long-acting basal insulin.", "C"),  # the article "a" after the list is no claim
        ("Answer: A. Answer: C.", None),
        ("Either aspirin or metformin.", None),  # two option texts, neither inside the other
        ("Answer: F", None),  # not an option
        ("I think the answer is a tricky one.", None),  # lowercase article after "answer is"
        ("No idea.", None),
    ],
)
def test_parse_choice(text: str, expected: str | None) -> None:
    assert parse_choice(text, OPTIONS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Answer: maybe. Yes, some trials suggest...", "maybe"),  # the cue beats the first word
        ("Yes.", "yes"),
        ("NO, the data do not support it.", "no"),
        ("Noted; unclear.", None),  # whole words only
    ],
)
def test_parse_yes_no_maybe(text: str, expected: str | None) -> None:
    assert parse_yes_no_maybe(text) == expected
