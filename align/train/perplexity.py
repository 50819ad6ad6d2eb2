"""Held-out perplexity of a causal LM on documents: token-weighted mean next-token NLL, exponentiated.

Documents are tokenized as TRL's SFTTrainer tokenizes a `{"text": ...}` row for language modelling (the text plus the
EOS token, the tokenizer's own special tokens), cut into windows of `max_length` tokens, and scored through the one
log-prob path (`align.logps.answer_logps`, every token of a window labelled). The first token of each window has no
context and is not scored.
"""

from __future__ import annotations

import math

from align.logps import answer_logps


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


def score_documents(
    model, tokenizer, texts: list[str], max_length: int, desc: str = "perplexity"
) -> tuple[list[float], list[int]]:
    """Per-window NLL sums and scored-token counts over all documents."""
    was_training = model.training
    model.eval()
    spans = [w for text in texts for w in windows(tokenizer(text=text + tokenizer.eos_token)["input_ids"], max_length)]
    logps = answer_logps(model, [([], w) for w in spans], tokenizer.pad_token_id, max_length, desc=desc)
    model.train(was_training)
    return [-lp for lp in logps], [len(w) - 1 for w in spans]
