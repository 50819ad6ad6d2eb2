"""Benchmark arithmetic: FLOP accounting, MFU, and how ratios are derived from the variants of one run."""

import pytest

from align.bench.flops import mfu, train_flops
from align.bench.run import summarize


def test_train_flops_by_hand():
    # LoRA: 4N per trained token + 2N per reference token: N=100, 10 trained, 10 ref -> 4000 + 2000
    assert train_flops(100, 10, 10, lora=True) == 6000
    # full fine-tuning: 6N per token, no reference
    assert train_flops(100, 10, 0, lora=False) == 6000
    assert mfu(6000, 2.0, 1000) == 3.0 and mfu(1, 0, 1) == 0.0


def _raw(stage, impl, seconds, real, processed, rows=None, rss=1000.0):
    return {
        "stage": stage,
        "impl": impl,
        "max_length": 512,
        "seconds": seconds,
        "real_tokens": real,
        "processed_tokens": processed,
        "trained_tokens": real,
        "ref_tokens": 0,
        "rows": rows,
        "params": 10,
        "fwd_per_step": 1,
        "bwd_per_step": 1,
        "peak_rss_mb": rss,
    }


def test_summarize_ratios_from_the_same_run():
    results = [
        _raw("sft", "trl", 10.0, 1000, 2000, rss=2000.0),
        _raw("sft", "align", 5.0, 1000, 1000, rss=1500.0),
        _raw("dpo", "trl", 20.0, 800, 1000, rows=8),
        _raw("dpo", "align", 8.0, 800, 800, rows=8),
        _raw("dpo", "align_warm", 5.0, 800, 800, rows=8),
    ]
    table = summarize(results, peak=1e9)
    assert table["sft"]["speedup"] == pytest.approx(2.0)  # 200 vs 100 non-pad tokens/s
    assert table["sft"]["trl"]["padding_fraction"] == pytest.approx(0.5)
    assert table["sft"]["align"]["padding_fraction"] == 0.0
    assert table["sft"]["peak_rss_ratio"] == pytest.approx(0.75)
    assert table["dpo"]["speedup"] == pytest.approx(2.5)  # 1.0 vs 0.4 pairs/s
    assert table["dpo"]["speedup_warm_cache"] == pytest.approx(4.0)
