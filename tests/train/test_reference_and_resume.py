"""The DPO reference is the SFT model; interrupted runs resume exactly; a non-finite loss stops with a clear message."""

import json

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, TrainerCallback

from align.data.collate import render_pair
from align.errors import UserError
from align.models import Hardware
from align.stage import start_weights
from align.train.dpo import build_trainer, run_dpo
from align.train.sft import run_sft
from tests.conftest import plain_answer_logps, toy_rows


def _logps(model, tokenizer, row):
    r = render_pair(tokenizer, row, 768)
    return plain_answer_logps(model, [(r["prompt_ids"], r["chosen_ids"]), (r["prompt_ids"], r["rejected_ids"])])


def test_dpo_reference_logps_equal_the_sft_models(tiny_recipe, tiny_model_dir, tokenizer):
    run_sft(tiny_recipe("sft", "train.learning_rate=0.01"))
    recipe = tiny_recipe("dpo")
    start = start_weights(recipe.dpo.init_from)
    from align.models import load_model

    model, tok = load_model(recipe.model, str(start))
    rows = toy_rows(6, "pref")
    trainer = build_trainer(recipe, model, tok, rows, [], Hardware.detect())
    ref_c, ref_r = trainer.train_dataset["ref_chosen_logps"], trainer.train_dataset["ref_rejected_logps"]
    # the SFT model rebuilt independently: tiny base + the saved SFT adapter, with plain transformers + PEFT
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    sft = PeftModel.from_pretrained(base, str(recipe.dpo.init_from) + "/final").eval()
    fresh_base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        for i, row in enumerate(rows):
            c, r = _logps(sft, tokenizer, row)
            assert abs(ref_c[i] - c) < 1e-4 and abs(ref_r[i] - r) < 1e-4, (i, ref_c[i], c)
            bc, _ = _logps(fresh_base, tokenizer, row)
            assert abs(ref_c[i] - bc) > 1e-3  # the base model would be the wrong reference, and it is different


def _losses(out_dir):
    return [v for _, v in json.loads((out_dir / "metrics.json").read_text())["curves"]["loss"]]


class Interrupt(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == 3:
            raise KeyboardInterrupt


def test_resumed_run_matches_uninterrupted(tiny_recipe, tmp_path):
    full = run_sft(tiny_recipe("sft", "train.max_steps=4", "run_name=full"))
    interrupted = tiny_recipe("sft", "train.max_steps=4", "run_name=resumed")
    with pytest.raises(KeyboardInterrupt):
        run_sft(interrupted, callbacks=(Interrupt(),))
    assert (interrupted.output_dir / "checkpoints" / "checkpoint-2").is_dir()
    assert not (interrupted.output_dir / "final").exists()
    resumed = run_sft(interrupted)
    a, b = _losses(full.out_dir), _losses(resumed.out_dir)
    assert len(a) == len(b) == 4
    assert a[2:] == pytest.approx(b[2:], abs=1e-5)


class PoisonWeights(TrainerCallback):
    def on_step_begin(self, args, state, control, model=None, **kw):
        if state.global_step == 2:
            with torch.no_grad():
                for p in model.parameters():
                    if p.requires_grad:
                        p.fill_(float("nan"))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_recipe):
    run_sft(tiny_recipe("sft"))
    recipe = tiny_recipe("dpo", "train.max_steps=6")
    with pytest.raises(UserError, match=r"non-finite at step 3.*checkpoint-2"):
        run_dpo(recipe, callbacks=(PoisonWeights(),))
    ckpts = sorted(p.name for p in (recipe.output_dir / "checkpoints").glob("checkpoint-*"))
    assert ckpts == ["checkpoint-2"]
    assert not (recipe.output_dir / "final").exists()
