"""Metric math against hand-worked values (align/tasks/metrics.py)."""

from __future__ import annotations

import pytest

from align.tasks import metrics as m

# A small triage confusion used by several tests.
#   idx:   0  1  2  3  4     5
GOLD = [1, 2, 3, 3, 4, 5]
PRED = [1, 3, 3, 2, None, 4]


def test_rouge_by_hand_with_stemming() -> None:
    # rouge_score lower-cases, splits on non-alphanumerics and Porter-stems: "pains" = "pain", "days" = "day".
    # pred: the patient has left knee pain (6); ref: patient report pain in the left knee (7)
    # ROUGE-L: LCS "patient left knee" = 3 -> F1 = 2*3/(6+7) = 6/13; ROUGE-1: 5 shared words (the, patient, left,
    # knee, pain) -> 10/13; ROUGE-2: "left knee" -> 2*1/(5+6) = 2/11.
    s = m.rouge_f1("The patient has left knee pain.", "Patient reports pain in the left knee.")
    assert s["rougeL"] == pytest.approx(6 / 13) and s["rouge1"] == pytest.approx(10 / 13)
    assert s["rouge2"] == pytest.approx(2 / 11)
    assert m.rouge_f1("Knee pains", "knee pain")["rouge1"] == pytest.approx(1.0)  # stemmed
    assert m.rouge_f1("", "anything")["rougeL"] == 0.0
    assert m.rouge_f1("no overlap", "entirely different")["rougeL"] == 0.0
    two = m.rouge_f1("knee pain\nfever", "fever\nknee pain")  # Lsum: per-sentence LCS union
    assert two["rougeLsum"] == pytest.approx(1.0) and two["rougeL"] < 1.0


def test_accuracy_and_triage_rates_by_hand() -> None:
    # correct at idx 0 and 2 -> 2/6.
    assert m.accuracy(PRED, GOLD) == pytest.approx(2 / 6)
    # under-triage (pred > gold): idx 1 (3 > 2) -> 1/6. Over-triage (pred < gold): idx 3 (2 < 3), idx 5 (4 < 5) -> 2/6.
    # idx 4 is unparsed: wrong, but neither under nor over.
    scale = (1, 2, 3, 4, 5)
    assert m.under_call_flags(PRED, GOLD, scale) == [0, 1, 0, 0, 0, 0]
    assert m.mean(m.over_call_flags(PRED, GOLD, scale)) == pytest.approx(2 / 6)
    assert m.unparsed_flags(PRED) == [0, 0, 0, 0, 1, 0]


def test_macro_f1_by_hand_on_triage_confusion() -> None:
    # Labels gold ∪ pred = {1..5}; F1 = 2TP / (2TP + FP + FN):
    #   1: TP1 FP0 FN0 -> 1;  2: TP0 FP1 (idx3) FN1 (idx1) -> 0;  3: TP1 (idx2) FP1 (idx1) FN1 (idx3) -> 2/4 = 0.5
    #   4: TP0 FP1 (idx5) FN1 (idx4, unparsed) -> 0;  5: TP0 FN1 (idx5) -> 0.   Mean = 1.5 / 5 = 0.3.
    assert m.macro_f1(PRED, GOLD) == pytest.approx(0.3)


def test_macro_f1_counts_labels_only_the_model_predicts() -> None:
    # gold [a, a, b], pred [a, c, b]: a: TP1 FN1 -> 2/3; b: 1; c (never gold): FP1 -> 0. Mean = (2/3 + 1 + 0)/3 = 5/9.
    assert m.macro_f1(["a", "c", "b"], ["a", "a", "b"]) == pytest.approx(5 / 9)


def test_confusion_has_an_unparsed_column() -> None:
    assert m.confusion(PRED, GOLD, (1, 2, 3, 4, 5)) == [
        [1, 0, 0, 0, 0, 0],  # gold 1 -> 1
        [0, 0, 1, 0, 0, 0],  # gold 2 -> 3
        [0, 1, 1, 0, 0, 0],  # gold 3 -> 3 and 2
        [0, 0, 0, 0, 0, 1],  # gold 4 -> unparsed
        [0, 0, 0, 1, 0, 0],  # gold 5 -> 4
    ]


def test_ordinal_costs_and_error_costs_by_hand() -> None:
    # 3 levels, over 1 per step, under 2 per step: row = gold, column = predicted
    assert m.ordinal_costs(3) == [[0, 2, 4], [1, 0, 2], [2, 1, 0]]
    costs = m.ordinal_costs(5)
    # PRED vs GOLD: right (0), 3 for 2 (under 1: 2), right, 2 for 3 (over 1: 1), unparsed (worst: 8), 4 for 5 (1)
    assert m.error_costs(PRED, GOLD, (1, 2, 3, 4, 5), costs) == [0, 2, 0, 1, 8, 1]


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="pair up"):
        m.accuracy([1, 2], [1])


def test_key_fact_recall_by_hand() -> None:
    summary = "Pt on Metformin 500  mg twice daily;\nallergic to PENICILLIN."
    facts = ["metformin 500 mg twice daily", "allergic to penicillin", "left knee"]
    # first two found after lower-casing and collapsing whitespace, "left knee" missing -> 2/3.
    assert m.key_fact_recall(summary, facts) == pytest.approx(2 / 3)
    assert m.key_fact_recall("anything", []) == 1.0


SOURCE = "Metformin 500 mg twice daily. Lisinopril 10 mg daily. BP 140/90. Levothyroxine 0.5 mg."
LEXICON = ("metformin", "lisinopril", "aspirin", "levothyroxine")


def test_unsupported_fact_rate_by_hand() -> None:
    summary = "Metformin 500 mg, lisinopril 20 mg, aspirin 81 mg; BP 140/90."
    # numbers: 500 mg (in source), 20 mg (no), 81 mg (no), 140 (bare, in source), 90 (bare, in source) -> 2 of 5 bad
    # drugs: metformin (yes), lisinopril (yes), aspirin (no) -> 1 of 3 bad.      Rate = 3 / 8 = 0.375.
    assert m.unsupported_fact_rate(summary, SOURCE, LEXICON) == pytest.approx(3 / 8)


def test_unsupported_fact_rate_units_and_decimals() -> None:
    # 500 mcg vs the source's 500 mg: a wrong unit is unsupported; metformin is supported -> 1/2.
    assert m.unsupported_fact_rate("metformin 500 mcg", SOURCE, LEXICON) == pytest.approx(0.5)
    # "5 mg" is not "0.5 mg": the .5 in the source is not read as a separate 5 -> 1/1.
    assert m.unsupported_fact_rate("5 mg", SOURCE) == 1.0
    assert m.unsupported_fact_rate("Levothyroxine 0.5 mg", SOURCE, LEXICON) == 0.0
    assert m.number_mentions("10% dextrose, 2 units, 3 grams") == [("10", "%"), ("2", "units"), ("3", "")]
    assert m.unsupported_fact_rate("Patient is well.", SOURCE, LEXICON) == 0.0  # no mentions -> 0


def test_length_words() -> None:
    assert m.length_words("  Left knee pain,\n3 days. ") == 5
