"""Log-likelihood scoring of closed answers (lm-evaluation-harness' multiple-choice convention): each candidate
answer is scored as a continuation of the prompt, and the most likely one is the model's answer.

The continuation is the start of the assistant's reply (e.g. "ESI level: 3", "Answer: B"), tokenized together with
the rendered prompt and split where they diverge (`collate.render_continuation`); its score is the sum of its
tokens' log-probs through the one log-prob path (`align.logps.answer_logps`). No decoding, one packed pass.
"""

from __future__ import annotations

import torch

from align.data.collate import render_continuation
from align.logps import answer_logps

Messages = list[dict[str, str]]


@torch.no_grad()
def candidate_logps(model, tokenizer, prompts: list[Messages], candidates: list[list[str]]) -> list[list[float]]:
    """Log-likelihood of every candidate continuation of every prompt: [row][candidate]."""
    assert len(prompts) == len(candidates), (len(prompts), len(candidates))
    model.eval()
    sequences = [
        render_continuation(tokenizer, p, c) for p, cands in zip(prompts, candidates, strict=True) for c in cands
    ]
    flat = iter(answer_logps(model, sequences, tokenizer.pad_token_id, desc="candidate log-likelihoods"))
    return [[next(flat) for _ in cands] for cands in candidates]


def argmax(values: list[float]) -> int:
    """Index of the largest value; the first one on a tie (deterministic)."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


def choose(model, tokenizer, prompts: list[Messages], candidates: list[list[str]]) -> list[int]:
    """The index of the most likely candidate for each prompt."""
    return [argmax(row) for row in candidate_logps(model, tokenizer, prompts, candidates)]
