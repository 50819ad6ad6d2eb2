"""Log-probabilities of answers under a model, one path for all: DPO's reference pass, the report's preference
metrics, log-likelihood scoring of closed answers, the decisions diagnostic and held-out perplexity.

Sequences are packed padding-free (`collate.pack`: best-fit decreasing, position_ids restart per sequence); sequences
that share a prompt compute it once (`collate.pack_shared`: the prompt, then each answer behind a mask that hides the
other answers, where the model's attention takes an explicit mask: `shares_prefix`). Each bin runs through TRL's fused LM head (`trl.trainer.utils.add_fused_lm_head`), which applies the model's own logit
transforms (final soft-capping, logit scale, ...) and projects only the labelled positions through the vocabulary.
`sequence_logps` sums the per-token values per sequence; that sum is the only math here that is ours.

TRL's fused head scores only labelled positions on Triton devices and every position elsewhere (a changing count of
positions recompiles on compile-based accelerators). On CPU and CUDA that concern does not apply and answers are
~20 % of the tokens, so `compact_scoring()` lets the head gather the labelled positions first on those devices too —
scoped to the block that needs it, never process-wide. Values are identical (tests/test_logps.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import trl.trainer.utils as trl_utils
from tqdm.auto import tqdm

from align.data.collate import Group, Packed, pack, pack_shared, segment_sum

# Tokens per packed bin for evaluation passes (one bin per forward; a longer group gets a bin of its own). With plain
# sdpa, attention in a bin is computed over all L x L positions, so its cost per token grows with L: the report's 64
# held-out pairs (fp32, 2 cores) took 61-75 s at 2048, 46 s at 1024 or 768. With sdpa_blocks (align/attention.py, the
# CPU default) each group is computed alone and the size hardly matters: 44.3 / 44.2 / 42.5 s at 512 / 1024 / 2048.
DEFAULT_CAPACITY = 1024


@dataclass
class PackStats:
    """Token accounting across packed forwards: what metrics.json and the benchmark report as padding and passes."""

    real_tokens: int = 0
    processed_tokens: int = 0
    forward_calls: int = 0

    def add(self, real: int, processed: int, calls: int) -> None:
        self.real_tokens += real
        self.processed_tokens += processed
        self.forward_calls += calls

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.real_tokens / self.processed_tokens if self.processed_tokens else 0.0


def sequence_logps(token_logps: torch.Tensor, seq_ids: torch.Tensor, num_seqs: int) -> torch.Tensor:
    """Sum of next-token log-probs per packed sequence: (B, T-1) values, (B, T) sequence ids -> (num_seqs,).

    `token_logps[b, t]` scores token t+1 of row b (0 where that token has no label) and belongs to the sequence of
    position t+1; filler positions (seq id -1) count nowhere. Example: one row, seq_ids [0, 0, 0, 1, 1, -1],
    token_logps [-0.5, -0.25, 0.0, -2.0, -9.0] -> sequence 0: -0.5 - 0.25 = -0.75 (tokens 1, 2); sequence 1: -2.0
    (token 4; token 3 is its first, never labelled); the -9.0 lands on filler and counts nowhere.
    """
    assert token_logps.shape[-1] == seq_ids.shape[-1] - 1, (token_logps.shape, seq_ids.shape)
    return segment_sum(token_logps.reshape(-1), seq_ids[:, 1:].reshape(-1), num_seqs)


@contextlib.contextmanager
def compact_scoring() -> Iterator[None]:
    """Inside the block, TRL's fused head gathers labelled positions before the LM head on CPU and CUDA too."""
    original = trl_utils._use_triton
    trl_utils._use_triton = lambda device: device.type in ("cpu", "cuda") or original(device)
    try:
        yield
    finally:
        trl_utils._use_triton = original


