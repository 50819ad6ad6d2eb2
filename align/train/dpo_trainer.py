"""TRL's DPOTrainer, extended in one place: padding-free forward, each pair's prompt computed once, reference log-probs
cached on disk.

The policy forward runs packed (`PackedCausalLM`, prompt shared by chosen and rejected) and TRL's loss code runs
unchanged on its outputs; the reference pass is `align.logps.answer_logps` over every pair once, prompt shared too. Everything else (loss types, metrics, logging, checkpoints)
is TRL's. Equivalence with plain `DPOTrainer` on the same batch is proven in tests/train/test_dpo_equivalence.py.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch
from datasets import Dataset
from trl import DPOTrainer
from trl.trainer.utils import use_adapter

from align.data.collate import template_fingerprint
from align.logps import PackStats, answer_logps, compact_scoring, shares_prefix
from align.runinfo import data_fingerprint
from align.train import refcache
from align.train.packed import PackedCausalLM

log = logging.getLogger("align")


def _can_share(model) -> bool:
    """Whether a pair's prompt can be computed once (`align.logps.shares_prefix`); when it cannot, say why."""
    why = shares_prefix(model)
    if why is not None:
        log.info("DPO: each pair's prompt is computed once per answer (%s)", why)
    return why is None


class AlignDPOTrainer(DPOTrainer):
    """DPOTrainer whose forward runs padding-free, computing each pair's prompt once, and whose reference log-probs
    come from one such pass or a disk cache."""

    def __init__(
        self,
        *args,
        pack_length: int,
        packing: bool = True,
        share_prompt: bool = True,
        ref_cache_dir: Path | None = None,
        **kwargs,
    ):
        self.pack_length, self.packing, self.ref_cache_dir = pack_length, packing, ref_cache_dir
        self.pack_stats = PackStats()  # policy forwards
        self.ref_stats = PackStats()  # reference passes (none when the cache had them)
        self.ref_cache_hits = 0
        # decided before TRL's __init__, which runs the reference pass
        self.share_prompt = share_prompt and _can_share(kwargs["model"])
        super().__init__(*args, **kwargs)

    @property
    def ref_forward_calls(self) -> int:
        return self.ref_stats.forward_calls

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if "prompt_ids" in dataset.column_names:  # rendered by align.data.collate.render_pair
            return dataset
        return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    def _forward(self, model):
        if not self.packing:
            return model
        return PackedCausalLM(model, self.pack_length, self._tokenizer.pad_token_id, self.pack_stats, self.share_prompt)

    def _compute_loss(self, model, inputs, return_outputs):
        with compact_scoring():
            return super()._compute_loss(self._forward(model), inputs, return_outputs)

    def _precompute_ref_logps(self, dataset: Dataset, name: str, batch_size: int) -> Dataset:
        if "ref_chosen_logps" in dataset.column_names:
            return dataset
        rows = [{k: dataset[i][k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")} for i in range(len(dataset))]
        key = refcache.cache_key(
            data_fingerprint(rows),
            refcache.weights_fingerprint(self.ref_model or self.model),
            template_fingerprint(self._tokenizer),
            self.args.max_length or 0,
            "bf16" if self.args.bf16 else "fp32",
            self.pack_length,
            self.share_prompt,
        )
        cached = refcache.load(self.ref_cache_dir, key) if self.ref_cache_dir else None
        if cached is not None:
            self.ref_cache_hits += 1
            log.info("reference log-probs for %s: cache hit %s", name, key)
            chosen, rejected = cached
        else:
            chosen, rejected = self._ref_logps(rows, name)
            if self.ref_cache_dir:
                refcache.save(self.ref_cache_dir, key, chosen, rejected)
        dataset = dataset.add_column("ref_chosen_logps", chosen)
        return dataset.add_column("ref_rejected_logps", rejected)

    @torch.no_grad()
    def _ref_logps(self, rows: list[dict], name: str) -> tuple[list[float], list[float]]:
        """One no-grad pass of the reference (adapters disabled, or the frozen model) over all pairs."""
        model = self.ref_model or self.model
        adapter = contextlib.nullcontext()
        if self.ref_model is None and hasattr(self.model, "peft_config"):
            adapter = use_adapter(self.model, adapter_name="ref" if "ref" in self.model.peft_config else None)
        sequences = [(r["prompt_ids"], r[side]) for r in rows for side in ("chosen_ids", "rejected_ids")]
        was_training = model.training
        model.eval()
        with adapter, self.accelerator.autocast():
            logps = answer_logps(
                model,
                sequences,
                self._tokenizer.pad_token_id,
                self.pack_length,
                self.ref_stats,
                f"reference ({name})",
                share=self.share_prompt,
            )
        model.train(was_training)
        return logps[0::2], logps[1::2]
