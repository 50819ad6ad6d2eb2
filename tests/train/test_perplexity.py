"""Perplexity math against hand-computed values (the model loop: tests/test_logps.py)."""

from __future__ import annotations

import math

import pytest

from align.train.perplexity import perplexity, windows


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
