"""score_task on canonical test rows: parsed answers, hand-computed metrics, per-example lists, input errors."""

from __future__ import annotations

import pytest

from align.errors import UserError
from align.eval.scoring import SCORERS, TaskScores, higher_is_better, score_task


def _row(task: str, meta: dict, completion: str = "", i: int = 0) -> dict:
    return {
        "id": f"{task}-{i}",
        "task": task,
        "prompt": [{"role": "user", "content": "question"}],
        "completion": [{"role": "assistant", "content": completion}],
        "meta": meta,
    }


def _assert_means_match(scores: TaskScores) -> None:
    for name, values in scores.per_example.items():
        assert scores.metrics[name] == pytest.approx(sum(values) / len(values)), name


def test_triage_scores_by_hand() -> None:
    gold = [1, 2, 3, 3, 4, 5]
    generations = [
        "ESI level: 1\nRationale: arrest",  # 1 correct
        "ESI 3",  # 3 > 2: under-triage
        "Level 3",  # correct
        "esi-level 2",  # 2 < 3: over-triage
        "I cannot decide.",  # unparsed
        "ESI level: 4",  # 4 < 5: over-triage
    ]
    rows = [_row("triage", {"esi": g}, i=i) for i, g in enumerate(gold)]
    scores = score_task("triage", generations, rows)
    assert scores.primary_metric == "accuracy"
    assert scores.per_example["accuracy"] == [1, 0, 1, 0, 0, 0]
    assert scores.per_example["under_triage_rate"] == [0, 1, 0, 0, 0, 0]
    assert scores.metrics["over_triage_rate"] == pytest.approx(2 / 6)
    assert scores.metrics["unparsed_rate"] == pytest.approx(1 / 6)
    assert scores.metrics["macro_f1"] == pytest.approx(0.3)  # worked by hand in test_metrics.py
    assert scores.extra["n_unparsed"] == 1
    assert scores.extra["confusion"][3] == [0, 0, 0, 0, 0, 1]  # gold 4 went to the unparsed column
    _assert_means_match(scores)


def test_provider_routing_and_reasoning_and_pubmedqa() -> None:
    routing = score_task(
        "provider_routing",
        ["Route to: nurse\nReason: x", "Route to: doctor", "Please call billing"],
        [_row("provider_routing", {"label": lab}, i=i) for i, lab in enumerate(["nurse", "nurse", "front_desk"])],
    )
    # correct: 1, 0, 1 -> 2/3. macro-F1: nurse TP1 FN1 -> 2/3; physician FP1 -> 0; front_desk 1 -> (2/3+0+1)/3 = 5/9.
    assert routing.metrics["accuracy"] == pytest.approx(2 / 3)
    assert routing.metrics["macro_f1"] == pytest.approx(5 / 9)

    options = {"A": "Aspirin", "B": "Metformin", "C": "Insulin"}
    reasoning = score_task(
        "reasoning",
        ["Answer: B\nExplanation: first line", "Answer: A or C", "metformin"],
        [_row("reasoning", {"answer": ans, "options": options}, i=i) for i, ans in enumerate(["B", "C", "b"])],
    )
    # correct, ambiguous (unparsed), option text -> B matches gold "b" upper-cased: accuracy 2/3, unparsed 1/3.
    assert reasoning.per_example["accuracy"] == [1, 0, 1]
    assert reasoning.metrics["unparsed_rate"] == pytest.approx(1 / 3)

    pubmedqa = score_task(
        "pubmedqa",
        ["Answer: yes", "maybe", "No."],
        [_row("pubmedqa", {"final_decision": d}, i=i) for i, d in enumerate(["yes", "no", "no"])],
    )
    assert pubmedqa.per_example["accuracy"] == [1, 0, 1]
    for scores in (routing, reasoning, pubmedqa):
        _assert_means_match(scores)


def test_summarization_scores_by_hand() -> None:
    meta = {
        "source": "Left knee pain for 3 days. Takes metformin 500 mg twice daily. Allergic to penicillin.",
        "key_facts": ["left knee", "metformin 500 mg twice daily", "allergic to penicillin"],
    }
    reference = "Left knee pain, 3 days; metformin 500 mg twice daily; allergic to penicillin."
    generations = ["Right knee pain; metformin 850 mg twice daily; allergic to penicillin."]
    scores = score_task("summarization", generations, [_row("summarization", meta, reference)], ("metformin",))
    assert scores.primary_metric == "rouge_l"
    # key facts: "left knee" missing, the metformin fact has 850 not 500, penicillin present -> 1/3.
    assert scores.metrics["key_fact_recall"] == pytest.approx(1 / 3)
    # mentions: 850 mg (not in source), metformin (in source) -> 1/2.
    assert scores.metrics["unsupported_fact_rate"] == pytest.approx(0.5)
    assert scores.metrics["length_words"] == 11  # whitespace words; "pain;" and "daily;" count once each
    # ROUGE-L: pred  right knee pain metformin 850 mg twice daily allergic to penicillin       (11)
    #          ref   left knee pain 3 days metformin 500 mg twice daily allergic to penicillin (13)
    # LCS = knee pain metformin mg twice daily allergic to penicillin = 9; F1 = 2*9/(11+13) = 0.75.
    assert scores.metrics["rouge_l"] == pytest.approx(0.75)
    _assert_means_match(scores)


def test_scorers_cover_the_tasks_and_directions() -> None:
    assert set(SCORERS) == {"triage", "provider_routing", "reasoning", "pubmedqa", "summarization"}
    assert higher_is_better("accuracy") is True
    assert higher_is_better("under_triage_rate") is False
    assert higher_is_better("length_words") is None


def test_unknown_task_names_the_valid_ones() -> None:
    with pytest.raises(UserError, match="no scorer for task 'coding'.*triage"):
        score_task("coding", ["x"], [_row("coding", {})])


def test_missing_gold_is_a_user_error() -> None:
    with pytest.raises(UserError, match="test row 'triage-0' of task 'triage' has no meta.esi"):
        score_task("triage", ["ESI 2"], [_row("triage", {})])
    with pytest.raises(UserError, match="meta.esi=7"):
        score_task("triage", ["ESI 2"], [_row("triage", {"esi": 7})])


def test_generations_must_pair_with_rows() -> None:
    with pytest.raises(ValueError, match="2 generations for 1 rows"):
        score_task("triage", ["ESI 1", "ESI 2"], [_row("triage", {"esi": 1})])
    with pytest.raises(ValueError, match="no test rows"):
        score_task("triage", [], [])
