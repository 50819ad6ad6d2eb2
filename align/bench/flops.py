"""FLOP accounting for the benchmark: achieved training FLOP/s against this machine's measured matmul FLOP/s (MFU).

The denominator is measured, not a datasheet: the best dense matmul throughput seen here, in the precision the runs
train in (bf16 with AMX, else fp32), at the start and at the end of the bench (the higher one is used).
"""

from __future__ import annotations

import time

import torch


def matmul_flops_per_s(dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 4, rounds: int = 5) -> float:
    """Dense (n, n) @ (n, n) FLOP/s in `dtype`, measured here and now: the best of `rounds` timed rounds of `repeats`
    products each, after two untimed ones (first-call kernel selection, page faults)."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start))
    return best


def train_flops(params: int, trained_tokens: int, ref_tokens: int, lora: bool) -> float:
    """FLOPs of a training run: forward 2N per token; backward 4N (full) or 2N (LoRA: no frozen weight grads);
    a reference forward adds 2N per reference token. E.g. N=100, 10 LoRA tokens, 10 ref tokens: 10*4N + 10*2N = 6000.
    """
    per_token = 4 * params if lora else 6 * params
    return float(per_token * trained_tokens + 2 * params * ref_tokens)


def mfu(flops: float, seconds: float, peak_flops_per_s: float) -> float:
    """Model FLOPs utilisation: achieved FLOP/s over the peak. 6000 FLOPs in 2 s against 1000 FLOP/s -> 3.0."""
    return flops / seconds / peak_flops_per_s if seconds > 0 and peak_flops_per_s > 0 else 0.0
