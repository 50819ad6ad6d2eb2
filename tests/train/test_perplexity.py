"""Perplexity math against hand-computed values, and the model loop against a direct computation."""

from __future__ import annotations

import math

import pytest
import torch

from align.train.perplexity import perplexity, token_nll, windows


def test_token_nll_by_hand():
    probs = torch.tensor([0.5, 0.25, 0.125, 0.125])
    logits = probs.log().expand(1, 3, 4)  # (1, T=3, V=4): the same distribution at every position
    nll, n = token_nll(logits, torch.tensor([[3, 0, 2]]))
    assert n == 2  # the first token has no context
    assert nll == pytest.approx(-math.log(0.5) - math.log(0.125)) and nll == pytest.approx(4 * math.log(2))


def test_token_nll_ignores_the_last_position_and_any_logit_offset():
    logits = torch.zeros(1, 3, 4)
    logits[0, 2] = 100.0  # the last position predicts a token that is not there
    nll, n = token_nll(logits + 7.0, torch.tensor([[1, 2, 3]]))
    assert (nll, n) == (pytest.approx(2 * math.log(4)), 2)  # uniform over 4 at the two scored positions


def test_perplexity_is_token_weighted():
    # NLL log 2 over 1 token and 9 log 2 over 3 tokens: exp(10 log 2 / 4) = 2 ** 2.5, not the mean of 2 and 8
    assert perplexity([math.log(2), 9 * math.log(2)], [1, 3]) == pytest.approx(2**2.5)
    assert perplexity([4 * math.log(2)], [2]) == pytest.approx(4.0)
    with pytest.raises(AssertionError):
        perplexity([], [])


def test_windows_cover_the_document_and_drop_single_tokens():
    assert windows(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5]]  # [6] alone scores nothing
    assert windows(list(range(6)), 3) == [[0, 1, 2], [3, 4, 5]]
    assert windows([1], 3) == []
