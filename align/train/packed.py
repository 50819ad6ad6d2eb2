"""Padding-free forward for TRL's DPO loss: takes TRL's padded batch, runs it packed, returns TRL's padded outputs.

TRL 1.16 accepts `DPOConfig(padding_free=True)` and silently falls back to padding. Instead of re-implementing its
15 loss types, `PackedCausalLM` stands in for the model inside `DPOTrainer._compute_loss`: it unpads the (2B, T) batch,
packs the sequences into bins (best-fit decreasing), calls the real model once on the packed rows (position_ids
restart per sequence, no attention mask, no cache), and scatters every per-token output back to the (2B, T-1) layout
TRL expects. The loss code downstream is TRL's own, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from trl.trainer.utils import FusedCausalLMOutput

from align.data.collate import pack, unpack_shifted

PER_TOKEN_FIELDS = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1", "label_mask")


@dataclass
class PackStats:
    """Token accounting across calls: what the benchmark reports as padding fraction and forward passes."""

    real_tokens: int = 0
    processed_tokens: int = 0
    forward_calls: int = 0
    bins: list[int] = field(default_factory=list)

    def add(self, real: int, processed: int, nbins: int) -> None:
        self.real_tokens += real
        self.processed_tokens += processed
        self.forward_calls += 1
        self.bins.append(nbins)

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.real_tokens / self.processed_tokens if self.processed_tokens else 0.0


class PackedCausalLM:
    """Callable with the model's fused-head signature; runs the batch padding-free."""

    def __init__(self, model: torch.nn.Module, capacity: int, pad_id: int, stats: PackStats | None = None) -> None:
        self.model, self.capacity, self.pad_id = model, capacity, pad_id
        self.stats = stats if stats is not None else PackStats()

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor, **kwargs):
        assert kwargs.get("fused_lm_head", False), "PackedCausalLM serves TRL's fused-head DPO forward only"
        lengths = attention_mask.sum(dim=1).tolist()
        # TRL's preference collator pads on the right: each row is its real tokens, then padding.
        assert all(int(attention_mask[i, :n].sum()) == n for i, n in enumerate(lengths)), "expected right padding"
        ids = [input_ids[i, :n].tolist() for i, n in enumerate(lengths)]
        labs = [labels[i, :n].tolist() for i, n in enumerate(lengths)]
        packed = pack(ids, labs, max(self.capacity, max(lengths)), self.pad_id)
        device = input_ids.device
        out = self.model(
            input_ids=packed.input_ids.to(device),
            position_ids=packed.position_ids.to(device),
            labels=packed.labels.to(device),
            use_cache=False,
            fused_lm_head=True,
        )
        self.stats.add(packed.real_tokens, packed.total_tokens, packed.input_ids.shape[0])
        width = input_ids.shape[1] - 1
        fields = {}
        for name in PER_TOKEN_FIELDS:
            value = getattr(out, name, None)
            fields[name] = None if value is None else unpack_shifted(value, packed, width)
        return FusedCausalLMOutput(loss=out.loss, aux_loss=getattr(out, "aux_loss", None), **fields)
