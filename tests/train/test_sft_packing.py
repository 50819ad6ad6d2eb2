"""SFT's packed, padding-free batches (TRL's bfd packing, as align configures it): rows in a bin do not see each other.

The batch carries position_ids restarting per row and no attention mask, so transformers builds a block-diagonal mask
from the position_ids (SDPA and eager; FlashAttention reads the sequence lengths). If either changed — an all-ones
mask in the batch, positions running across rows — every answer would attend to the other rows of its bin in
training and to its own prompt alone in the report.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM
from trl import SFTTrainer

from align.train.common import trainer_args
from align.train.sft import sft_dataset
from tests.conftest import toy_rows


def first_batch(recipe, model, tokenizer) -> dict:
    rows = toy_rows(6, "sft")
    dataset = sft_dataset(tokenizer, rows, recipe.data.max_length)
    trainer = SFTTrainer(
        model=model,
        args=trainer_args(recipe, torch.float32, False),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    return next(iter(trainer.get_train_dataloader()))


def model_inputs(batch: dict) -> dict:
    """What the model's forward receives of the batch (the rest is loss bookkeeping)."""
    return {k: v for k, v in batch.items() if k in ("input_ids", "position_ids", "attention_mask")}


def test_each_row_of_a_packed_sft_batch_gives_the_logits_it_gives_alone(tiny_recipe, tiny_model_dir, tokenizer):
    recipe = tiny_recipe("sft", "train.per_device_train_batch_size=1")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")
    batch = first_batch(recipe, model, tokenizer)
    positions = batch["position_ids"][0]
    starts = [*(positions == 0).nonzero()[:, 0].tolist(), positions.shape[0]]
    assert batch["input_ids"].shape[0] == 1 and len(starts) - 1 >= 3  # several rows share one bin
    model.eval()
    with torch.no_grad():
        packed = model(**model_inputs(batch)).logits
        for a, b in zip(starts[:-1], starts[1:], strict=True):
            alone = model(input_ids=batch["input_ids"][:, a:b]).logits
            torch.testing.assert_close(packed[:, a:b], alone, atol=1e-5, rtol=1e-5)
        # the check can fail: the same bin run as one sequence (rows seeing each other) differs from row 2 on
        crossed = model(input_ids=batch["input_ids"]).logits
    assert (crossed[:, starts[1] : starts[2]] - packed[:, starts[1] : starts[2]]).abs().max() > 1e-3
