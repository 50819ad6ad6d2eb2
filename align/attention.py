"""`sdpa_blocks`: transformers' SDPA attention, run once per packed sequence instead of once over the whole bin.

A packed bin (several sequences in one row, position_ids restarting per sequence, or prefix-shared groups behind an
explicit mask) reaches SDPA as one (L, L) mask, and SDPA then computes all L x L scores and throws most away: on a
1024-token SFT bin of ~5 sequences, ~80 % of attention's work, and no causal fast path, since a mask is given. Here
the mask is cut into its diagonal blocks (`packed_blocks`: spans no query outside them looks into, and no query inside
them looks out of), and each block runs through transformers' own `sdpa_attention_forward`: a purely causal block
without a mask (SDPA's causal kernel, grouped-query heads without copies), any other block (a prompt shared by two
answers) with its slice of the mask. The result is the same attention (tests/test_attention.py, fp32, to 1e-5,
forward and gradients).

On CPU the blocks run in fp32 even under bf16 autocast: PyTorch's CPU flash kernel is faster in fp32 than in bf16 for
short sequences (fwd+bwd of one 200-token causal block, 9 heads: 3.9 ms fp32 vs 5.3 ms bf16; on the 1024-token bin
the bf16 kernel is faster, which is why it only applies to blocks), and the scores are the more exact for it.
Measured on 2 AMX cores, 2026-12-03 (docs/experiments.md): 12 steps of the default SFT (bf16 autocast) 68.4 -> 57.6 s
wall, the same losses to bf16 noise; the report's 64 held-out pairs (fp32) 50.8 -> 44.2 s; the default DPO's policy
forward, whose bins are prompt-sharing groups with a mask, gains nothing measurable (114.8 vs 113.4 s for 10 steps).

Anything else (a batch of several rows, decoding against a cache, no mask at all) goes to plain SDPA unchanged. The
implementation is registered with transformers' AttentionInterface and AttentionMaskInterface (the mask is sdpa's),
so `from_pretrained(..., attn_implementation="sdpa_blocks")` works once this module is imported; nothing of it is
saved with a model.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "sdpa_blocks"

Block = tuple[int, int, bool]  # (start, end, purely causal) of a diagonal block of the mask


def packed_blocks(mask: torch.Tensor) -> list[Block]:
    """The diagonal blocks of a (L, L) bool attention mask (True = may attend), in order, covering 0..L.

    A block [s, e) is closed: no query in it attends to a key outside it, and no query outside it attends into it;
    it is purely causal when its own mask is the lower triangle. A query that attends nowhere keeps its block open to
    the start (it is passed on with its mask as given). Example: two packed sequences of 2 and 3 tokens, the second
    sharing nothing -> [(0, 2, True), (2, 5, True)]; a 2-token prompt with two 1-token answers that each see the
    prompt and not each other (rows 1000, 1100, 1110, 1101) -> [(0, 4, False)].
    """
    assert mask.dim() == 2 and mask.shape[0] == mask.shape[1] and mask.dtype == torch.bool, (mask.shape, mask.dtype)
    length = mask.shape[0]
    idx = torch.arange(length, device=mask.device)
    any_key = mask.any(-1)
    first = torch.where(any_key, mask.int().argmax(-1), torch.zeros_like(idx))  # (L,) first key each query sees
    last = torch.where(any_key, length - 1 - mask.flip(-1).int().argmax(-1), idx)  # (L,) last key each query sees
    later_first = first.flip(0).cummin(0).values.flip(0)  # min first key over queries >= j
    earlier_last = torch.cat([idx.new_full((1,), -1), last.cummax(0).values[:-1]])  # max last key over queries < j
    starts = ((later_first >= idx) & (earlier_last < idx)).nonzero().flatten().tolist()
    ends = starts[1:] + [length]
    blocks = []
    for s, e in zip(starts, ends, strict=True):
        tril = torch.ones(e - s, e - s, dtype=torch.bool, device=mask.device).tril()
        blocks.append((s, e, bool(torch.equal(mask[s:e, s:e], tril))))
    return blocks


def sdpa_blocks_attention(module, query, key, value, attention_mask, **kwargs):
    """transformers' attention-function signature: query (B, H, L, D), key/value (B, H_kv, L, D) -> ((B, L, H, D),
    None). One packed row with a bool mask runs block by block; everything else is plain sdpa."""
    if not _one_packed_row(query, key, attention_mask):
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    blocks = packed_blocks(attention_mask[0, 0])
    if len(blocks) == 1 and not blocks[0][2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    dtype = query.dtype
    upcast = query.device.type == "cpu" and dtype != torch.float32  # the CPU kernel's faster dtype on short blocks
    if upcast:
        query, key, value = query.float(), key.float(), value.float()
    outputs = []
    with torch.autocast(query.device.type, enabled=False) if upcast else contextlib.nullcontext():
        for s, e, causal in blocks:
            mask = None if causal else attention_mask[:, :, s:e, s:e]
            out, _ = sdpa_attention_forward(module, query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], mask, **kwargs)
            outputs.append(out)  # (1, e - s, H, D)
    return torch.cat(outputs, dim=1).to(dtype), None


def _one_packed_row(query, key, attention_mask) -> bool:
    return (
        attention_mask is not None
        and attention_mask.dtype == torch.bool
        and attention_mask.dim() == 4
        and attention_mask.shape[:2] == (1, 1)
        and query.shape[0] == 1
        and query.shape[2] == key.shape[2] == attention_mask.shape[-1] == attention_mask.shape[-2]
    )


AttentionInterface.register(NAME, sdpa_blocks_attention)
AttentionMaskInterface.register(NAME, sdpa_mask)
