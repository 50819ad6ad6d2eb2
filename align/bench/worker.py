"""One benchmark run in its own process (so peak RSS is its own): one stage, one variant, one data size.

Usage: python -m align.bench.worker '<json config>'  -> prints one line `BENCH {json}` with the measurements.

The variants (SFT_VARIANTS, DPO_VARIANTS; why each exists: align/bench/run.py):
  sft trl_default     TRL 1.16's SFTTrainer on prompt/completion rows: padded batches of 8 rows, no packing
  sft trl_best        + packing=True, packing_strategy="bfd", padding_free=True: one packed bin per step
  sft align           align's SFT stage: rows rendered by align.data.collate.render_sft, TRL's bfd packing, one bin
                      per step, inside align.logps.compact_scoring()
  dpo trl_default     TRL's DPOTrainer: padded batches, the reference forward in every step
  dpo trl_best        + precompute_ref_log_probs=True (and padding_free=True, which TRL 1.16 turns off with a warning)
  dpo align           align.train.dpo_trainer.AlignDPOTrainer: packed, each pair's prompt computed once (its default
                      share_prompt=True), reference pass over the dataset before training, cold (a fresh cache dir)
  dpo align_unshared  the same with share_prompt=False

What is measured. `TimeBudget` stops training at the first optimizer step that ends `budget_s` seconds or more after
the end of step 1; step 1 is warm-up (first-call allocations and kernel choices) and is not measured. The collator
wrapper records every batch it builds; batch i is trained in step i + 1 (one micro-batch per step), so the measured
steps' batches are batches[warmup_steps:last_step] whatever the data loader collates ahead. A reference pass that runs
before training (trl_best, align) is timed around `_precompute_ref_logps`; the parent (run.py) charges it per pair.
"""

from __future__ import annotations

import contextlib
import json
import random
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import Dataset
from transformers import TrainerCallback

from align.config import LoraConfig, ModelConfig
from align.data.collate import render_pair, render_sft
from align.logps import compact_scoring
from align.models import load_model, peft_config
from align.runinfo import read_jsonl

MAX_LENGTH = 1024  # per row (no bundled row is longer) and per packed bin
MAX_STEPS = 100_000  # out of reach: the time budget ends training
LORA = LoraConfig(dropout=0.0)  # align's recipes: dropout masks cost ~11 % of a CPU step
COMMON = {
    "report_to": "none",
    "use_cpu": True,
    "gradient_checkpointing": False,  # TRL 1.16 defaults it on; on CPU it costs ~20 % per step: off for every row
    "learning_rate": 1e-4,
    "logging_steps": 1,
    "save_strategy": "no",
    "disable_tqdm": True,
    "seed": 0,
    "dataloader_num_workers": 0,
    "max_steps": MAX_STEPS,
    "max_length": MAX_LENGTH,
}
PACKED = {"per_device_train_batch_size": 1, "packing": True, "packing_strategy": "bfd", "padding_free": True}
# name: (rows rendered by align's collation layer and trained inside compact_scoring(), SFTConfig settings)
SFT_VARIANTS: dict[str, tuple[bool, dict]] = {
    "trl_default": (False, {"per_device_train_batch_size": 8}),
    "trl_best": (False, PACKED),
    "align": (True, PACKED),
}
DPO_BATCH = {"per_device_train_batch_size": 4, "beta": 0.1, "remove_unused_columns": False}
PRECOMPUTED = {"precompute_ref_log_probs": True, "padding_free": True}
# name: (AlignDPOTrainer's settings, or None for TRL's DPOTrainer; DPOConfig settings)
DPO_VARIANTS: dict[str, tuple[dict | None, dict]] = {
    "trl_default": (None, {"precompute_ref_log_probs": False}),
    "trl_best": (None, PRECOMPUTED),
    "align": ({"pack_length": MAX_LENGTH}, PRECOMPUTED),  # share_prompt: AlignDPOTrainer's default (True)
    "align_unshared": ({"pack_length": MAX_LENGTH, "share_prompt": False}, PRECOMPUTED),
}


