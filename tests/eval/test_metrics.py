"""Metric math against hand-worked values, and the `evaluate` modules loaded by local path with no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from align.eval import metrics as m

REPO = Path(__file__).resolve().parents[2]

# A small triage confusion used by several tests.
#   idx:   0  1  2  3  4     5
GOLD = [1, 2, 3, 3, 4, 5]
PRED = [1, 3, 3, 2, None, 4]


def test_tokenize_drops_punctuation_and_lowercases() -> None:
    assert m.tokenize_words("Left-knee pain, 3 days.") == ["left", "knee", "pain", "3", "days"]


def test_lcs_length_classic_case() -> None:
    # ABCBDAB vs BDCABA: a longest common subsequence is BCBA (length 4).
    assert m.lcs_length(list("ABCBDAB"), list("BDCABA")) == 4


def test_rouge_l_by_hand() -> None:
    # pred tokens: the patient has left knee pain                (6)
    # ref tokens:  patient reports pain in the left knee         (7)
    # LCS = "patient left knee" = 3 (pain comes before left in ref, after knee in pred).
    # P = 3/6, R = 3/7, F1 = 2PR/(P+R) = (3/7) / (13/14) = 6/13.
    score = m.rouge_l_f1("The patient has left knee pain.", "Patient reports pain in the left knee.")
    assert score == pytest.approx(6 / 13)
    assert m.rouge_l_f1("Same words here", "same, words. here!") == pytest.approx(1.0)
    assert m.rouge_l_f1("", "anything") == 0.0
    assert m.rouge_l_f1("no overlap", "entirely different") == 0.0


def test_accuracy_and_triage_rates_by_hand() -> None:
    # correct at idx 0 and 2 -> 2/6.
    assert m.accuracy(PRED, GOLD) == pytest.approx(2 / 6)
    # under-triage (pred > gold): idx 1 (3 > 2) -> 1/6. Over-triage (pred < gold): idx 3 (2 < 3), idx 5 (4 < 5) -> 2/6.
    # idx 4 is unparsed: wrong, but neither under nor over.
    assert m.under_triage_flags(PRED, GOLD) == [0, 1, 0, 0, 0, 0]
    assert m.mean(m.over_triage_flags(PRED, GOLD)) == pytest.approx(2 / 6)
    assert m.unparsed_flags(PRED) == [0, 0, 0, 0, 1, 0]


def test_macro_f1_by_hand_on_triage_confusion() -> None:
    # Labels gold ∪ pred = {1..5}; F1 = 2TP / (2TP + FP + FN):
    #   1: TP1 FP0 FN0 -> 1;  2: TP0 FP1 (idx3) FN1 (idx1) -> 0;  3: TP1 (idx2) FP1 (idx1) FN1 (idx3) -> 2/4 = 0.5
    #   4: TP0 FP1 (idx5) FN1 (idx4, unparsed) -> 0;  5: TP0 FN1 (idx5) -> 0.   Mean = 1.5 / 5 = 0.3.
    assert m.macro_f1(PRED, GOLD) == pytest.approx(0.3)


def test_macro_f1_counts_labels_only_the_model_predicts() -> None:
    # gold [a, a, b], pred [a, c, b]: a: TP1 FN1 -> 2/3; b: 1; c (never gold): FP1 -> 0. Mean = (2/3 + 1 + 0)/3 = 5/9.
    assert m.macro_f1(["a", "c", "b"], ["a", "a", "b"]) == pytest.approx(5 / 9)


def test_triage_confusion_has_unparsed_column() -> None:
    assert m.triage_confusion(PRED, GOLD) == [
        [1, 0, 0, 0, 0, 0],  # gold 1 -> 1
        [0, 0, 1, 0, 0, 0],  # gold 2 -> 3
        [0, 1, 1, 0, 0, 0],  # gold 3 -> 3 and 2
        [0, 0, 0, 0, 0, 1],  # gold 4 -> unparsed
        [0, 0, 0, 1, 0, 0],  # gold 5 -> 4
    ]


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


_OFFLINE_SCRIPT = """
import json
from align.eval.load import load_metric
out = {
    "rouge_l": load_metric("rouge_l").compute(
        predictions=["The patient has left knee pain.", "same words"],
        references=["Patient reports pain in the left knee.", "same words"]),
    "triage": load_metric("triage").compute(predictions=%(pred)s, references=%(gold)s),
    "classification": load_metric("classification").compute(predictions=["a", "c", "b", None],
                                                            references=["a", "a", "b", "b"]),
    "key_facts": load_metric("key_facts").compute(
        predictions=["Metformin 500 mg, lisinopril 20 mg, aspirin 81 mg; BP 140/90.", "allergic to penicillin"],
        references=[["metformin 500 mg", "left knee"], ["Allergic to penicillin"]],
        sources=[%(source)r, "allergic to penicillin"], drug_lexicon=%(lexicon)r),
}
print(json.dumps(out))
"""


def test_evaluate_modules_load_by_local_path_offline(tmp_path: Path) -> None:
    # A proxy on a closed local port makes any network attempt fail instead of silently succeeding.
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "PYTHONPATH": str(REPO),
    }
    script = _OFFLINE_SCRIPT % {"pred": PRED, "gold": GOLD, "source": SOURCE, "lexicon": list(LEXICON)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["rouge_l"]["rouge_l"] == pytest.approx((6 / 13 + 1.0) / 2)
    triage = out["triage"]
    assert triage["accuracy"] == pytest.approx(m.accuracy(PRED, GOLD))
    assert triage["macro_f1"] == pytest.approx(0.3)
    assert triage["under_triage_rate"] == pytest.approx(1 / 6)
    assert triage["over_triage_rate"] == pytest.approx(2 / 6)
    assert triage["unparsed_rate"] == pytest.approx(1 / 6)
    assert triage["confusion"] == m.triage_confusion(PRED, GOLD)
    # classification: correct a, b -> 2/4; macro-F1: a 2/3, b: TP1 FN1 -> 2/3, c 0 -> 4/9; one unparsed -> 1/4.
    assert out["classification"] == pytest.approx({"accuracy": 0.5, "macro_f1": 4 / 9, "unparsed_rate": 0.25})
    # key facts: recall (1/2 + 1/1) / 2 = 0.75; unsupported (3/8 + 0) / 2 = 0.1875.
    assert out["key_facts"] == pytest.approx({"key_fact_recall": 0.75, "unsupported_fact_rate": 0.1875})
