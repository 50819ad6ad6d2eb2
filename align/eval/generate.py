"""Batched greedy generation and per-pair log-probs for evaluation (no packing here: left padding + mask + cache)."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from align.data.collate import Packed, pack, render_pair, render_prompt, segment_sum


@torch.no_grad()
def generate(
    model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int = 16, desc: str = "generate"
) -> list[str]:
    """Greedy answers for chat prompts, in input order. Prompts are length-sorted so batches carry little padding."""
    encoded = [render_prompt(tokenizer, p) for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out: list[str] = [""] * len(encoded)
    model.eval()
    pad = tokenizer.pad_token_id
    for start in tqdm(range(0, len(order), batch_size), desc=desc, leave=False):
        idx = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):  # left padding: every prompt ends where generation starts
            ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
            mask[row, width - len(encoded[i]) :] = 1
        gen = model.generate(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad,
        )
        for row, i in enumerate(idx):
            out[i] = tokenizer.decode(gen[row, width:], skip_special_tokens=True).strip()
    return out


@torch.no_grad()
def pair_logps(
    model, tokenizer, rows: list[dict], max_length: int, capacity: int = 2048
) -> tuple[list[float], list[float]]:
    """Sum of answer-token log-probs for chosen and rejected sides of each pair, computed packed (no cache)."""
    model.eval()
    chosen: list[float] = []
    rejected: list[float] = []
    for start in tqdm(range(0, len(rows), 8), desc="preference log-probs", leave=False):
        ids, labels = [], []
        for row in rows[start : start + 8]:
            r = render_pair(tokenizer, row, max_length)
            for side in ("chosen_ids", "rejected_ids"):
                ids.append(r["prompt_ids"] + r[side])
                labels.append([-100] * len(r["prompt_ids"]) + r[side])
        p = pack(ids, labels, max(capacity, max(len(x) for x in ids)), tokenizer.pad_token_id)
        logps = labelled_logps(model, p, len(ids))
        chosen += logps[0::2].tolist()
        rejected += logps[1::2].tolist()
    return chosen, rejected


def labelled_logps(model, p: Packed, num_seqs: int) -> torch.Tensor:
    """Per-sequence log-probs, projecting through the LM head only at labelled positions (answers are ~20% of tokens).

    Same numbers as `collate.sequence_logps` on full logits (tested); assumes a plain linear LM head (LLaMA-style:
    no logit scaling or soft-capping).
    """
    device = model.device
    backbone = getattr(model, model.base_model_prefix)
    hidden = backbone(
        input_ids=p.input_ids.to(device), position_ids=p.position_ids.to(device), use_cache=False
    ).last_hidden_state  # (B, T, H)
    target = p.labels[:, 1:].to(device)
    mask = target != -100
    logits = model.get_output_embeddings()(hidden[:, :-1][mask]).float()  # (n, V)
    token = torch.log_softmax(logits, dim=-1).gather(-1, target[mask].unsqueeze(-1)).squeeze(-1)
    return segment_sum(token, p.seq_ids[:, 1:].to(device)[mask], num_seqs).cpu()
