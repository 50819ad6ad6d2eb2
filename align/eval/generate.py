"""Batched greedy or sampled generation (left padding + mask + cache, no packing) and per-pair log-probs.

Greedy generation can stop each answer at the end of its first line once that line gives the answer
(`FirstLineDone`), so a closed answer given first ("ESI level: 3") does not decode a rationale nobody scores, and
computes the start the prompts share (system prompt, instruction: 26-68 % of the bundled tasks' prompt tokens) once:
its key/value cache is copied into every batch, which lays out as [shared start | padding | rest of the prompt]
(`shared_start_inputs`; positions follow the attention mask, so padding in the middle changes nothing). Where
transformers would decode with its plain dynamic cache, the cache grows in place instead (`kvcache`: room for the
answer, no copy of the whole cache per step). Greedy answers decode in chunks of `PRUNE_EVERY` steps, and the rows
that ended (end of turn, the answer line, the budget) leave the batch between chunks (`decode_pruned`): on a 2-core
CPU a step costs ~0.1 s for the weights plus ~7 ms per row, so a batch no longer pays for its finished answers until
its longest ends, and one large batch per task saves steps. On CPU the prompts are read in chunks of positions
(transformers' own `prefill_chunk_size`) sized to ~`PREFILL_TOKENS` tokens per forward: one forward over 80 triage
prompts (15k tokens, no shared start) took 36 s against 26 s in chunks of 64 positions, with the same logits. In the
default report, where the shared start is already apart, all answers of the three variants took 360 s against 379 s
(the same 696 answers; the summaries' long notes gain most, 126 -> 115 s; triage within the VM's noise).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

from align.data.collate import common_prefix_length, render_pair, render_prompt
from align.eval.kvcache import empty_growing_cache, growing, takes_dynamic_cache
from align.logps import answer_logps

FirstLine = Callable[[int, str], bool]  # (prompt index, its answer's finished first line) -> the answer is complete


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[list[dict]],
    max_new_tokens: int,
    batch_size: int = 16,
    desc: str = "generate",
    first_line_done: FirstLine | None = None,
) -> list[str]:
    """Greedy answers for chat prompts, in input order. Prompts are length-sorted so batches carry little padding.

    With `first_line_done`, an answer stops at the end of its first line when that says the line holds the answer
    (the answer is then that line); others run to `max_new_tokens` or the end of turn."""
    options: dict = {"do_sample": False}
    answers = _generate_batched(
        model, tokenizer, prompts, max_new_tokens, batch_size, desc, 1, options, first_line_done
    )
    return [texts[0] for texts in answers]


class FirstLineDone(StoppingCriteria):
    """Stops a row of a batch the step its answer's first line ends, if `done(prompt index, line)` says so."""

    def __init__(self, tokenizer, width: int, rows: list[int], done: FirstLine) -> None:
        self.tokenizer, self.width, self.done = tokenizer, width, done
        self.rows = list(rows)  # the prompt index of each batch row (rows leave the batch: `decode_pruned` updates it)
        self.newline = _newline_tokens(tokenizer)
        self.checked: set[int] = set()  # prompts whose first line has ended (stopped or not, never looked at again)
        self.stopped: set[int] = set()  # prompts stopped at their answer line

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.BoolTensor:
        for row, token in enumerate(input_ids[:, -1].tolist()):
            i = self.rows[row]
            if i in self.checked or token not in self.newline:
                continue
            text = self.tokenizer.decode(input_ids[row, self.width :], skip_special_tokens=True)
            if "\n" not in text.lstrip("\n"):
                continue  # leading blank lines: the first line has not started
            self.checked.add(i)
            if self.done(i, text.lstrip("\n").split("\n", 1)[0]):
                self.stopped.add(i)
        return torch.tensor([i in self.stopped for i in self.rows], device=input_ids.device)


@functools.lru_cache(maxsize=8)
def _newline_tokens(tokenizer) -> frozenset[int]:
    """The ids of every token whose text holds a line break (decoding the vocabulary takes seconds: once per
    tokenizer, not once per batch)."""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    return frozenset(i for i, t in enumerate(texts) if "\n" in t)


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


