"""Padding-free forward for TRL's DPO loss: takes TRL's padded batch, runs it packed, returns TRL's padded outputs.

TRL 1.16 accepts `DPOConfig(padding_free=True)` and silently falls back to padding. Instead of re-implementing its
15 loss types, `PackedCausalLM` stands in for the model inside `DPOTrainer._compute_loss`: it unpads the (2B, T) batch
(B chosen rows, then their B rejected rows), packs it into bins (best-fit decreasing), runs the real model on the
packed rows through the one packed forward (`align.logps.forward_bins`, no cache), and scatters every per-token output
back to the (2B, T-1) layout TRL expects. The loss code downstream is TRL's own, unchanged.

With `share_prompt` (and a model whose attention takes an explicit mask: `align.logps.shares_prefix`), a pair's
prompt is computed once: `[prompt | chosen | rejected]`, the rejected tokens' positions continuing from the prompt
and a mask in which they do not see the chosen ones (`collate.pack_shared`). Otherwise each row is packed whole,
position_ids restarting per sequence. Both give the unpacked forward's values (tests/train/test_prefix_sharing.py).
"""

from __future__ import annotations

import logging

import torch
from trl.trainer.utils import FusedCausalLMOutput

from align.data.collate import Group, Packed, pack, pack_shared, unpack_shifted
from align.logps import PackStats, forward_bins, shares_prefix

log = logging.getLogger("align")
PER_TOKEN_FIELDS = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1", "label_mask")


class PackedCausalLM:
    """Callable with the model's fused-head signature; runs the batch padding-free."""

    def __init__(
        self,
        model: torch.nn.Module,
        capacity: int,
        pad_id: int,
        stats: PackStats | None = None,
        share_prompt: bool = True,
    ) -> None:
        self.model, self.capacity, self.pad_id = model, capacity, pad_id
        self.stats = stats if stats is not None else PackStats()
        self.share_prompt = share_prompt and shares_prefix(model) is None

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor, **kwargs):
        assert kwargs.get("fused_lm_head", False), "PackedCausalLM serves TRL's fused-head DPO forward only"
        lengths = attention_mask.sum(dim=1).tolist()
        # TRL's preference collator pads on the right: each row is its real tokens, then padding.
        assert all(int(attention_mask[i, :n].sum()) == n for i, n in enumerate(lengths)), "expected right padding"
        ids = [input_ids[i, :n].tolist() for i, n in enumerate(lengths)]
        labs = [labels[i, :n].tolist() for i, n in enumerate(lengths)]
        packed, rows = self._pack(ids, labs)
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
            packed_rows = _stack_ragged(parts) if per_bin else parts[0]
            fields[name] = unpack_shifted(packed_rows, packed, width)[rows]
        loss = torch.stack([o.loss for o in outs]).mean()
        return FusedCausalLMOutput(loss=loss, aux_loss=getattr(outs[0], "aux_loss", None), **fields)

    def _pack(self, ids: list[list[int]], labs: list[list[int]]) -> tuple[Packed, torch.Tensor]:
        """The packed bins and, per row of TRL's batch, its sequence number in them."""
        half = len(ids) // 2
        if not self.share_prompt or len(ids) != 2 * half:
            return pack(ids, labs, max(self.capacity, max(map(len, ids))), self.pad_id), torch.arange(len(ids))
        groups = [pair_group(ids[i], labs[i], ids[half + i], labs[half + i]) for i in range(half)]
        longest = max(g.packed_length for g in groups)
        # pack_shared numbers pair i's chosen 2i and its rejected 2i + 1; TRL's rows are all chosen, then all rejected
        rows = torch.cat([torch.arange(0, 2 * half, 2), torch.arange(1, 2 * half, 2)])
        return pack_shared(groups, max(self.capacity, longest), self.pad_id), rows


def pair_group(chosen: list[int], chosen_labels: list[int], rejected: list[int], rejected_labels: list[int]) -> Group:
    """A pair as a Group: the leading tokens both rows have and neither labels (the prompt), then each answer."""
    n = 0
    for a, b, la, lb in zip(chosen, rejected, chosen_labels, rejected_labels, strict=False):
        if a != b or la != -100 or lb != -100:
            break
        n += 1
    return Group(chosen[:n], [chosen[n:], rejected[n:]], [chosen_labels[n:], rejected_labels[n:]])


def _stack_ragged(parts: list[torch.Tensor]) -> torch.Tensor:
    """(1, L_b) tensors -> (nbins, max L_b), zero-filled on the right (slice assignment keeps autograd)."""
    width = max(p.shape[1] for p in parts)
    out = parts[0].new_zeros((len(parts), width))
    for b, p in enumerate(parts):
        out[b, : p.shape[1]] = p[0]
    return out