def ensure_fused_head(model) -> None:
    """Add TRL's fused LM head to the model (the PreTrainedModel under a PEFT wrapper) unless it already has one."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if "forward" not in vars(base):  # add_fused_lm_head patches the instance's forward
        trl_utils.add_fused_lm_head(base)


def shares_prefix(model) -> str | None:
    """Why `model` cannot run prefix-shared bins (None: it can). They need an explicit (L, L) attention mask, which
    SDPA and eager attention take as given; FlashAttention and the like see only position_ids, and a sliding window
    or chunked attention would be lost from a mask that only says who shares a prefix."""
    config = _config(model).get_text_config() if hasattr(_config(model), "get_text_config") else _config(model)
    attn = getattr(_config(model), "_attn_implementation", None)
    if attn not in ("sdpa", "sdpa_blocks", "eager"):
        return f"attention implementation {attn} takes no explicit mask"
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True) is not False:
        return "sliding-window attention"
    if any(t != "full_attention" for t in getattr(config, "layer_types", None) or ()):
        return "layers of other attention types than full attention"
    return None


def _config(model):
    """The model's config, through a DistributedDataParallel wrapper (PEFT's wrapper forwards it itself)."""
    return getattr(model, "module", model).config


def forward_bins(model, packed: Packed, device: torch.device, per_bin: bool, **kwargs) -> list:
    """The fused-head forward of packed rows: one call per bin cut to its real length (no filler computed: CPU), or
    one batched call over all bins (GPU). Prefix-shared bins pass their attention mask (in the form the attention
    implementation takes: bool for SDPA, additive for eager). Returns the FusedCausalLMOutput of each call."""
    rows = [packed.row(b) for b in range(packed.input_ids.shape[0])] if per_bin else [packed]
    return [model(**_inputs(model, r, device), use_cache=False, fused_lm_head=True, **kwargs) for r in rows]


def _inputs(model, rows: Packed, device: torch.device) -> dict[str, torch.Tensor]:
    inputs = {"input_ids": rows.input_ids, "position_ids": rows.position_ids, "labels": rows.labels}
    mask = rows.attention_mask()
    if mask is not None:
        if getattr(_config(model), "_attn_implementation", None) == "eager":
            dtype = next(model.parameters()).dtype
            mask = torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, torch.finfo(dtype).min)
        inputs["attention_mask"] = mask
    return {k: v.to(device) for k, v in inputs.items()}


def prompt_groups(sequences: list[tuple[list[int], list[int]]]) -> tuple[list[Group], list[int]]:
    """(prompt_ids, answer_ids) sequences grouped by identical prompt -> the groups (in order of first appearance)
    and, per input sequence, its number in pack_shared's member order. A prompt of fewer than 2 tokens leaves
    nothing to share (the copy of its last token is all of it): such a sequence is a group of its own."""
    groups: dict[tuple, Group] = {}
    members: list[tuple[tuple, int]] = []
    for i, (prompt, answer) in enumerate(sequences):
        key = tuple(prompt) if len(prompt) > 1 else ("alone", i)
        group = groups.setdefault(key, Group(list(prompt), [], []))
        members.append((key, len(group.rests)))
        group.rests.append(list(answer))
        group.rest_labels.append(list(answer))
    first, n = {}, 0
    for key, group in groups.items():
        first[key], n = n, n + len(group.rests)
    return list(groups.values()), [first[key] + k for key, k in members]


@torch.no_grad()
def answer_logps(
    model,
    sequences: list[tuple[list[int], list[int]]],
    pad_id: int,
    capacity: int = DEFAULT_CAPACITY,
    stats: PackStats | None = None,
    desc: str = "log-probs",
    share: bool = True,
) -> list[float]:
    """Sum of the answer tokens' log-probs of each (prompt_ids, answer_ids), in input order.

    Sequences with the same prompt (a pair's chosen and rejected, a question's candidate answers) compute that prompt
    once (`pack_shared`) when `share` and the model allows it (`shares_prefix`); otherwise each is packed whole. All
    are planned into bins of `capacity` tokens at once (a longer group gets a bin of its own) and run one bin per
    forward; the caller chooses the mode (eval) and any autocast."""
    if not sequences:
        return []
    ensure_fused_head(model)
    packed, order = _pack_sequences(model, sequences, capacity, pad_id, share)
    device = next(model.parameters()).device
    out = torch.zeros(len(sequences), dtype=torch.float64)
    with compact_scoring():
        for b in tqdm(range(packed.input_ids.shape[0]), desc=desc, leave=False, disable=packed.input_ids.shape[0] < 2):
            row = packed.row(b)
            (result,) = forward_bins(model, row, device, per_bin=False)
            out += sequence_logps(result.log_probs.double().cpu(), row.seq_ids, len(sequences))
            if stats is not None:
                stats.add(row.real_tokens, row.total_tokens, 1)
    return out[order].tolist()


def _pack_sequences(model, sequences, capacity: int, pad_id: int, share: bool) -> tuple[Packed, torch.Tensor]:
    """The packed bins and, per input sequence, its number in them."""
    if share and shares_prefix(model) is None:
        groups, order = prompt_groups(sequences)
        if len(groups) < len(sequences):  # something is shared
            longest = max(g.packed_length for g in groups)
            return pack_shared(groups, max(capacity, longest), pad_id), torch.tensor(order)
    ids = [p + a for p, a in sequences]
    labels = [[-100] * len(p) + a for p, a in sequences]
    return pack(ids, labels, max(capacity, max(len(x) for x in ids)), pad_id), torch.arange(len(sequences))
