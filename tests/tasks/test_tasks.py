"""Each task scores its own answers: hand-computed metrics and pair scores for the built-in tasks, candidates that parse
back to their labels, located errors for rows that lack what scoring needs."""

from __future__ import annotations

import pytest

from align.data.tasks.summarization import ALLERGIES, MEDS, PLAN_DRUGS
from align.errors import UserError
from align.tasks import BUILTIN, TaskScores, check_rows, registry, task_for
from align.tasks.base import Scored
from align.tasks.text import DRUG_LEXICON


def _row(task: str, meta: dict, completion: str = "", i: int = 0, prompt: str = "question") -> dict:
    return {
        "id": f"{task}-{i}",
        "task": task,
        "prompt": [{"role": "user", "content": prompt}],
        "completion": [{"role": "assistant", "content": completion}],
        "meta": meta,
    }


def _means_match(scores: TaskScores) -> None:
    for name, values in scores.per_example.items():
        assert scores.metrics[name] == pytest.approx(sum(values) / len(values)), name
        assert name in scores.directions, name


def test_triage_scores_by_hand() -> None:
    gold = [1, 2, 3, 3, 4, 5]
    answers = ["ESI level: 1\nRationale: arrest", "ESI 3", "Level 3", "esi-level 2", "I cannot decide.", "ESI level: 4"]
    rows = [_row("triage", {"esi": g}, i=i) for i, g in enumerate(gold)]
    scores = BUILTIN["triage"].score(answers, rows)
    assert scores.primary_metric == "accuracy"
    assert scores.per_example["accuracy"] == [1, 0, 1, 0, 0, 0]
    assert scores.per_example["under_triage_rate"] == [0, 1, 0, 0, 0, 0]  # 3 for a level-2 patient
    assert scores.metrics["over_triage_rate"] == pytest.approx(2 / 6)  # 2 for 3, 4 for 5
    assert scores.metrics["unparsed_rate"] == pytest.approx(1 / 6)
    assert scores.metrics["macro_f1"] == pytest.approx(0.3)  # worked by hand in test_metrics.py
    assert scores.per_example["error_cost"] == [0, 2, 0, 1, 8, 1]  # under 2/level, over 1/level, unparsed worst
    assert scores.extra["confusion"][3] == [0, 0, 0, 0, 0, 1] and scores.extra["labels"] == ["1", "2", "3", "4", "5"]
    assert scores.directions["under_triage_rate"] is False and scores.directions["accuracy"] is True
    _means_match(scores)


def test_routing_reasoning_pubmedqa_by_hand() -> None:
    routing = BUILTIN["provider_routing"].score(
        ["Route to: nurse\nReason: x", "Route to: doctor", "Please call billing"],
        [_row("provider_routing", {"label": lab}, i=i) for i, lab in enumerate(["nurse", "nurse", "front_desk"])],
    )
    # correct: 1, 0, 1 -> 2/3. macro-F1: nurse TP1 FN1 -> 2/3; physician FP1 -> 0; front_desk 1 -> (2/3+0+1)/3 = 5/9.
    assert routing.metrics["accuracy"] == pytest.approx(2 / 3) and routing.metrics["macro_f1"] == pytest.approx(5 / 9)
    options = {"A": "Aspirin", "B": "Metformin", "C": "Insulin"}
    reasoning = BUILTIN["reasoning"].score(
        ["Answer: B\nExplanation: first line", "Answer: A or C", "metformin"],
        [_row("reasoning", {"answer": ans, "options": options}, i=i) for i, ans in enumerate(["B", "C", "b"])],
    )
    assert reasoning.per_example["accuracy"] == [1, 0, 1]  # ambiguous "A or C" is unparsed; "metformin" reads as B
    assert reasoning.metrics["unparsed_rate"] == pytest.approx(1 / 3)
    pubmedqa = BUILTIN["pubmedqa"].score(
        ["Answer: yes", "maybe", "No."],
        [_row("pubmedqa", {"answer": d}, i=i) for i, d in enumerate(["yes", "no", "No"])],
    )
    assert pubmedqa.per_example["accuracy"] == [1, 0, 1]
    for scores in (routing, reasoning, pubmedqa):
        _means_match(scores)


