"""Padding-free forward for TRL's DPO loss: takes TRL's padded batch, runs it packed, returns TRL's padded outputs.

TRL 1.16 accepts `DPOConfig(padding_free=True)` and silently falls back to padding. Instead of re-implementing its
15 loss types, `PackedCausalLM` stands in for the model inside `DPOTrainer._compute_loss`: it unpads the (2B, T) batch,
packs the sequences into bins (best-fit decreasing), runs the real model on the packed rows through the one packed
forward (`align.logps.forward_bins`: position_ids restart per sequence, no attention mask, no cache), and scatters
every per-token output back to the (2B, T-1) layout TRL expects. The loss code downstream is TRL's own, unchanged.
"""

from __future__ import annotations

import torch
from trl.trainer.utils import FusedCausalLMOutput

from align.data.collate import pack, unpack_shifted
from align.logps import PackStats, forward_bins

PER_TOKEN_FIELDS = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1", "label_mask")


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
        per_bin = not input_ids.is_cuda  # CPU: one call per bin, no filler at all; GPU: one batched call
        outs = forward_bins(self.model, packed, input_ids.device, per_bin)
        real = packed.real_tokens
        self.stats.add(real, real if per_bin else packed.total_tokens, len(outs))
        width = input_ids.shape[1] - 1
        fields = {}
        for name in PER_TOKEN_FIELDS:
            parts = [getattr(o, name, None) for o in outs]
            if parts[0] is None:
                fields[name] = None
                continue
            rows = _stack_ragged(parts) if per_bin else parts[0]
            fields[name] = unpack_shifted(rows, packed, width)
        loss = torch.stack([o.loss for o in outs]).mean()
        return FusedCausalLMOutput(loss=loss, aux_loss=getattr(outs[0], "aux_loss", None), **fields)


def _stack_ragged(parts: list[torch.Tensor]) -> torch.Tensor:
    """(1, L_b) tensors -> (nbins, max L_b), zero-filled on the right (slice assignment keeps autograd)."""
    width = max(p.shape[1] for p in parts)
    out = parts[0].new_zeros((len(parts), width))
    for b, p in enumerate(parts):
        out[b, : p.shape[1]] = p[0]
    return out
