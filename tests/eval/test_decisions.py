"""Teacher-forced decisions: the candidate a model scores highest after the answer prefix, and their summary."""

from types import SimpleNamespace

import torch

from align.eval.decisions import candidate_ids, decisions, gold_index, n_candidates, summarize


def _triage(esi: int) -> dict:
    return {"task": "triage", "prompt": [{"role": "user", "content": "Chest pain."}], "meta": {"esi": esi}}


def _mcq(answer: str, n: int) -> dict:
    options = {c: f"option {c}" for c in "ABCDE"[:n]}
    return {
        "task": "reasoning",
        "prompt": [{"role": "user", "content": "Q?"}],
        "meta": {"answer": answer, "options": options},
    }


class FavouriteToken(torch.nn.Module):
    """Scores one token id highest and another second at every position."""

    def __init__(self, vocab: int, first: int, second: int):
        super().__init__()
        self.vocab, self.first, self.second = vocab, first, second

    def forward(self, input_ids):
        logits = torch.zeros(1, input_ids.shape[1], self.vocab)
        logits[..., self.first], logits[..., self.second] = 2.0, 1.0
        return SimpleNamespace(logits=logits)


def test_gold_and_candidate_counts():
    assert gold_index(_triage(1)) == 0 and gold_index(_triage(5)) == 4
    assert gold_index(_mcq("C", 4)) == 2 and n_candidates(_mcq("C", 4)) == 4 and n_candidates(_triage(3)) == 5


def test_candidates_are_the_decision_tokens(tokenizer):
    digits = candidate_ids(tokenizer, "triage")
    assert [tokenizer.decode([i]) for i in digits] == ["1", "2", "3", "4", "5"]
    assert [tokenizer.decode([i]).strip() for i in candidate_ids(tokenizer, "reasoning")] == list("ABCDE")


def test_decisions_take_the_best_candidate_among_the_question_options(tokenizer):
    letters = candidate_ids(tokenizer, "reasoning")
    model = FavouriteToken(len(tokenizer), first=letters[4], second=letters[1])  # E, then B
    rows = [_mcq("E", 5), _mcq("B", 4)]
    assert decisions(model, tokenizer, rows) == [4, 1]  # a 4-option question cannot be answered E
    digits = candidate_ids(tokenizer, "triage")
    assert decisions(FavouriteToken(len(tokenizer), digits[2], digits[0]), tokenizer, [_triage(3)]) == [2]


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
