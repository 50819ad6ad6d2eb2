"""The memory check before the first step: the estimate (hand-computed), the bundled recipes on the real 135M shape
fit a 24 GiB machine, the old 8-bin default does not, and a run that cannot fit stops with the key to lower."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import LlamaConfig, LlamaForCausalLM

from align.config import load_recipe
from align.errors import UserError
from align.train.memory import GIB, DecoderShape, check_memory, peak_training_bytes
from align.train.sft import run_sft

REPO = Path(__file__).resolve().parents[2]
SMOLLM2 = DecoderShape(layers=30, hidden=576, intermediate=1536, vocab=49152)
# what a 24 GiB machine has left once the 135M model (0.5 GiB fp32), Python, torch and the OS are loaded
AVAILABLE_24GIB = 20 * GIB


def test_estimate_by_hand():
    shape = DecoderShape(layers=2, hidden=8, intermediate=16, vocab=100)
    # per layer 9*8 + 4*16 = 136; 10 tokens * ((2 + 1) * 136 + 3*8) = 4320; 4 labelled * 4 * 100 = 1600; 3 * 50 = 150
    assert peak_training_bytes(10, 4, shape, 50) == (4320 + 1600 + 150) * 4
    # LoRA dropout: + 6*8 + 16 = 64 per layer -> 200; 10 * (3 * 200 + 24) = 6240
    assert peak_training_bytes(10, 4, shape, 50, lora_dropout=True) == (6240 + 1600 + 150) * 4
    # gradient checkpointing: each layer's input (2 * 8) + one layer recomputed with its gradients (2 * 136) = 288;
    # 10 * (288 + 24) = 3120
    assert peak_training_bytes(10, 4, shape, 50, gradient_checkpointing=True) == (3120 + 1600 + 150) * 4


def _smollm2_on_meta() -> torch.nn.Module:
    """SmolLM2-135M's architecture without its weights (meta tensors: no memory)."""
    cfg = LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        tie_word_embeddings=True,
    )
    with torch.device("meta"):
        return LlamaForCausalLM(cfg)


def _worst_case_rows(stage: str, length: int) -> Dataset:
    """Rows whose every token is labelled: the estimate's upper bound, whatever the data."""
    if stage == "dpo":
        return Dataset.from_list([{"prompt_ids": [], "chosen_ids": [1] * length, "rejected_ids": [1] * length}])
    return Dataset.from_list([{"input_ids": [1] * length, "completion_mask": [1] * length}])


BUNDLED = sorted(p for p in (REPO / "recipes").glob("smollm2-135m*/*.yaml") if p.stem.split("-")[0] in ("sft", "dpo"))


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_bundled_recipes_fit_a_24gib_machine_even_with_every_token_labelled(path: Path, caplog):
    recipe = load_recipe(path)
    model = _smollm2_on_meta()
    with caplog.at_level(logging.INFO, logger="align"):
        check_memory(recipe, model, _worst_case_rows(recipe.stage, recipe.data.max_length), available=AVAILABLE_24GIB)
    assert "estimated peak memory of a micro-step" in caplog.text


def test_the_old_default_of_8_packed_bins_is_refused_with_the_keys_to_lower():
    recipe = load_recipe(
        REPO / "recipes" / "smollm2-135m" / "sft.yaml", ["train.per_device_train_batch_size=8", "lora.dropout=0.05"]
    )
    with pytest.raises(UserError) as err:
        check_memory(recipe, _smollm2_on_meta(), _worst_case_rows("sft", 768), available=AVAILABLE_24GIB)
    assert str(err.value) == (
        "a training micro-step (train.per_device_train_batch_size 8 x train.max_length 1024 = 8192 tokens) needs "
        "about 21.5 GiB, more than 80% of the 20.0 GiB available; lower train.per_device_train_batch_size or "
        "train.max_length, or set train.gradient_checkpointing: true"
    )
    recipe.train["gradient_checkpointing"] = True  # the third way out fits
    check_memory(recipe, _smollm2_on_meta(), _worst_case_rows("sft", 768), available=AVAILABLE_24GIB)


def test_a_run_that_cannot_fit_stops_before_writing_anything(tiny_recipe, monkeypatch):
    import align.train.memory

    monkeypatch.setattr(align.train.memory, "available_memory", lambda: 1024**2)  # 1 MiB left
    recipe = tiny_recipe("sft")
    with pytest.raises(
        UserError,
        match=r"^a training micro-step \(train.per_device_train_batch_size 4 x train.max_length 1024 = 4096 tokens\) needs",
    ):
        run_sft(recipe)
    assert not recipe.output_dir.exists()
