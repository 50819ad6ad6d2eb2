"""Batched greedy or sampled generation and per-pair log-probs (generation: left padding + mask + cache, no packing)."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from align.data.collate import Packed, pack, render_pair, render_prompt, segment_sum


@torch.no_grad()
def generate(
    model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int = 16, desc: str = "generate"
) -> list[str]:
    """Greedy answers for chat prompts, in input order. Prompts are length-sorted so batches carry little padding."""
    answers = _generate_batched(model, tokenizer, prompts, max_new_tokens, batch_size, desc, 1, {"do_sample": False})
    return [texts[0] for texts in answers]


@torch.no_grad()
def sample(
    model,
    tokenizer,
    prompts: list[list[dict]],
    max_new_tokens: int,
    k: int,
    temperature: float,
    top_p: float,
    seed: int,
    batch_size: int = 16,
    desc: str = "sample",
) -> list[list[str]]:
    """k sampled answers per chat prompt, in input order. `batch_size` counts sequences (prompts x k) per call.

    Seeded once at the start, so the same prompts, model, k and batch size give the same answers.
    """
    assert k >= 1 and temperature > 0 and 0 < top_p <= 1, (k, temperature, top_p)
    torch.manual_seed(seed)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}  # top_k 0: top-p only
    per_call = max(1, batch_size // k)
    return _generate_batched(model, tokenizer, prompts, max_new_tokens, per_call, desc, k, sampling)


def left_pad(encoded: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> (input_ids, attention_mask), both (B, T), padded on the left so every prompt ends at T."""
    width = max(len(ids) for ids in encoded)
    ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, tokens in enumerate(encoded):
        ids[row, width - len(tokens) :] = torch.tensor(tokens)
        mask[row, width - len(tokens) :] = 1
    return ids, mask


def _generate_batched(
    model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int, desc: str, n: int, options: dict
) -> list[list[str]]:
    """n answers per prompt from `model.generate(**options)`; prompts length-sorted into batches of `batch_size`."""
    encoded = [render_prompt(tokenizer, p) for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out: list[list[str]] = [[] for _ in encoded]
    model.eval()
    pad = tokenizer.pad_token_id
    for start in tqdm(range(0, len(order), batch_size), desc=desc, leave=False):
        idx = order[start : start + batch_size]
        ids, mask = left_pad([encoded[i] for i in idx], pad)
        gen = model.generate(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            max_new_tokens=max_new_tokens,
            num_return_sequences=n,
            pad_token_id=pad,
            use_cache=True,  # a merged SFT config can say use_cache: false (set for training); decoding needs the cache
            **options,
        )  # (len(idx) * n, T + new): the n answers of prompt r are rows r*n .. r*n + n - 1
        width = ids.shape[1]
        for row, i in enumerate(idx):
            out[i] = [tokenizer.decode(gen[row * n + j, width:], skip_special_tokens=True).strip() for j in range(n)]
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
