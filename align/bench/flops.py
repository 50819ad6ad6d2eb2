"""FLOP accounting for the benchmark: achieved training FLOP/s against this machine's measured matmul FLOP/s (MFU)."""

from __future__ import annotations

import time

import torch


def matmul_flops_per_s(dtype: torch.dtype = torch.float32, n: int = 1024, repeats: int = 8) -> float:
    """Peak-ish dense matmul throughput measured here, now, in `dtype` (the MFU denominator)."""
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def train_flops(params: int, trained_tokens: int, ref_tokens: int, lora: bool) -> float:
    """FLOPs of a training run: forward 2N per token; backward 4N (full) or 2N (LoRA: no frozen weight grads);
    a reference forward adds 2N per reference token. E.g. N=100, 10 LoRA tokens, 10 ref tokens: 10*4N + 10*2N = 6000.
    """
    per_token = 4 * params if lora else 6 * params
    return float(per_token * trained_tokens + 2 * params * ref_tokens)


def mfu(flops: float, seconds: float, peak_flops_per_s: float) -> float:
    return flops / seconds / peak_flops_per_s if seconds > 0 and peak_flops_per_s > 0 else 0.0
