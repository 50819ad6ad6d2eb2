"""Decisions by log-likelihood: the answer line a model finds most likely among the row's candidates, and their
summary, for every closed-answer task."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from align.data.collate import render_continuation
from align.eval.decisions import decisions, gold_index, summarize
from align.eval.loglik import argmax, candidate_logps, choose
from align.tasks import registry
from tests.conftest import plain_answer_logps

TASKS = registry()


def _triage(esi: int) -> dict:
    return {"task": "triage", "prompt": [{"role": "user", "content": "Chest pain."}], "meta": {"esi": esi}}


def _mcq(answer: str, n: int) -> dict:
    options = {c: f"option {c}" for c in "ABCDE"[:n]}
    return {
        "task": "reasoning",
        "prompt": [{"role": "user", "content": "Q?"}],
        "meta": {"answer": answer, "options": options},
    }


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def test_gold_index_among_the_rows_candidates():
    assert gold_index(TASKS["triage"], _triage(1)) == 0 and gold_index(TASKS["triage"], _triage(5)) == 4
    assert gold_index(TASKS["reasoning"], _mcq("C", 4)) == 2
    assert len(TASKS["reasoning"].candidates(_mcq("C", 4))) == 4 and len(TASKS["triage"].candidates(_triage(3))) == 5


def test_candidate_logps_are_the_continuations_log_likelihood(tiny, tokenizer):
    rows = [_triage(3), _mcq("B", 4)]
    candidates = [TASKS[r["task"]].candidates(r) for r in rows]
    got = candidate_logps(tiny, tokenizer, [r["prompt"] for r in rows], candidates)
    for row, cands, scores in zip(rows, candidates, got, strict=True):
        expected = plain_answer_logps(tiny, [render_continuation(tokenizer, row["prompt"], c) for c in cands])
        assert scores == pytest.approx(expected, abs=1e-4)
        assert len(set(scores)) == len(scores)  # the candidates really differ
    assert choose(tiny, tokenizer, [r["prompt"] for r in rows], candidates) == [argmax(s) for s in got]


def test_decisions_take_the_best_candidate_among_the_question_options(tiny, tokenizer):
    rows = [_mcq("E", 5), _mcq("B", 4), _triage(2)]
    got = decisions(tiny, tokenizer, rows, TASKS)
    five = [f"Answer: {c}" for c in "ABCDE"]
    scores = candidate_logps(
        tiny, tokenizer, [r["prompt"] for r in rows], [five, five, TASKS["triage"].candidates(rows[2])]
    )
    assert got[0] == argmax(scores[0]) and got[2] == argmax(scores[2])
    assert got[1] == argmax(scores[1][:4])  # a 4-option question is never answered E


def test_argmax_breaks_ties_toward_the_first():
    assert argmax([0.5, 2.0, 2.0, -1.0]) == 1 and argmax([-3.0]) == 0


def test_summary_counts_hits_and_chosen_labels():
    rows = [_triage(2), _triage(3), _triage(3), _mcq("A", 4), _mcq("B", 4)]
    out = summarize(rows, [1, 1, 2, 0, 0], TASKS)
    # gold 2, 3, 3 vs predicted 2, 2, 3: one over-triage (ESI 2 for a level-3 patient), no under-triage
    assert out["triage"] == {
        "n": 3,
        "accuracy": 2 / 3,
        "chosen": {"2": 2, "3": 1},
        "under_triage_rate": 0.0,
        "over_triage_rate": 1 / 3,
    }
    under = summarize([_triage(1), _triage(4)], [2, 3], TASKS)["triage"]  # ESI 3 for a level-1 patient; right on 4
    assert (under["under_triage_rate"], under["over_triage_rate"]) == (0.5, 0.0)
    assert out["reasoning"] == {"n": 2, "accuracy": 0.5, "chosen": {"A": 2}}
    assert summarize([_triage(1)], [0], TASKS).keys() == {"triage"}
