"""sdpa_blocks: the mask's diagonal blocks by hand; a packed SFT bin and a prefix-shared bin give the same logits and
gradients as transformers' own sdpa (fp32, 1e-5), block by block (the split is checked, not assumed); other inputs
go to sdpa as they are; `auto` picks it on CPU only, and nothing of it is saved with a model."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

import align.attention as attention
from align.attention import packed_blocks
from align.data.collate import Group, pack_shared
from align.models import Hardware, select_attn_implementation


def _mask(rows: list[str]) -> torch.Tensor:
    return torch.tensor([[c == "1" for c in r] for r in rows])


def test_blocks_of_two_packed_sequences_are_causal():
    assert packed_blocks(_mask(["10000", "11000", "00100", "00110", "00111"])) == [(0, 2, True), (2, 5, True)]


def test_a_shared_prompt_is_one_block_with_its_mask_and_filler_is_a_block_of_its_own():
    # rows 0-3: a 2-token prompt, two 1-token answers that do not see each other (pack_shared's layout); row 4 filler
    mask = _mask(["10000", "11000", "11100", "11010", "00001"])
    assert packed_blocks(mask) == [(0, 4, False), (4, 5, True)]


def test_a_query_that_looks_back_across_a_boundary_joins_the_blocks():
    # row 3 sees key 1: the two "sequences" are one block (0, 4), not causal
    assert packed_blocks(_mask(["1000", "1100", "0010", "0101"])) == [(0, 4, False)]
    # row 0 sees key 2, ahead of it: no boundary at 2 either
    assert packed_blocks(_mask(["1010", "1100", "0010", "0011"])) == [(0, 4, False)]
    # a bidirectional mask: one block, not causal
    assert packed_blocks(torch.ones(3, 3, dtype=torch.bool)) == [(0, 3, False)]
    # a query that attends nowhere stays in the block from the start
    assert packed_blocks(_mask(["100", "000", "001"])) == [(0, 2, False), (2, 3, True)]


@pytest.fixture
def pair(tiny_model_dir):
    """The tiny LLaMA twice: with transformers' sdpa and with sdpa_blocks, same weights."""
    load = lambda attn: AutoModelForCausalLM.from_pretrained(  # noqa: E731
        tiny_model_dir, dtype=torch.float32, attn_implementation=attn
    )
    return load("sdpa"), load(attention.NAME)


@pytest.fixture
def calls(monkeypatch):
    """Every sdpa call sdpa_blocks makes, as (query length, mask given)."""
    seen: list[tuple[int, bool]] = []
    original = attention.sdpa_attention_forward

    def record(module, query, key, value, mask, **kwargs):
        seen.append((query.shape[2], mask is not None))
        return original(module, query, key, value, mask, **kwargs)

    monkeypatch.setattr(attention, "sdpa_attention_forward", record)
    return seen


def _grads(model) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_packed_sft_bin_equals_sdpa_forward_and_backward(pair, calls):
    torch.manual_seed(0)
    lengths = [7, 12, 5]
    ids = torch.randint(3, 200, (1, sum(lengths)))
    position_ids = torch.cat([torch.arange(n) for n in lengths])[None]
    out = []
    for model in pair:
        logits = model(input_ids=ids, position_ids=position_ids, use_cache=False).logits
        logits.float().pow(2).mean().backward()
        out.append((logits.detach(), _grads(model)))
    (ref, ref_grads), (got, got_grads) = out
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    assert len(ref_grads) == len(got_grads) > 0
    for g, r in zip(got_grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5)
    layers = pair[1].config.num_hidden_layers
    assert calls == [(7, False), (12, False), (5, False)] * layers  # each sequence alone, causal, no mask


def test_prefix_shared_bin_equals_sdpa(pair, calls):
    groups = [
        Group([5, 6, 7, 8], [[9, 10], [11]], [[9, 10], [11]]),
        Group([20, 21, 22], [[23], [24, 25]], [[23], [24, 25]]),
    ]
    packed = pack_shared(groups, capacity=32, pad_id=0)
    inputs = {
        "input_ids": packed.input_ids,
        "position_ids": packed.position_ids,
        "attention_mask": packed.attention_mask(),
    }
    with torch.no_grad():
        ref, got = (model(**inputs, use_cache=False).logits for model in pair)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    lengths = [g.packed_length for g in groups]
    filler = packed.input_ids.shape[1] - sum(lengths)
    expected = [(n, True) for n in lengths] + [(1, False)] * filler  # filler sees only itself: causal blocks of 1
    assert sorted(calls[: len(expected)]) == sorted(expected)


def test_a_batch_of_rows_and_decoding_go_to_sdpa_unchanged(pair, calls):
    ids = torch.randint(3, 200, (2, 6))
    mask = torch.tensor([[0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        ref, got = (model(input_ids=ids, attention_mask=mask).logits for model in pair)
        gen = [m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False) for m in pair]
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-6)
    assert torch.equal(gen[0], gen[1])
    assert all(q in (6, 1) for q, _ in calls)  # whole rows (6 positions) or one decoded position: never cut


def test_bf16_autocast_blocks_run_in_fp32_and_come_back_in_bf16(pair):
    lengths = [9, 6]
    ids = torch.randint(3, 200, (1, sum(lengths)))
    position_ids = torch.cat([torch.arange(n) for n in lengths])[None]
    with torch.no_grad():
        exact = pair[0](input_ids=ids, position_ids=position_ids, use_cache=False).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            blocks = pair[1](input_ids=ids, position_ids=position_ids, use_cache=False).logits
    assert blocks.dtype == torch.bfloat16
    torch.testing.assert_close(blocks.float(), exact, atol=0.05, rtol=0.05)


def test_auto_picks_blocks_on_cpu_only_and_the_saved_config_does_not_name_it(pair, tmp_path):
    cpu = Hardware(cuda=False, flash_attn=False, cuda_bf16=False, cpu_bf16=True)
    assert select_attn_implementation("auto", cpu) == attention.NAME
    assert select_attn_implementation("auto", Hardware(True, False, True, False)) == "sdpa"
    assert select_attn_implementation("sdpa", cpu) == "sdpa"
    pair[1].save_pretrained(tmp_path)
    assert attention.NAME not in json.dumps(json.loads((tmp_path / "config.json").read_text()))