MIN_SHARED_START = 16  # tokens: below this, computing the shared start apart saves less than it costs


def shared_start(encoded: list[list[int]]) -> int:
    """How many leading tokens every prompt shares, leaving each at least one token of its own (0 for one prompt)."""
    if len(encoded) < 2:
        return 0
    n = min(common_prefix_length(encoded[0], e) for e in encoded[1:])
    return min(n, min(len(e) for e in encoded) - 1)


@torch.no_grad()
def start_cache(model, start: list[int]):
    """The key/value cache of the shared start, computed once (batch of one)."""
    ids = torch.tensor([start], device=model.device)
    return model(input_ids=ids, use_cache=True).past_key_values


def shared_start_inputs(encoded: list[list[int]], n_start: int, cache, pad: int) -> dict:
    """generate() inputs for prompts that begin with the same `n_start` tokens whose `cache` is computed: the start,
    each prompt's rest left-padded behind it, the mask (0 on the padding), and a copy of the cache for every row."""
    start = torch.tensor(encoded[0][:n_start])
    rest, rest_mask = left_pad([e[n_start:] for e in encoded], pad)
    rows = len(encoded)
    batch_cache = copy.deepcopy(cache)
    batch_cache.batch_repeat_interleave(rows)
    return {
        "input_ids": torch.cat([start.expand(rows, -1), rest], dim=1),
        "attention_mask": torch.cat([torch.ones(rows, n_start, dtype=torch.long), rest_mask], dim=1),
        "past_key_values": batch_cache,
    }


