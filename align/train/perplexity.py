"""Held-out perplexity of a causal LM on documents: token-weighted mean next-token NLL, exponentiated.

Documents are tokenized as TRL's SFTTrainer tokenizes a `{"text": ...}` row for language modelling (the text plus the
EOS token, the tokenizer's own special tokens), cut into windows of `max_length` tokens, and scored without a cache.
The first token of each window has no context and is not scored.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from tqdm.auto import tqdm


def token_nll(logits: Tensor, input_ids: Tensor) -> tuple[float, int]:  # (1, T, V), (1, T)
    """Summed next-token negative log-likelihood of `input_ids[:, 1:]` and how many tokens that is (T - 1).

    With logits log([0.5, 0.25, 0.125, 0.125]) at both positions and ids [3, 0, 2]: -log 0.5 - log 0.125 = 4 log 2
    over 2 tokens.
    """
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (1, T-1, V)
    picked = logps.gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # (1, T-1)
    return float(-picked.sum()), picked.numel()


def perplexity(nll_sums: list[float], token_counts: list[int]) -> float:
    """exp(sum of NLL / sum of tokens): every token counts once, so a long document weighs by its length.

    Two documents with NLL log 2 over 1 token and 9 log 2 over 3 tokens: exp(10 log 2 / 4) = 2 ** 2.5 = 5.657 (a mean
    of per-document perplexities would give (2 + 8) / 2 = 5).
    """
    total = sum(token_counts)
    assert total > 0, f"no scored tokens: {token_counts}"
    return math.exp(sum(nll_sums) / total)


def windows(ids: list[int], max_length: int) -> list[list[int]]:
    """Consecutive windows of at most `max_length` tokens; a window of one token scores nothing and is dropped."""
    return [ids[i : i + max_length] for i in range(0, len(ids), max_length) if len(ids[i : i + max_length]) > 1]


@torch.no_grad()
def score_documents(
    model, tokenizer, texts: list[str], max_length: int, desc: str = "perplexity"
) -> tuple[list[float], list[int]]:
    """Per-window NLL sums and token counts over all documents (batch of one window: no padding to mask)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums, counts = [], []
    for text in tqdm(texts, desc=desc, unit="doc"):
        ids = tokenizer(text=text + tokenizer.eos_token)["input_ids"]
        for window in windows(ids, max_length):
            input_ids = torch.tensor([window], device=device)  # (1, T)
            logits = model(input_ids=input_ids, use_cache=False).logits  # (1, T, V)
            nll, n = token_nll(logits, input_ids)
            sums.append(nll)
            counts.append(n)
    model.train(was_training)
    return sums, counts
