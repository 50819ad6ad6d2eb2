"""Decisions by log-likelihood: the answer line a model finds most likely among the row's candidates, and their summary."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from align.data.collate import render_continuation
from align.eval.decisions import FORMATS, decisions, gold_index, n_candidates, summarize
from align.eval.loglik import argmax, candidate_logps, choose
from tests.conftest import plain_answer_logps


def _triage(esi: int) -> dict:
    return {"task": "triage", "prompt": [{"role": "user", "content": "Chest pain."}], "meta": {"esi": esi}}


def _mcq(answer: str, n: int) -> dict:
    options = {c: f"option {c}" for c in "ABCDE"[:n]}
    return {
        "task": "reasoning",
        "prompt": [{"role": "user", "content": "Q?"}],
        "meta": {"answer": answer, "options": options},
    }


def test_gold_and_candidate_counts():
    assert gold_index(_triage(1)) == 0 and gold_index(_triage(5)) == 4
    assert gold_index(_mcq("C", 4)) == 2 and n_candidates(_mcq("C", 4)) == 4 and n_candidates(_triage(3)) == 5


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def test_candidate_logps_are_the_continuations_log_likelihood(tiny, tokenizer):
    prompts = [_triage(3)["prompt"], _mcq("B", 4)["prompt"]]
    candidates = [list(FORMATS["triage"]), list(FORMATS["reasoning"][:4])]
    got = candidate_logps(tiny, tokenizer, prompts, candidates)
    for prompt, cands, row in zip(prompts, candidates, got, strict=True):
        expected = plain_answer_logps(tiny, [render_continuation(tokenizer, prompt, c) for c in cands])
        assert row == pytest.approx(expected, abs=1e-4)
        assert len(set(row)) == len(row)  # the candidates really differ
    assert choose(tiny, tokenizer, prompts, candidates) == [argmax(r) for r in got]


def test_decisions_take_the_best_candidate_among_the_question_options(tiny, tokenizer):
    rows = [_mcq("E", 5), _mcq("B", 4), _triage(2)]
    got = decisions(tiny, tokenizer, rows)
    scores = candidate_logps(
        tiny,
        tokenizer,
        [r["prompt"] for r in rows],
        [["Answer: " + c for c in "ABCDE"]] * 2 + [list(FORMATS["triage"])],
    )
    assert got[0] == argmax(scores[0]) and got[2] == argmax(scores[2])
    assert got[1] == argmax(scores[1][:4])  # a 4-option question is never answered E


def test_argmax_breaks_ties_toward_the_first():
    assert argmax([0.5, 2.0, 2.0, -1.0]) == 1 and argmax([-3.0]) == 0


def test_summary_counts_hits_and_chosen_labels():
    rows = [_triage(2), _triage(3), _triage(3), _mcq("A", 4), _mcq("B", 4)]
    out = summarize(rows, [1, 1, 2, 0, 0])
    # gold 2, 3, 3 vs predicted 2, 2, 3: one over-triage (ESI 2 for a level-3 patient), no under-triage
    assert out["triage"] == {
        "n": 3,
        "accuracy": 2 / 3,
        "chosen": {"2": 2, "3": 1},
        "under_triage_rate": 0.0,
        "over_triage_rate": 1 / 3,
    }
    under = summarize([_triage(1), _triage(4)], [2, 3])["triage"]  # ESI 3 for a level-1 patient; right on level 4
    assert (under["under_triage_rate"], under["over_triage_rate"]) == (0.5, 0.0)
    assert out["reasoning"] == {"n": 2, "accuracy": 0.5, "chosen": {"A": 2}}
    assert summarize([_triage(1)], [0]).keys() == {"triage"}
