"""Per-answer pair scores on hand-made rows: values worked out by hand in the comments."""

from __future__ import annotations

import pytest

from align.errors import UserError
from align.pairs.score import Scored, check_scorable, score_answer


def _row(task: str, meta: dict, prompt: str = "question") -> dict:
    return {"id": f"{task}-0", "task": task, "prompt": [{"role": "user", "content": prompt}], "meta": meta}


@pytest.mark.parametrize(
    ("text", "gold", "expected"),
    [
        ("ESI level: 2\nRationale: chest pain", 2, Scored(1.0, "correct", 2)),
        ("ESI level: 1", 2, Scored(-1.0, "over_triage", 1)),  # 1 level more urgent: -1.0 x 1
        ("ESI 3", 2, Scored(-2.0, "under_triage", 3)),  # 1 level less urgent: -2.0 x 1
        ("ESI 4", 2, Scored(-4.0, "under_triage", 4)),  # 2 levels under: -2.0 x 2
        ("Level 1", 5, Scored(-4.0, "over_triage", 1)),  # 4 levels over: -1.0 x 4
        ("ESI level: 5", 1, Scored(-8.0, "under_triage", 5)),  # 4 levels under: -2.0 x 4, the worst parsed answer
        ("I would send them home", 3, Scored(-8.0, "unparseable", None)),  # unparseable = the worst score
    ],
)
def test_triage_costs_under_triage_twice_over_triage(text, gold, expected) -> None:
    assert score_answer("triage", text, _row("triage", {"esi": gold})) == expected


def test_triage_one_level_under_scores_below_one_level_over() -> None:
    row = _row("triage", {"esi": 3})
    under, over = score_answer("triage", "ESI level: 4", row), score_answer("triage", "ESI level: 2", row)
    assert (under.score, over.score) == (-2.0, -1.0)


def test_routing_records_the_predicted_destination() -> None:
    row = _row("provider_routing", {"label": "nurse"})
    assert score_answer("provider_routing", "Route to: nurse\nReason: wound care", row) == Scored(
        1.0, "correct", "nurse"
    )
    assert score_answer("provider_routing", "Route to: pharmacist", row) == Scored(0.0, "wrong", "pharmacist")
    assert score_answer("provider_routing", "hello there", row) == Scored(0.0, "unparseable", None)


def test_reasoning_reads_letters_and_option_text() -> None:
    options = {"A": "hydroxychloroquine", "B": "indomethacin", "C": "methotrexate", "D": "doxycycline"}
    row = _row("reasoning", {"answer": "C", "options": options})
    assert score_answer("reasoning", "Answer: C\nExplanation: RA", row) == Scored(1.0, "correct", "C")
    assert score_answer("reasoning", "methotrexate", row) == Scored(1.0, "correct", "C")  # option text -> C
    assert score_answer("reasoning", "Answer: B", row) == Scored(0.0, "wrong", "B")
    assert score_answer("reasoning", "", row) == Scored(0.0, "unparseable", None)


SOURCE = "Medications: metformin 500 mg twice daily. Plan: follow up in 2 weeks."
FACTS = ["metformin 500 mg twice daily", "follow up in 2 weeks"]


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        # recall 2/2; mentions 500 mg, 2, metformin all in the source -> unsupported 0/3; 1 - 0
        ("Metformin 500 mg twice daily; follow up in 2 weeks.", Scored(1.0, "complete")),
        # recall 1/2; mentions 500 mg (ok), 10 mg (not in source), metformin (ok), lisinopril (not) -> 2/4; 0.5 - 0.5
        ("Metformin 500 mg twice daily and lisinopril 10 mg.", Scored(0.0, "missed_and_unsupported")),
        # recall 1/2; the only mention, 2, is in the source -> 0/1; 0.5 - 0
        ("Follow up in 2 weeks.", Scored(0.5, "missed_facts")),
        # recall 2/2; mentions 500 mg, 2, 850 mg (not in source), metformin -> 1/4; 1 - 0.25
        ("Metformin 500 mg twice daily, follow up in 2 weeks, was on 850 mg.", Scored(0.75, "unsupported_facts")),
        # recall 0/2, no mentions -> 0 - 0
        ("qwerty zxcv", Scored(0.0, "missed_facts")),
    ],
)
def test_summary_is_recall_minus_unsupported_rate(summary, expected) -> None:
    row = _row("summarization", {"key_facts": FACTS, "source": SOURCE})
    assert score_answer("summarization", summary, row) == expected


def test_summary_reads_the_note_from_the_prompt_without_meta_source() -> None:
    row = _row("summarization", {"key_facts": FACTS}, prompt=f"Summarize this note.\n\n{SOURCE}")
    assert score_answer("summarization", "Metformin 500 mg twice daily and lisinopril 10 mg.", row).score == 0.0


def test_unknown_task_is_one_line_naming_the_scorable_tasks() -> None:
    with pytest.raises(UserError) as err:
        check_scorable({"triage", "wound_care"})
    msg = str(err.value)
    assert "\n" not in msg and "'wound_care'" in msg
    assert all(t in msg for t in ("triage", "provider_routing", "reasoning", "summarization"))


def test_missing_gold_names_the_row_and_the_key() -> None:
    with pytest.raises(UserError, match=r"prompt row 'triage-0' of task 'triage' has no meta.esi"):
        score_answer("triage", "ESI level: 2", _row("triage", {}))
