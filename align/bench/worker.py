"""One benchmark variant in its own process (so peak RSS is its own): TRL as a user gets it, or align's stage.

Usage: python -m align.bench.worker '<json config>'  -> prints one JSON line with the measurements.
"""

from __future__ import annotations

import contextlib
import json
import random
import resource
import sys
import time
from pathlib import Path

import torch
from datasets import Dataset

from align.config import LoraConfig, ModelConfig
from align.data.collate import render_pair, render_sft
from align.logps import compact_scoring
from align.models import load_model, peft_config
from align.runinfo import read_jsonl

COMMON = {
    "report_to": "none",
    "use_cpu": True,
    "bf16": False,
    "gradient_checkpointing": False,
    "learning_rate": 1e-4,
    "logging_steps": 1,
    "save_strategy": "no",
    "disable_tqdm": True,
    "seed": 0,
    "dataloader_num_workers": 0,
}


class CountingCollator:
    """Wraps a collator and counts real (non-pad) and processed tokens of every batch it builds."""

    def __init__(self, inner) -> None:
        self.inner, self.real, self.processed, self.batches = inner, 0, 0, 0

    def __call__(self, examples):
        batch = self.inner(examples)
        ids = batch["input_ids"]
        mask = batch.get("attention_mask")
        self.real += int(mask.sum()) if mask is not None else ids.numel()
        self.processed += ids.numel()
        self.batches += 1
        return batch


def read_rows(path: str, n: int, seed: int = 0) -> list[dict]:
    """The first n rows of the file shuffled with a fixed seed: every task's lengths mixed, same rows on both sides."""
    rows = read_jsonl(path)
    random.Random(seed).shuffle(rows)
    return rows[:n]


def run_sft(cfg: dict, model, tok) -> dict:
    from trl import SFTConfig, SFTTrainer

    rows = read_rows(cfg["sft_rows"], cfg["steps"] * cfg["batch_size"] * (2 if cfg["impl"] != "trl" else 1))
    args = dict(COMMON, output_dir=cfg["out"], max_steps=cfg["steps"], completion_only_loss=True)
    if cfg["impl"] == "trl":  # TRL defaults: no packing, padded batches of batch_size rows
        ds = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
        args.update(per_device_train_batch_size=cfg["batch_size"], max_length=cfg["max_length"])
    else:  # align: rendered by the shared collation layer, packed best-fit-decreasing, padding-free
        ds = Dataset.from_list([render_sft(tok, r, cfg["max_length"]) for r in rows])
        args.update(per_device_train_batch_size=1, packing=True, packing_strategy="bfd", padding_free=True)
        args.update(max_length=cfg["pack_length"])
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(**args),
        train_dataset=ds,
        processing_class=tok,
        peft_config=peft_config(LoraConfig()),
    )
    trainer.data_collator = counter = CountingCollator(trainer.data_collator)
    start = time.perf_counter()
    with compact_scoring() if cfg["impl"] != "trl" else contextlib.nullcontext():  # as align's SFT stage does
        trainer.train()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "real_tokens": counter.real,
        "processed_tokens": counter.processed,
        "trained_tokens": counter.real,
        "ref_tokens": 0,
        "rows": None,
        "fwd_per_step": 1,
        "bwd_per_step": 1,
    }


def run_dpo(cfg: dict, model, tok) -> dict:
    from trl import DPOConfig, DPOTrainer

    from align.train.dpo_trainer import AlignDPOTrainer

    n_pairs = cfg["steps"] * cfg["batch_size"]
    rows = read_rows(cfg["pref_rows"], n_pairs)
    args = dict(
        COMMON,
        output_dir=cfg["out"],
        max_steps=cfg["steps"],
        per_device_train_batch_size=cfg["batch_size"],
        max_length=cfg["max_length"],
        beta=0.1,
        remove_unused_columns=False,
    )
    lora = peft_config(LoraConfig())
    start = time.perf_counter()
    if cfg["impl"] == "trl":  # TRL defaults: padded batches, reference forward every step
        ds = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
        trainer = DPOTrainer(
            model=model,
            args=DPOConfig(**args, precompute_ref_log_probs=False),
            train_dataset=ds,
            processing_class=tok,
            peft_config=lora,
        )
    else:
        ds = Dataset.from_list([render_pair(tok, r, cfg["max_length"]) for r in rows])
        trainer = AlignDPOTrainer(
            model=model,
            args=DPOConfig(**args, precompute_ref_log_probs=True),
            train_dataset=ds,
            processing_class=tok,
            peft_config=lora,
            pack_length=cfg["pack_length"],
            ref_cache_dir=Path(cfg["cache_dir"]),
        )
    ref_seconds = time.perf_counter() - start if cfg["impl"] != "trl" else 0.0
    trainer.data_collator = counter = CountingCollator(trainer.data_collator)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    if cfg["impl"] == "trl":
        real, processed, ref_tokens, fwd = counter.real * 2, counter.processed * 2, counter.real, 2
    else:
        stats = trainer.pack_stats  # policy forwards, plus the reference pass when it ran (cold cache)
        real, processed, fwd = stats.real_tokens, stats.processed_tokens, 1
        ref_tokens = counter.real if trainer.ref_forward_calls else 0
        seconds += ref_seconds if trainer.ref_forward_calls else 0.0
    return {
        "seconds": seconds,
        "real_tokens": real,
        "processed_tokens": processed,
        "trained_tokens": counter.real,
        "ref_tokens": ref_tokens,
        "rows": n_pairs,
        "fwd_per_step": fwd,
        "bwd_per_step": 1,
        "ref_forward_calls": getattr(trainer, "ref_forward_calls", None),
        "ref_seconds": ref_seconds,
    }


def main(cfg: dict) -> dict:
    torch.manual_seed(0)
    model, tok = load_model(ModelConfig(name=cfg["model"], precision="fp32", attn_implementation="sdpa"))
    params = sum(p.numel() for p in model.parameters())
    result = (run_sft if cfg["stage"] == "sft" else run_dpo)(cfg, model, tok)
    result.update(params=params, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **cfg)
    return result


if __name__ == "__main__":
    print("BENCH " + json.dumps(main(json.loads(sys.argv[1]))), flush=True)