def test_summarization_scores_by_hand() -> None:
    meta = {
        "source": "Left knee pain for 3 days. Takes metformin 500 mg twice daily. Allergic to penicillin.",
        "key_facts": ["left knee", "metformin 500 mg twice daily", "allergic to penicillin"],
    }
    reference = "Left knee pain, 3 days; metformin 500 mg twice daily; allergic to penicillin."
    answer = "Right knee pain; metformin 850 mg twice daily; allergic to penicillin."
    scores = BUILTIN["summarization"].score([answer], [_row("summarization", meta, reference)])
    assert scores.primary_metric == "rougeL"
    assert scores.metrics["key_fact_recall"] == pytest.approx(1 / 3)  # "left knee" missing, 850 not 500
    # mentions: 850 mg (not in the source), metformin and penicillin (lexicon drugs, both in the source) -> 1/3
    assert scores.metrics["unsupported_fact_rate"] == pytest.approx(1 / 3)
    assert scores.metrics["length_words"] == 11 and scores.directions["length_words"] is None
    # stemmed tokens: pred right knee pain metformin 850 mg twice daili allerg to penicillin (11)
    #                 ref  left knee pain 3 day metformin 500 mg twice daili allerg to penicillin (13)
    # LCS and unigram overlap: knee pain metformin mg twice daili allerg to penicillin = 9 -> 2*9/24 = 0.75;
    # bigrams 10 vs 12, shared: knee-pain mg-twice twice-daili daili-allerg allerg-to to-penicillin = 6 -> 12/22.
    assert scores.metrics["rougeL"] == pytest.approx(0.75) and scores.metrics["rouge1"] == pytest.approx(0.75)
    assert scores.metrics["rouge2"] == pytest.approx(12 / 22)
    _means_match(scores)


@pytest.mark.parametrize(
    ("text", "gold", "expected"),
    [
        ("ESI level: 2\nRationale: chest pain", 2, Scored(1.0, "correct", 2)),
        ("ESI level: 1", 2, Scored(-1.0, "over_triage", 1)),  # 1 level more urgent: -1.0 x 1
        ("ESI 3", 2, Scored(-2.0, "under_triage", 3)),  # 1 level less urgent: -2.0 x 1
        ("ESI 4", 2, Scored(-4.0, "under_triage", 4)),  # 2 levels under: -2.0 x 2
        ("Level 1", 5, Scored(-4.0, "over_triage", 1)),  # 4 levels over: -1.0 x 4
        ("ESI level: 5", 1, Scored(-8.0, "under_triage", 5)),  # 4 levels under: the worst parsed answer
        ("I would send them home", 3, Scored(-8.0, "unparseable", None)),  # unparseable = the worst score
    ],
)
def test_triage_pair_score_costs_under_triage_twice_over_triage(text, gold, expected) -> None:
    assert BUILTIN["triage"].pair_score(text, _row("triage", {"esi": gold})) == expected


def test_pair_scores_of_the_other_tasks() -> None:
    route = _row("provider_routing", {"label": "nurse"})
    assert BUILTIN["provider_routing"].pair_score("Route to: nurse", route) == Scored(1.0, "correct", "nurse")
    assert BUILTIN["provider_routing"].pair_score("Route to: pharmacist", route) == Scored(0.0, "wrong", "pharmacist")
    assert BUILTIN["provider_routing"].pair_score("hello", route) == Scored(0.0, "unparseable", None)
    options = {"A": "hydroxychloroquine", "B": "indomethacin", "C": "methotrexate"}
    mcq = _row("reasoning", {"answer": "C", "options": options})
    assert BUILTIN["reasoning"].pair_score("methotrexate", mcq) == Scored(1.0, "correct", "C")
    source = "Medications: metformin 500 mg twice daily. Plan: follow up in 2 weeks."
    summary = _row(
        "summarization", {"key_facts": ["metformin 500 mg twice daily", "follow up in 2 weeks"], "source": source}
    )
    # recall 1/2; mentions 500 mg (ok), 10 mg (not in source), metformin (ok), lisinopril (not) -> 2/4; 0.5 - 0.5
    text = "Metformin 500 mg twice daily and lisinopril 10 mg."
    assert BUILTIN["summarization"].pair_score(text, summary) == Scored(0.0, "missed_and_unsupported")


