"""Log-probabilities of answers under a model, one path for all: DPO's reference pass, the report's preference
metrics, log-likelihood scoring of closed answers, the decisions diagnostic and held-out perplexity.

Sequences are packed padding-free (`collate.pack`: best-fit decreasing, position_ids restart per sequence) and each
bin runs through TRL's fused LM head (`trl.trainer.utils.add_fused_lm_head`), which applies the model's own logit
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

from align.data.collate import Packed, pack, segment_sum

DEFAULT_CAPACITY = 2048  # tokens per packed bin for evaluation passes (one bin per forward)


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


def forward_bins(model, packed: Packed, device: torch.device, per_bin: bool, **kwargs) -> list:
    """The fused-head forward of packed rows: one call per bin cut to its real length (no filler computed: CPU), or
    one batched call over all bins (GPU). Returns the FusedCausalLMOutput of each call."""
    rows = [_real_part(packed, b) for b in range(packed.input_ids.shape[0])] if per_bin else [packed]
    return [
        model(
            input_ids=r.input_ids.to(device),
            position_ids=r.position_ids.to(device),
            labels=r.labels.to(device),
            use_cache=False,
            fused_lm_head=True,
            **kwargs,
        )
        for r in rows
    ]


def _real_part(packed: Packed, b: int) -> Packed:
    n = int((packed.seq_ids[b] >= 0).sum())
    cut = (packed.input_ids, packed.position_ids, packed.labels, packed.seq_ids)
    return Packed(*(t[b : b + 1, :n] for t in cut), [], [])


@torch.no_grad()
def answer_logps(
    model,
    sequences: list[tuple[list[int], list[int]]],
    pad_id: int,
    capacity: int = DEFAULT_CAPACITY,
    stats: PackStats | None = None,
    desc: str = "log-probs",
) -> list[float]:
    """Sum of the answer tokens' log-probs of each (prompt_ids, answer_ids), in input order.

    All sequences are planned into bins of `capacity` tokens at once (a longer sequence gets a bin of its own) and
    run one bin per forward; the caller chooses the mode (eval) and any autocast."""
    if not sequences:
        return []
    ensure_fused_head(model)
    ids = [p + a for p, a in sequences]
    labels = [[-100] * len(p) + a for p, a in sequences]
    packed = pack(ids, labels, max(capacity, max(len(x) for x in ids)), pad_id)
    device = next(model.parameters()).device
    out = torch.zeros(len(sequences), dtype=torch.float64)
    with compact_scoring():
        for b in tqdm(range(packed.input_ids.shape[0]), desc=desc, leave=False, disable=packed.input_ids.shape[0] < 2):
            row = _real_part(packed, b)
            (result,) = forward_bins(model, row, device, per_bin=False)
            out += sequence_logps(result.log_probs.double().cpu(), row.seq_ids, len(sequences))
            if stats is not None:
                stats.add(row.real_tokens, row.total_tokens, 1)
    return out.tolist()
