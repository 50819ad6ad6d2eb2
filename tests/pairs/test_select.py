"""Pair selection and error-direction balance on hand-made candidates and rows."""

from __future__ import annotations

from align.pairs.run import directions
from align.pairs.select import Candidate, balance_directions, dedupe, select_pair
from align.tasks import registry

TRIAGE = directions(registry())  # the built-in ordinal task: triage's under- and over-triage


def _c(text: str, score: float, error: str = "wrong", source: str = "sample") -> Candidate:
    return Candidate(text, score, error, source)


GOLD = _c("ESI level: 2\nRationale: gold", 1.0, "correct", "reference")


def test_the_ordinal_built_in_tasks_give_their_error_directions() -> None:
    assert TRIAGE == {"triage": ("under_triage", "over_triage")}


def test_best_is_chosen_and_worst_sample_rejected() -> None:
    samples = [_c("ESI 1", -1.0, "over_triage"), _c("ESI 2", 1.0, "correct"), _c("ESI 4", -4.0, "under_triage")]
    pair, outcome = select_pair(samples, None, min_gap=0.5)
    assert outcome == "kept" and (pair.chosen.text, pair.rejected.text) == ("ESI 2", "ESI 4")
    assert pair.gap == 5.0  # 1.0 - (-4.0)


def test_gold_wins_a_tie_but_a_better_sample_beats_it() -> None:
    samples = [_c("ESI 2", 1.0, "correct"), _c("ESI 1", -1.0, "over_triage")]
    pair, _ = select_pair(samples, GOLD, min_gap=0.5)
    assert pair.chosen is GOLD and pair.rejected.text == "ESI 1"
    summary_gold = _c("reference summary", 0.75, "unsupported_facts", "reference")
    pair, _ = select_pair([_c("sample summary", 1.0, "complete"), _c("bad", -0.5)], summary_gold, min_gap=0.5)
    assert pair.chosen.text == "sample summary" and pair.chosen.source == "sample"


def test_gold_is_never_rejected_even_when_it_scores_lowest() -> None:
    gold = _c("gold", 0.2, "missed_facts", "reference")
    pair, _ = select_pair([_c("s1", 0.9, "missed_facts"), _c("s2", 0.5, "missed_facts")], gold, min_gap=0.0)
    assert (pair.chosen.text, pair.rejected.text) == ("s1", "s2")


def test_gap_below_min_gap_is_dropped_and_equal_gap_kept() -> None:
    samples = [_c("right", 1.0, "correct"), _c("one over", -1.0, "over_triage")]  # gap 2.0
    assert select_pair(samples, None, min_gap=2.5) == (None, "gap")
    assert select_pair(samples, None, min_gap=2.0)[1] == "kept"


def test_identical_samples_make_no_pair_without_gold() -> None:
    samples = [_c("ESI level: 3", 1.0, "correct"), _c(" ESI level: 3\n", 1.0, "correct")]
    assert select_pair(samples, None, min_gap=0.0) == (None, "identical")
    pair, outcome = select_pair(samples, GOLD, min_gap=0.0)  # gold 1.0 vs sample 1.0: gap 0 >= 0
    assert outcome == "kept" and pair.chosen is GOLD and pair.gap == 0.0


def test_a_sample_equal_to_gold_stays_a_sample() -> None:
    samples = [_c(GOLD.text, 1.0, "correct"), _c("ESI 5", -6.0, "under_triage")]
    pair, _ = select_pair(samples, GOLD, min_gap=0.5)
    assert pair.chosen.source == "sample" and pair.chosen.text == GOLD.text


def test_dedupe_keeps_the_first_of_each_text() -> None:
    a, b, a2 = _c("a", 1.0), _c("b", 0.0), _c(" a ", 0.5)
    assert dedupe([a, b, a2]) == [a, b]


def _pair_row(i: int, task: str, error: str) -> dict:
    return {"id": f"{task}-{i}", "task": task, "meta": {"error_type": error}}


def test_balance_downsamples_the_larger_direction_only() -> None:
    rows = (
        [_pair_row(0, "triage", "under_triage")]
        + [_pair_row(i, "triage", "over_triage") for i in range(1, 5)]  # 4 over vs 1 under: drop 3 over
        + [_pair_row(i, "triage", "unparseable") for i in range(5, 7)]  # not directional: kept
        + [_pair_row(i, "reasoning", "wrong") for i in range(3)]  # no directions: kept
    )
    kept, dropped = balance_directions(rows, seed=0, directions=TRIAGE)
    assert dropped == {"triage": 3}
    errors = [r["meta"]["error_type"] for r in kept if r["task"] == "triage"]
    assert errors.count("under_triage") == errors.count("over_triage") == 1 and errors.count("unparseable") == 2
    assert len(rows) == 10 and len(kept) == 10 - 3
    assert kept == [r for r in rows if r in kept]  # input order kept
    assert balance_directions(rows, seed=0, directions=TRIAGE)[0] == kept  # seeded
    other_seeds = {balance_directions(rows, seed=s, directions=TRIAGE)[0][1]["id"] for s in range(20)}
    assert len(other_seeds) > 1  # the kept over-triage pair depends on the seed


def test_balance_with_one_direction_missing_drops_the_other() -> None:
    rows = [_pair_row(i, "triage", "over_triage") for i in range(3)] + [_pair_row(3, "triage", "unparseable")]
    kept, dropped = balance_directions(rows, seed=1, directions=TRIAGE)
    assert dropped == {"triage": 3} and [r["id"] for r in kept] == ["triage-3"]


def test_balance_leaves_balanced_and_non_directional_tasks_alone() -> None:
    rows = [_pair_row(0, "triage", "under_triage"), _pair_row(1, "triage", "over_triage"), _pair_row(2, "x", "wrong")]
    assert balance_directions(rows, seed=0, directions=TRIAGE) == (rows, {"triage": 0})
    assert balance_directions(rows[2:], seed=0, directions=TRIAGE) == (rows[2:], {})
