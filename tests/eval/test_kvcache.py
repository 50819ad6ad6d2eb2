"""The in-place key/value cache gives attention exactly what transformers' DynamicLayer gives it, without a copy per
step; generation with it equals transformers' own generation bit for bit (tiny random LLaMA, fp32)."""

from __future__ import annotations

import pytest
import torch
from transformers.cache_utils import DynamicLayer

from align.config import ModelConfig
from align.eval.generate import generate, left_pad
from align.eval.kvcache import GrowingLayer, empty_growing_cache
from align.models import load_model


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(ModelConfig(name=str(tiny_model_dir), precision="fp32"), str(tiny_model_dir))


@pytest.fixture
def growing_updates(monkeypatch) -> list[int]:
    """One entry per GrowingLayer.update call made during the test."""
    calls: list[int] = []
    real = GrowingLayer.update
    monkeypatch.setattr(GrowingLayer, "update", lambda self, k, v, *a, **kw: calls.append(1) or real(self, k, v))
    return calls


def _states(rows: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, 2, length, 4, generator=g), torch.randn(rows, 2, length, 4, generator=g)


def test_growing_layer_returns_what_dynamic_layer_returns_through_every_operation() -> None:
    ours, theirs = GrowingLayer(reserve=2), DynamicLayer()
    steps = [("update", 5), ("update", 1), ("update", 1), ("update", 1), ("update", 3)]  # past the reserve: grows
    steps += [("crop", 2), ("update", 1), ("reorder", None), ("update", 1), ("select", None), ("update", 1)]
    steps += [("repeat", 2), ("update", 2)]
    for seed, (op, arg) in enumerate(steps):
        if op == "update":
            rows = theirs.keys.shape[0] if theirs.is_initialized else 3
            k, v = _states(rows, arg, seed)
            got, want = ours.update(k, v), theirs.update(k, v)
            assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]), (seed, op)
        else:
            for layer in (ours, theirs):
                if op == "crop":
                    layer.crop(-arg)
                elif op == "reorder":  # beam search: same shape, rows permuted
                    layer.reorder_cache(torch.tensor([1, 2, 0]))
                elif op == "select":
                    layer.batch_select_indices(torch.tensor([2, 0]))
                else:
                    layer.batch_repeat_interleave(arg)
        assert ours.get_seq_length() == theirs.get_seq_length(), (seed, op)
        assert torch.equal(ours.keys, theirs.keys) and torch.equal(ours.values, theirs.values), (seed, op)


def test_updates_within_the_reserve_write_into_one_buffer() -> None:
    layer = GrowingLayer(reserve=4)
    layer.update(*_states(2, 6, 0))
    buffer = layer._key_buffer.data_ptr()
    for seed in range(1, 5):
        keys, _ = layer.update(*_states(2, 1, seed))
        assert keys.data_ptr() == buffer and keys.shape[-2] == 6 + seed  # a view of the same buffer, no copy
    layer.update(*_states(2, 1, 9))
    assert layer._key_buffer.data_ptr() != buffer and layer._key_buffer.shape[-2] >= 11  # full: a bigger buffer


@pytest.mark.parametrize("reserve", [0, 3, 64])  # 0: the buffer grows at every step; 64: it never has to
def test_generation_with_the_growing_cache_is_transformers_generation_bit_for_bit(tiny, reserve) -> None:
    model, tok = tiny
    ids, mask = left_pad([tok("Chest pain" + " and nausea" * n)["input_ids"] for n in (0, 4, 9)], tok.pad_token_id)
    options = dict(max_new_tokens=8, do_sample=False, output_scores=True, return_dict_in_generate=True)
    options["pad_token_id"] = tok.pad_token_id
    with torch.no_grad():
        want = model.generate(input_ids=ids, attention_mask=mask, **options)
        got = model.generate(
            input_ids=ids, attention_mask=mask, past_key_values=empty_growing_cache(model, reserve), **options
        )
    assert torch.equal(got.sequences, want.sequences)
    assert all(torch.equal(a, b) for a, b in zip(got.scores, want.scores, strict=True))


def test_align_generation_decodes_through_the_growing_cache(tiny, growing_updates) -> None:
    model, tok = tiny
    generate(model, tok, [[{"role": "user", "content": "Chest pain"}]], max_new_tokens=4, batch_size=1)
    assert len(growing_updates) == 4 * model.config.num_hidden_layers  # prefill + 3 decoding steps, every layer


def test_a_model_that_asks_for_another_cache_keeps_it(tiny, growing_updates, monkeypatch) -> None:
    """A generation config naming its own cache (Gemma's "hybrid", "static", ...) makes a passed cache an error in
    generate(): align then passes none, and computes no shared start apart (that would pass one too)."""
    from align.eval.kvcache import takes_dynamic_cache

    model, tok = tiny
    assert takes_dynamic_cache(model)
    monkeypatch.setattr(model.generation_config, "cache_implementation", "static")
    assert not takes_dynamic_cache(model)
    prompts = [[{"role": "system", "content": "Triage " * 20}, {"role": "user", "content": c}] for c in ("a", "bb")]
    answers = generate(model, tok, prompts, max_new_tokens=3, batch_size=2)
    assert len(answers) == 2 and not growing_updates
