"""Paired bootstrap, exact McNemar, verdict text and the implicit-reward summary, against hand-worked numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from align.eval.stats import (
    binomial_two_sided_p,
    mcnemar,
    paired_bootstrap_ci,
    preference_summary,
    significance_text,
)

A = [0, 1, 0, 1, 1, 0, 0, 1, 0, 0]  # mean 0.4
B = [1, 1, 0, 1, 1, 1, 0, 1, 1, 0]  # mean 0.7


def test_bootstrap_is_deterministic_and_contains_delta() -> None:
    first = paired_bootstrap_ci(A, B, n_boot=2000, seed=0)
    assert first == paired_bootstrap_ci(A, B, n_boot=2000, seed=0)
    delta, lo, hi = first
    assert delta == pytest.approx(0.3)
    assert lo <= delta <= hi and lo < hi
    # The per-example differences are 0 or 1 (b never loses here), so every resampled mean is in [0, 1].
    assert 0.0 <= lo and hi <= 1.0


def test_bootstrap_seed_changes_the_interval_not_the_delta() -> None:
    # Continuous scores so that different resamples give different quantiles.
    a = [(7 * i % 31) / 31 for i in range(30)]
    b = [x + (0.1 if i % 3 else -0.05) for i, x in enumerate(a)]
    seed0, seed1 = paired_bootstrap_ci(a, b, seed=0), paired_bootstrap_ci(a, b, seed=1)
    assert seed0[0] == pytest.approx(seed1[0])
    assert seed0[1:] != seed1[1:]


def test_bootstrap_degenerate_cases() -> None:
    assert paired_bootstrap_ci(A, A) == (0.0, 0.0, 0.0)
    # One example: every resample is that example, so delta and both bounds are b - a = 1.
    assert paired_bootstrap_ci([0.0], [1.0]) == (1.0, 1.0, 1.0)


def test_bootstrap_matches_normal_approximation_on_a_large_sample() -> None:
    # diffs: 100 of +1, 60 of -1, 240 of 0 (n = 400): mean 0.1, var = E[d^2] - mean^2 = 160/400 - 0.01 = 0.39,
    # se = sqrt(0.39/400) = 0.031225, so the 95% interval is about 0.1 ± 1.96 * 0.031225 = [0.0388, 0.1612].
    a = [0.0] * 100 + [1.0] * 60 + [0.0] * 240
    b = [1.0] * 100 + [0.0] * 60 + [0.0] * 240
    delta, lo, hi = paired_bootstrap_ci(a, b, n_boot=4000, seed=0)
    se = math.sqrt(0.39 / 400)
    assert delta == pytest.approx(0.1)
    assert lo == pytest.approx(0.1 - 1.96 * se, abs=0.008)
    assert hi == pytest.approx(0.1 + 1.96 * se, abs=0.008)


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="equal length"):
        paired_bootstrap_ci([1, 0], [1])
    with pytest.raises(ValueError, match="unknown stat"):
        paired_bootstrap_ci([1], [1], stat="mode")


def test_bootstrap_median_statistic() -> None:
    # median(b) - median(a) = 3 - 1 = 2.
    delta, lo, hi = paired_bootstrap_ci([1, 1, 1], [3, 3, 3], stat="median")
    assert (delta, lo, hi) == (2.0, 2.0, 2.0)


def test_mcnemar_exact_p_by_hand() -> None:
    # 1 example only b gets right (b01), 9 only a gets right (b10), 5 both right, 5 both wrong.
    a = [0] * 1 + [1] * 9 + [1] * 5 + [0] * 5
    b = [1] * 1 + [0] * 9 + [1] * 5 + [0] * 5
    result = mcnemar(a, b)
    assert (result["b01"], result["b10"], result["n_discordant"]) == (1, 9, 10)
    # p = 2 * (C(10,0) + C(10,1)) / 2^10 = 2 * 11 / 1024 = 0.021484375
    assert result["p_value"] == 0.021484375


def test_binomial_p_edge_cases() -> None:
    assert binomial_two_sided_p(0, 0) == 1.0  # no discordant pairs: no evidence
    assert binomial_two_sided_p(5, 10) == 1.0  # 2 * P(X <= 5) = 2 * 638/1024 > 1, capped
    assert binomial_two_sided_p(0, 5) == 2 / 32  # 2 * C(5,0) / 2^5


def test_significance_text() -> None:
    assert significance_text(-0.01, 0.2) == "no significant difference"
    assert significance_text(0.0, 0.2) == "no significant difference"  # the interval touches 0
    assert significance_text(0.02, 0.2) == "SFT+DPO better"
    assert significance_text(-0.3, -0.1) == "SFT+DPO worse"
    # For a rate where lower is better (e.g. under-triage), a negative delta is an improvement.
    assert significance_text(-0.3, -0.1, higher_is_better=False) == "SFT+DPO better"
    assert significance_text(-9.0, -0.5, higher_is_better=None) == "SFT+DPO significantly lower"


def test_preference_summary_by_hand() -> None:
    # beta = 0.1; policy - ref: chosen [1, 0], rejected [-1, 1]
    # chosen rewards [0.1, 0.0], rejected rewards [-0.1, 0.1], margins [0.2, -0.1]
    out = preference_summary([-10, -12], [-14, -11], [-11, -12], [-13, -12], beta=0.1)
    assert out["n"] == 2
    assert out["reward_accuracy"] == 0.5
    assert out["reward_margin"] == pytest.approx(0.05)
    assert out["chosen_reward"] == pytest.approx(0.05)
    assert out["rejected_reward"] == pytest.approx(0.0)
    assert out["chosen_logp_change"] == pytest.approx(0.5)
    assert out["rejected_logp_change"] == pytest.approx(0.0)
    # Ties (margin exactly 0) are not counted as correct.
    assert preference_summary(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), beta=0.1)["reward_accuracy"] == 0.0