@dataclass
class Batch:
    real: int  # non-pad tokens
    processed: int  # tokens in the tensor, padding included
    sequences: int  # rows (SFT), 2 per pair (DPO)


def batch_counts(batch: dict) -> Batch:
    """Token and sequence counts of a collated batch: padded (attention_mask) or padding-free (position_ids restart
    at 0 per packed sequence)."""
    ids = batch["input_ids"]
    mask = batch.get("attention_mask")
    if mask is not None:
        return Batch(int(mask.sum()), ids.numel(), ids.shape[0])
    return Batch(ids.numel(), ids.numel(), int((batch["position_ids"] == 0).sum()))


class CountingCollator:
    """Wraps a collator and records the counts of every batch it builds, in order."""

    def __init__(self, inner: Callable) -> None:
        self.inner, self.batches = inner, []

    def __call__(self, examples):
        batch = self.inner(examples)
        self.batches.append(batch_counts(batch))
        return batch


class TimeBudget(TrainerCallback):
    """Stops training once `seconds` of measured steps have run; the first `warmup_steps` are warm-up, not measured.

    With seconds=0: the warm-up steps, then one measured step. `probe()` returns counters (e.g. the packed forward's
    tokens) read at the end of the warm-up and of every measured step; `delta()` is their measured part."""

    def __init__(
        self,
        seconds: float,
        warmup_steps: int = 1,
        probe: Callable[[], dict[str, int]] = dict,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.seconds, self.warmup_steps, self.probe, self.clock = seconds, warmup_steps, probe, clock
        self.start = self.end = 0.0
        self.last_step = warmup_steps
        self.first: dict[str, int] = {}
        self.last: dict[str, int] = {}

    def on_step_end(self, args, state, control, **kwargs):
        now = self.clock()
        if state.global_step == self.warmup_steps:
            self.start, self.first = now, self.probe()
        elif state.global_step > self.warmup_steps:
            self.end, self.last, self.last_step = now, self.probe(), state.global_step
            if now - self.start >= self.seconds:
                control.should_training_stop = True
        return control

    @property
    def measured_steps(self) -> int:
        return self.last_step - self.warmup_steps

    @property
    def measured_seconds(self) -> float:
        return self.end - self.start

    def delta(self) -> dict[str, int]:
        return {k: self.last[k] - self.first[k] for k in self.last}


def timed(trainer_cls: type) -> type:
    """`trainer_cls` whose reference pass before training (`_precompute_ref_logps`, run in TRL's __init__) adds its
    wall time to `ref_seconds`."""

    class Timed(trainer_cls):
        ref_seconds = 0.0

        def _precompute_ref_logps(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return super()._precompute_ref_logps(*args, **kwargs)
            finally:
                self.ref_seconds += time.perf_counter() - start

    return Timed


def read_rows(path: str, n: int, seed: int = 0) -> list[dict]:
    """The first n rows of the file shuffled with a fixed seed: every task's lengths mixed, same rows for every row."""
    rows = read_jsonl(path)
    random.Random(seed).shuffle(rows)
    assert len(rows) >= n, f"{path} has {len(rows)} rows, the bench asked for {n}"
    return rows[:n]


def trainer_args(cfg: dict) -> dict:
    return COMMON | {"output_dir": cfg["out"], "bf16": cfg["precision"] == "bf16"}


def measure(trainer, cfg: dict, probe: Callable[[], dict[str, int]] = dict) -> dict:
    """Train under the time budget; the measured steps' seconds, batch counts and probe deltas."""
    assert trainer.args.gradient_accumulation_steps == 1, "batch i is step i + 1 only with one micro-batch per step"
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    budget = TimeBudget(cfg["budget_s"], cfg["warmup_steps"], probe)
    trainer.add_callback(budget)
    trainer.train()
    assert budget.measured_steps >= 1, f"training ended after {trainer.state.global_step} steps, all warm-up"
    batches = counter.batches[budget.warmup_steps : budget.last_step]
    return {
        "measured_seconds": budget.measured_seconds,
        "measured_steps": budget.measured_steps,
        "epochs": trainer.state.epoch,
        "data_tokens": sum(b.real for b in batches),
        "processed_tokens": sum(b.processed for b in batches),
        "sequences": sum(b.sequences for b in batches),
        "probe": budget.delta(),
    }


def run_sft(cfg: dict, model, tok) -> dict:
    from trl import SFTConfig, SFTTrainer

    rendered, settings = SFT_VARIANTS[cfg["variant"]]
    rows = read_rows(cfg["data"], cfg["data_rows"])
    examples = [
        render_sft(tok, r, MAX_LENGTH) if rendered else {k: r[k] for k in ("prompt", "completion")} for r in rows
    ]
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(**trainer_args(cfg), **settings, completion_only_loss=True),
        train_dataset=Dataset.from_list(examples),
        processing_class=tok,
        peft_config=peft_config(LORA),
    )
    with compact_scoring() if rendered else contextlib.nullcontext():  # as align's SFT stage does
        m = measure(trainer, cfg)
    # the model computes every non-pad token (real), and in padded batches the padding too (processed)
    return m | {"real_tokens": m["data_tokens"], "ref_tokens": 0, "ref_seconds": 0.0, "ref_pairs": 0, "args": settings}


def run_dpo(cfg: dict, model, tok) -> dict:
    from trl import DPOConfig, DPOTrainer

    from align.train.dpo_trainer import AlignDPOTrainer

    align_settings, settings = DPO_VARIANTS[cfg["variant"]]
    rows = read_rows(cfg["data"], cfg["data_rows"])
    args = DPOConfig(**trainer_args(cfg), **DPO_BATCH, **settings)
    common = {"model": model, "args": args, "processing_class": tok, "peft_config": peft_config(LORA)}
    if align_settings is None:
        ds = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
        trainer = timed(DPOTrainer)(train_dataset=ds, **common)
        m = measure(trainer, cfg)
        real, processed = m["data_tokens"], m["processed_tokens"]
    else:
        ds = Dataset.from_list([render_pair(tok, r, MAX_LENGTH) for r in rows])
        cold = {"ref_cache_dir": Path(cfg["cache_dir"])}  # a fresh folder per run: never a cache hit
        trainer = timed(AlignDPOTrainer)(train_dataset=ds, **common, **align_settings, **cold)
        assert trainer.ref_cache_hits == 0 and trainer.ref_forward_calls > 0, "the reference pass must run, cold"
        stats = trainer.pack_stats  # the packed policy forwards: a shared prompt counts once
        m = measure(trainer, cfg, lambda: {"real": stats.real_tokens, "processed": stats.processed_tokens})
        real, processed = m["probe"]["real"], m["probe"]["processed"]
    return m | {
        "real_tokens": real,  # computed by the policy forward and backward, padding excluded
        "processed_tokens": processed,
        "ref_tokens": real,  # the reference forward runs the same sequences (in the step or before training)
        "ref_seconds": trainer.ref_seconds,
        "ref_pairs": len(ds) if args.precompute_ref_log_probs else 0,
        "pairs": m["sequences"] // 2,
        "share_prompt": getattr(trainer, "share_prompt", False),
        "trl_padding_free": trainer.padding_free,  # TRL's own flag after its checks (1.16: always False)
        "args": settings | (align_settings or {}),
    }


STAGES = {"sft": run_sft, "dpo": run_dpo}


def main(cfg: dict) -> dict:
    torch.manual_seed(0)
    started = time.perf_counter()
    attn = "auto" if cfg["variant"].startswith("align") else "sdpa"  # align's own choice; TRL as a user loads it
    model, tok = load_model(ModelConfig(name=cfg["model"], precision=cfg["precision"], attn_implementation=attn))
    params = sum(p.numel() for p in model.parameters())  # before LoRA: the base model's N
    result = STAGES[cfg["stage"]](cfg, model, tok)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run = {"params": params, "peak_rss_mb": peak_rss_mb, "wall_seconds": time.perf_counter() - started}
    return cfg | result | run | {"attention": model.config._attn_implementation}


if __name__ == "__main__":
    print("BENCH " + json.dumps(main(json.loads(sys.argv[1]))), flush=True)
