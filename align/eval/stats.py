"""Paired statistics for SFT vs SFT+DPO on the same test examples, and a summary of DPO's implicit rewards.

Pairing matters: both variants answer the same prompts, so resampling example indices jointly removes the
between-example variance that an unpaired comparison would count as noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from math import comb

import numpy as np

STATISTICS: dict[str, Callable[..., np.ndarray]] = {"mean": np.mean, "median": np.median}
_CHUNK = 256  # resamples per chunk: bounds memory at _CHUNK * n indices


def paired_bootstrap_ci(
    a: Sequence[float],
    b: Sequence[float],
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    stat: str = "mean",
) -> tuple[float, float, float]:
    """(delta, lo, hi): delta = stat(b) - stat(a); [lo, hi] the percentile interval of the resampled deltas.

    Each resample draws n example indices with replacement (numpy Generator(seed)) and applies them to a and b
    together. a is the baseline (SFT), b the candidate (SFT+DPO); a positive delta means b scored higher.
    """
    if stat not in STATISTICS:
        raise ValueError(f"unknown stat {stat!r}; use one of {sorted(STATISTICS)}")
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"need two non-empty 1-D sequences of equal length, got shapes {x.shape} and {y.shape}")
    if not 0 < alpha < 1 or n_boot < 1:
        raise ValueError(f"need 0 < alpha < 1 and n_boot >= 1, got alpha={alpha}, n_boot={n_boot}")
    fn = STATISTICS[stat]
    rng = np.random.default_rng(seed)
    deltas = []
    for start in range(0, n_boot, _CHUNK):
        idx = rng.integers(0, x.size, size=(min(_CHUNK, n_boot - start), x.size))  # (chunk, n)
        deltas.append(fn(y[idx], axis=1) - fn(x[idx], axis=1))  # (chunk,)
    lo, hi = np.quantile(np.concatenate(deltas), [alpha / 2, 1 - alpha / 2])
    return float(fn(y) - fn(x)), float(lo), float(hi)


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p of k successes in n fair coin flips: min(1, 2 * P(X <= min(k, n-k))); 1.0 when n == 0."""
    if n == 0:
        return 1.0
    tail = Fraction(sum(comb(n, i) for i in range(min(k, n - k) + 1)), 2**n)
    return float(min(Fraction(1), 2 * tail))


def mcnemar(a_correct: Sequence[float | bool], b_correct: Sequence[float | bool]) -> dict[str, float | int]:
    """Exact McNemar test on paired right/wrong outcomes.

    b01: examples a got wrong and b got right; b10: a right, b wrong. Under "no difference" the discordant pairs
    split like a fair coin, so p is the exact two-sided binomial p of b01 out of b01 + b10.
    """
    if len(a_correct) != len(b_correct):
        raise ValueError(f"{len(a_correct)} vs {len(b_correct)} outcomes; they must pair up")
    b01 = sum(1 for x, y in zip(a_correct, b_correct, strict=True) if not x and y)
    b10 = sum(1 for x, y in zip(a_correct, b_correct, strict=True) if x and not y)
    return {"b01": b01, "b10": b10, "n_discordant": b01 + b10, "p_value": binomial_two_sided_p(b01, b01 + b10)}


def significance_text(lo: float, hi: float, higher_is_better: bool | None = True) -> str:
    """Verdict from the CI of delta = SFT+DPO - SFT: an interval containing 0 is no significant difference.

    higher_is_better=False flips the reading (e.g. under-triage rate); None (no direction, e.g. length) says
    "significantly higher/lower" instead of better/worse.
    """
    if lo <= 0 <= hi:
        return "no significant difference"
    up = lo > 0
    if higher_is_better is None:
        return "SFT+DPO significantly higher" if up else "SFT+DPO significantly lower"
    return "SFT+DPO better" if up == higher_is_better else "SFT+DPO worse"


def preference_summary(
    policy_chosen_logps: Sequence[float],
    policy_rejected_logps: Sequence[float],
    ref_chosen_logps: Sequence[float],
    ref_rejected_logps: Sequence[float],
    beta: float,
) -> dict[str, float]:
    """DPO's implicit rewards on held-out pairs, r = beta * (log pi(y|x) - log pi_ref(y|x)).

    reward_accuracy: share of pairs with chosen reward > rejected reward (ties count as wrong);
    reward_margin: mean (chosen - rejected) reward; chosen_reward / rejected_reward: their means;
    chosen_logp_change / rejected_logp_change: mean policy - ref log-prob (DPO can lower both; this shows it).
    """
    pc, pr, rc, rr = (
        np.asarray(v, dtype=np.float64)
        for v in (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    )
    if not pc.size or not (pc.shape == pr.shape == rc.shape == rr.shape):
        raise ValueError(
            f"need four non-empty equal-length sequences, got {pc.shape}, {pr.shape}, {rc.shape}, {rr.shape}"
        )
    chosen_rewards = beta * (pc - rc)  # (N,)
    rejected_rewards = beta * (pr - rr)  # (N,)
    margins = chosen_rewards - rejected_rewards
    return {
        "n": int(pc.size),
        "reward_accuracy": float(np.mean(margins > 0)),
        "reward_margin": float(np.mean(margins)),
        "chosen_reward": float(np.mean(chosen_rewards)),
        "rejected_reward": float(np.mean(rejected_rewards)),
        "chosen_logp_change": float(np.mean(pc - rc)),
        "rejected_logp_change": float(np.mean(pr - rr)),
    }