def test_every_candidate_parses_back_to_its_own_label() -> None:
    rows = {
        "triage": _row("triage", {"esi": 3}),
        "provider_routing": _row("provider_routing", {"label": "nurse"}),
        "pubmedqa": _row("pubmedqa", {"answer": "yes"}),
        "reasoning": _row("reasoning", {"answer": "B", "options": {"A": "x", "B": "y", "C": "z", "D": "w"}}),
        "medqa": _row("medqa", {"answer": "A", "options": {"A": "x", "B": "y", "C": "z", "D": "w"}}),
        "medmcqa": _row("medmcqa", {"answer": "D", "options": ["x", "y", "z", "w"]}),
    }
    closed = [name for name, task in BUILTIN.items() if task.kind in ("label", "choice")]
    assert sorted(closed) == sorted(rows)
    for name, row in rows.items():
        task = BUILTIN[name]
        labels = list(task.labels) if task.kind == "label" else list(task.options(row))
        assert [task.parse(c, row) for c in task.candidates(row)] == labels, name


def test_chance_levels() -> None:
    rows = [_row("pubmedqa", {"answer": a}) for a in ("yes", "yes", "no", "maybe")]
    assert BUILTIN["pubmedqa"].chance(rows) == {"accuracy": pytest.approx(1 / 3), "majority_accuracy": 0.5}
    mcq = [_row("medqa", {"answer": "A", "options": dict(zip("ABCD", "wxyz", strict=True))})]
    assert BUILTIN["medqa"].chance(mcq) == {"accuracy": 0.25}
    assert BUILTIN["medqa"].anchors[0].value == 0.609 and "s41467-024-52417-z" in BUILTIN["medqa"].anchors[0].source


def test_a_task_nobody_declared_is_compared_with_the_gold_answer() -> None:
    task = task_for("lab_flags", registry())
    row = _row("lab_flags", {}, completion="Potassium is critically high.")
    scores = task.score(["Potassium is high."], [row])
    assert scores.primary_metric == "rougeL" and 0 < scores.metrics["rougeL"] < 1
    assert "unsupported_fact_rate" not in scores.metrics and "key_fact_recall" not in scores.metrics


def test_rows_missing_what_scoring_needs_fail_with_their_location() -> None:
    class Located(dict):
        source = "exports/labs.csv:7"

    tasks = registry()
    with pytest.raises(UserError) as err:
        check_rows([Located(_row("triage", {}))], tasks)
    assert str(err.value) == (
        "exports/labs.csv:7: of task 'triage' has no 'esi' (its gold label); add it to the row (a column or meta "
        "field), or set tasks.triage.gold"
    )
    with pytest.raises(UserError, match=r"^row 'triage-0' of task 'triage' has gold label 7, not one of"):
        check_rows([_row("triage", {"esi": 7})], tasks)
    with pytest.raises(UserError, match="of task 'reasoning' has no options in 'options'"):
        check_rows([_row("reasoning", {"answer": "A"})], tasks)
    check_rows([_row("lab_flags", {})], tasks)  # a task nobody declared needs nothing beyond its answer


def test_the_drug_lexicon_covers_every_drug_the_generator_writes() -> None:
    written = {m for m, _, _ in MEDS} | {a for a, _ in ALLERGIES} | set(PLAN_DRUGS)
    assert written <= set(DRUG_LEXICON)