def _generate_batched(
    model,
    tokenizer,
    prompts: list[list[dict]],
    max_new_tokens: int,
    batch_size: int,
    desc: str,
    n: int,
    options: dict,
    first_line_done: FirstLine | None = None,
) -> list[list[str]]:
    """n answers per prompt from `model.generate(**options)`; prompts length-sorted into batches of `batch_size`."""
    assert first_line_done is None or n == 1, "stopping at the first line is for one answer per prompt"
    encoded = [render_prompt(tokenizer, p) for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out: list[list[str]] = [[] for _ in encoded]
    model.eval()
    pad = tokenizer.pad_token_id
    own_cache = takes_dynamic_cache(model)  # else generate() builds the cache the model asks for
    n_start = shared_start(encoded) if n == 1 and own_cache else 0  # k samples would need the cache expanded k-fold
    cache = start_cache(model, encoded[0][:n_start]) if n_start >= MIN_SHARED_START else None
    for start in tqdm(range(0, len(order), batch_size), desc=desc, leave=False):
        idx = order[start : start + batch_size]
        if cache is not None:
            inputs = shared_start_inputs([encoded[i] for i in idx], n_start, cache, pad)
            inputs["past_key_values"] = growing(inputs["past_key_values"], max_new_tokens)
        else:
            ids, mask = left_pad([encoded[i] for i in idx], pad)
            inputs = {"input_ids": ids, "attention_mask": mask}
            if own_cache:
                inputs["past_key_values"] = empty_growing_cache(model, max_new_tokens)
        inputs = {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        width = inputs["input_ids"].shape[1]
        stop = FirstLineDone(tokenizer, width, idx, first_line_done) if first_line_done else None
        settings = {
            "pad_token_id": pad,
            "stopping_criteria": StoppingCriteriaList([stop]) if stop else None,
            "prefill_chunk_size": prefill_chunk(len(idx) * n, model.device),
            **options,
        }
        if n == 1 and not options.get("do_sample") and own_cache:
            new = decode_pruned(model, inputs, max_new_tokens, settings, stop)
        else:
            gen = model.generate(**inputs, max_new_tokens=max_new_tokens, num_return_sequences=n, **_decoding(settings))
            new = [gen[row, width:] for row in range(gen.shape[0])]
        for row, i in enumerate(idx):  # the n answers of prompt `row` are rows row*n .. row*n + n - 1
            out[i] = [tokenizer.decode(new[row * n + j], skip_special_tokens=True).strip() for j in range(n)]
            if stop and i in stop.stopped:
                out[i] = [out[i][0].split("\n", 1)[0].strip()]  # the answer line (the stop token may end a word)
    return out


PREFILL_TOKENS = 4096  # tokens per prefill forward on CPU (measured: the module docstring)
MIN_PREFILL_CHUNK = 16  # positions: a thinner chunk costs more in per-forward overhead than it saves


def prefill_chunk(rows: int, device: torch.device) -> int | None:
    """Prompt positions per prefill forward for a batch of `rows` sequences: ~`PREFILL_TOKENS` tokens per forward on
    CPU, where a forward over many thousand tokens runs slower per token (its activations outgrow the caches); None
    (one forward) on accelerators, which are fastest with the whole batch at once."""
    if device.type != "cpu":
        return None
    return max(MIN_PREFILL_CHUNK, PREFILL_TOKENS // max(rows, 1))


def _decoding(settings: dict) -> dict:
    """generate() keywords every call here passes (a merged SFT config can say use_cache: false, set for training;
    decoding needs the cache)."""
    return {"use_cache": True, **settings}


PRUNE_EVERY = 16  # decoding steps between looks at which rows ended (each look restarts generate(): ~ms)


def decode_pruned(model, inputs: dict, max_new_tokens: int, settings: dict, stop: FirstLineDone | None) -> list:
    """Greedy new tokens of every row of `inputs` (its own cache in `past_key_values`), decoded `PRUNE_EVERY` steps at
    a time; between chunks the rows that ended leave the batch and its cache. Each row's tokens are those
    `model.generate` gives it in one call, up to its end (tests/eval/test_generate.py)."""
    ids, mask, cache = inputs["input_ids"], inputs["attention_mask"], inputs["past_key_values"]
    width, rows = ids.shape[1], list(range(ids.shape[0]))
    eos = _eos_ids(model)
    new: list = [None] * len(rows)
    while rows:
        steps = min(PRUNE_EVERY, max_new_tokens - (ids.shape[1] - width))
        gen = model.generate(
            input_ids=ids, attention_mask=mask, past_key_values=cache, max_new_tokens=steps, **_decoding(settings)
        )
        chunk = gen[:, ids.shape[1] :]
        ended = [
            gen.shape[1] - width >= max_new_tokens
            or chunk.shape[1] < steps  # generate() stopped early: every row ended
            or bool(eos & set(chunk[r].tolist()))
            or (stop is not None and stop.rows[r] in stop.stopped)
            for r in range(len(rows))
        ]
        for r, done in enumerate(ended):
            if done:
                new[rows[r]] = gen[r, width:]
        keep = [r for r, done in enumerate(ended) if not done]
        if not keep:
            break
        cache.batch_select_indices(torch.tensor(keep, device=gen.device))
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], chunk.shape[1])], dim=1)[keep]
        ids, rows = gen[keep], [rows[r] for r in keep]
        if stop:
            stop.rows = [stop.rows[r] for r in keep]
    return new


def _eos_ids(model) -> set[int]:
    """The token ids that end an answer for `model.generate` (its generation config's eos, one id or several)."""
    eos = getattr(model.generation_config, "eos_token_id", None)
    return set() if eos is None else {eos} if isinstance(eos, int) else set(eos)


def pair_logps(model, tokenizer, rows: list[dict], max_length: int) -> tuple[list[float], list[float]]:
    """Sum of answer-token log-probs of the chosen and of the rejected side of each preference row."""
    model.eval()
    sequences = []
    for row in rows:
        r = render_pair(tokenizer, row, max_length)
        sequences += [(r["prompt_ids"], r["chosen_ids"]), (r["prompt_ids"], r["rejected_ids"])]
    logps = answer_logps(model, sequences, tokenizer.pad_token_id, desc="preference log-probs")
    return logps[0::2], logps[1::2]
