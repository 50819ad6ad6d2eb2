"""The shared collation layer: one chat-template rendering and loss mask for SFT, DPO and eval, and packing.

Every stage renders a (prompt, answer) pair through `render`, so DPO starts from exactly the token distribution SFT
trained on. Packing is best-fit decreasing into bins of `capacity` tokens; position_ids restart at 0 per sequence, which
is how transformers' SDPA and FlashAttention paths detect packed sequences (no attention mask, use_cache=False).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

Messages = list[dict[str, str]]


def _ids(out) -> list[int]:
    """apply_chat_template returns a list or a BatchEncoding depending on the version; we want the ids."""
    if isinstance(out, dict) or hasattr(out, "keys"):
        out = out["input_ids"]
    return list(out)


def common_prefix_length(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def render_prompt(tokenizer, prompt: Messages) -> list[int]:
    """The prompt as the model sees it at inference: chat template plus the assistant header."""
    return _ids(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True))


def render(tokenizer, prompt: Messages, answer: Messages) -> tuple[list[int], list[int]]:
    """(prompt_ids, answer_ids): the answer starts where prompt and prompt+answer renderings diverge (as TRL does)."""
    prompt_ids = render_prompt(tokenizer, prompt)
    full = _ids(tokenizer.apply_chat_template(prompt + answer, tokenize=True))
    k = common_prefix_length(prompt_ids, full)
    return full[:k], full[k:]


def render_continuation(tokenizer, prompt: Messages, text: str) -> tuple[list[int], list[int]]:
    """(prompt_ids, continuation_ids) for scoring `text` as the start of the assistant's reply, without an end of
    turn: the prompt with the generation header, then `text`, tokenized together and split where they diverge (as
    lm-evaluation-harness splits context and continuation)."""
    prompt_ids = render_prompt(tokenizer, prompt)
    header = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    full = tokenizer(header + text, add_special_tokens=False)["input_ids"]
    k = common_prefix_length(prompt_ids, full)
    return prompt_ids[:k], full[k:]


def truncate(prompt_ids: list[int], answer_ids: list[int], max_length: int) -> tuple[list[int], list[int]]:
    """Keep the start of the sequence (TRL's keep_start): the prompt first, then as much answer as fits."""
    prompt_ids = prompt_ids[:max_length]
    return prompt_ids, answer_ids[: max(0, max_length - len(prompt_ids))]


def render_sft(tokenizer, row: dict, max_length: int) -> dict[str, list[int]]:
    """An SFT row -> input_ids and completion_mask (1 on answer tokens, which carry the loss)."""
    p, a = truncate(*render(tokenizer, row["prompt"], row["completion"]), max_length)
    return {"input_ids": p + a, "completion_mask": [0] * len(p) + [1] * len(a)}


def render_pair(tokenizer, row: dict, max_length: int) -> dict[str, list[int]]:
    """A preference row -> prompt_ids, chosen_ids, rejected_ids, each side truncated to max_length in total."""
    p, c = render(tokenizer, row["prompt"], row["chosen"])
    p2, r = render(tokenizer, row["prompt"], row["rejected"])
    k = min(len(p), len(p2))  # both sides share the prompt rendering
    p, c = truncate(p[:k], p[k:] + c, max_length)
    _, r = truncate(p2[:k], p2[k:] + r, max_length)
    return {"prompt_ids": p, "chosen_ids": c, "rejected_ids": r}


def answerless(rendered: dict[str, list[list[int]]], max_length: int | None = None) -> int:
    """How many rows of a batch of rendered columns (render_sft's or render_pair's, as `Dataset.iter` gives them) keep
    no answer token: an SFT row with no completion token among its first `max_length`, a pair with an empty chosen
    or rejected answer (truncation cut it away)."""
    if "completion_mask" in rendered:
        return sum(1 for mask in rendered["completion_mask"] if not any(mask[:max_length]))
    return sum(1 for c, r in zip(rendered["chosen_ids"], rendered["rejected_ids"], strict=True) if not (c and r))


def template_fingerprint(tokenizer) -> str:
    return hashlib.sha256((tokenizer.chat_template or "").encode()).hexdigest()[:16]


# ---- packing -----------------------------------------------------------------------------------------------------


def plan_bins(lengths: list[int], capacity: int) -> list[list[int]]:
    """Best-fit decreasing: sequence indices per bin, each bin's total length <= capacity (longer items alone)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        fits = [b for b in range(len(bins)) if room[b] >= lengths[i]]
        if fits:
            best = min(fits, key=lambda b: (room[b], b))
            bins[best].append(i)
            room[best] -= lengths[i]
        else:
            bins.append([i])
            room.append(capacity - lengths[i])
    return bins


@dataclass
class Packed:
    """Rows of packed sequences (nbins, L each).

    seq_ids: the sequence whose log-prob a token's prediction counts for (-1: none, e.g. filler); groups: the
    attention segment of each position (-1 on filler); index[s] = (bin, positions of sequence s's tokens, in order).
    branches is None for plain packing (position_ids restarting per sequence say everything); with prefix sharing
    (`pack_shared`) it is 0 on a group's shared prefix and k on its k-th member, and `attention_mask` spells out
    who sees whom."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor  # -100 where no loss
    seq_ids: torch.Tensor
    groups: torch.Tensor
    index: list[tuple[int, torch.Tensor]]
    branches: torch.Tensor | None = None

    @property
    def real_tokens(self) -> int:
        return int((self.groups >= 0).sum())

    @property
    def total_tokens(self) -> int:
        return self.input_ids.numel()

    def row(self, b: int) -> Packed:
        """Bin b alone, cut to its real tokens (they come first): a forward with no filler computed."""
        n = int((self.groups[b] >= 0).sum())
        cut = [t[b : b + 1, :n] for t in (self.input_ids, self.position_ids, self.labels, self.seq_ids, self.groups)]
        branches = None if self.branches is None else self.branches[b : b + 1, :n]
        return Packed(*cut, [], branches)

    def attention_mask(self) -> torch.Tensor | None:
        """(nbins, 1, L, L) bool, True where query q may attend to key k: same group, k <= q, and k on the shared
        prefix or on q's own member; filler sees only itself. None without prefix sharing."""
        if self.branches is None:
            return None
        g, br = self.groups, self.branches
        width = g.shape[1]
        causal = torch.ones(width, width, dtype=torch.bool).tril()
        same = (g[:, :, None] == g[:, None, :]) & (g[:, :, None] >= 0)
        member = (br[:, None, :] == 0) | (br[:, :, None] == br[:, None, :])
        alone = torch.eye(width, dtype=torch.bool) & (g[:, :, None] < 0)
        return ((same & member & causal) | alone)[:, None]


def _blank_bins(shape: tuple[int, int], pad_id: int) -> tuple[torch.Tensor, ...]:
    """Empty bins: (input_ids = pad, position_ids = 0, labels = -100, seq_ids = -1)."""
    return (
        torch.full(shape, pad_id, dtype=torch.long),
        torch.zeros(shape, dtype=torch.long),
        torch.full(shape, -100, dtype=torch.long),
        torch.full(shape, -1, dtype=torch.long),
    )


def pack(
    ids: list[list[int]], labels: list[list[int]], capacity: int, pad_id: int, bins: list[list[int]] | None = None
) -> Packed:
    """Pack sequences into bins; shorter bins are filled with one filler segment (its own positions, label -100)."""
    lengths = [len(x) for x in ids]
    bins = bins if bins is not None else plan_bins(lengths, capacity)
    width = max(sum(lengths[i] for i in b) for b in bins)
    out_ids, out_pos, out_lab, out_seq = _blank_bins((len(bins), width), pad_id)
    index: list[tuple[int, torch.Tensor]] = [(0, torch.empty(0, dtype=torch.long))] * len(ids)
    for b, members in enumerate(bins):
        offset = 0
        for i in members:
            n = lengths[i]
            out_ids[b, offset : offset + n] = torch.tensor(ids[i])
            out_pos[b, offset : offset + n] = torch.arange(n)
            lab = torch.tensor(labels[i])
            lab[0] = -100  # a sequence's first token is never a label: it must not be predicted from the previous one
            out_lab[b, offset : offset + n] = lab
            out_seq[b, offset : offset + n] = i
            index[i] = (b, torch.arange(offset, offset + n))
            offset += n
        out_pos[b, offset:] = torch.arange(width - offset)  # filler restarts positions: its own segment
    return Packed(out_ids, out_pos, out_lab, out_seq, out_seq.clone(), index)


@dataclass
class Group:
    """Sequences that start with the same unlabelled tokens: member k is prefix + rests[k], labelled
    [-100] * len(prefix) + rest_labels[k] (a DPO pair: the prompt, then chosen and rejected)."""

    prefix: list[int]
    rests: list[list[int]]
    rest_labels: list[list[int]]

    def segments(self) -> list[list[int]]:
        """The packed layout: the prefix but its last token (the trunk), then per member that last token again and
        its rest. The copy sits at the same position and sees the same keys as the original, so it computes the
        same hidden state, and predicts the member's first answer token."""
        head, last = self.prefix[:-1], self.prefix[-1:]
        return [head] + [last + r for r in self.rests]

    @property
    def packed_length(self) -> int:
        return sum(len(seg) for seg in self.segments())

    @property
    def unshared_length(self) -> int:
        return sum(len(self.prefix) + len(r) for r in self.rests)


def pack_shared(groups: list[Group], capacity: int, pad_id: int) -> Packed:
    """Pack groups so each shared prefix is computed once (one group never splits across bins; a group longer than
    `capacity` gets a bin of its own). Sequences are numbered member by member, group by group.

    Example: prefix [5, 6, 7], members [8, 9] and [4] -> tokens [5, 6 | 7, 8, 9 | 7, 4], positions
    [0, 1 | 2, 3, 4 | 2, 3], branches [0, 0 | 1, 1, 1 | 2, 2]; member 2's tokens sit at [0, 1, 5, 6], and its
    tokens see the trunk and themselves, never member 1's."""
    lengths = [g.packed_length for g in groups]
    bins = plan_bins(lengths, capacity)
    width = max(sum(lengths[i] for i in b) for b in bins)
    out_ids, out_pos, out_lab, out_seq = _blank_bins((len(bins), width), pad_id)
    out_grp, out_br = out_seq.clone(), out_seq.clone()
    first = [0]
    for g in groups:
        first.append(first[-1] + len(g.rests))
    index: list[tuple[int, torch.Tensor]] = [(0, torch.empty(0, dtype=torch.long))] * first[-1]
    for b, members in enumerate(bins):
        offset = 0
        for gi in members:
            group, trunk_at = groups[gi], offset
            trunk = max(len(group.prefix) - 1, 0)
            for k, seg in enumerate(group.segments()):
                span = slice(offset, offset + len(seg))
                out_ids[b, span] = torch.tensor(seg, dtype=torch.long)
                out_pos[b, span] = torch.arange(len(seg)) + (trunk if k else 0)
                out_grp[b, span], out_br[b, span] = gi, k
                s = first[gi] + max(k - 1, 0)  # the trunk's predictions carry no label: counted for member 1
                out_seq[b, span] = s
                if k:
                    rest_labels = group.rest_labels[k - 1]
                    lab = [-100] * (len(seg) - len(rest_labels)) + rest_labels
                    if lab:
                        lab[0] = -100  # the copy of the prefix's last token, or (no prefix) a first token: no label
                    out_lab[b, span] = torch.tensor(lab, dtype=torch.long)
                    index[s] = (
                        b,
                        torch.cat([torch.arange(trunk_at, trunk_at + trunk), torch.arange(span.start, span.stop)]),
                    )
                offset += len(seg)
        out_pos[b, offset:] = torch.arange(width - offset)
    return Packed(out_ids, out_pos, out_lab, out_seq, out_grp, index, out_br)


def unpack_shifted(per_token: torch.Tensor, packed: Packed, width: int) -> torch.Tensor:
    """Packed next-token values (nbins, L-1) -> padded per-row layout (S, width) as an unpacked forward would give.

    Row s holds, at index t, the value for predicting token t+1 of sequence s; positions past its length are 0.
    The value for token t+1 sits at the packed position of token t (with prefix sharing, a member's copy of the
    prefix's last token predicts its first answer token).
    """
    out = per_token.new_zeros((len(packed.index), width))
    for s, (b, where) in enumerate(packed.index):
        n = len(where)
        if n > 1:
            out[s, : n - 1] = per_token[b, where[: n - 1]]  # index assignment keeps the autograd graph
    return out


def segment_sum(values: torch.Tensor, seq_ids: torch.Tensor, num_seqs: int) -> torch.Tensor:
    """Sum `values` per sequence id (ids < 0 ignored): (N,) -> (num_seqs,)."""
    keep = seq_ids >= 0
    out = torch.zeros(num_seqs, dtype=values.dtype, device=values.device)
    return out.index_add(0, seq_ids[keep], values[keep])
