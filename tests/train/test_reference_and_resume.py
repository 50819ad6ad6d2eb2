"""The DPO reference is the SFT model; interrupted runs resume exactly; a non-finite loss stops with a clear message,
keeps only checkpoints from before the bad update, and a rerun resumes at the recipe's learning rate."""

import json
import math
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
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


class Steps(TrainerCallback):
    """Records the step a run starts at and the steps it trains (logs a loss for)."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.trained: list[int] = []

    def on_train_begin(self, args, state, control, **kw):
        self.first = state.global_step

    def on_log(self, args, state, control, logs=None, **kw):
        if "loss" in (logs or {}):
            self.trained.append(state.global_step)


def test_resumed_run_matches_uninterrupted(tiny_recipe, tmp_path):
    full = run_sft(tiny_recipe("sft", "train.max_steps=4", "run_name=full"))
    interrupted = tiny_recipe("sft", "train.max_steps=4", "run_name=resumed")
    with pytest.raises(KeyboardInterrupt):
        run_sft(interrupted, callbacks=(Interrupt(),))
    assert (interrupted.output_dir / "checkpoints" / "checkpoint-2").is_dir()
    assert not (interrupted.output_dir / "final").exists()
    steps = Steps()
    resumed = run_sft(interrupted, callbacks=(steps,))
    # it really resumed: it starts at the checkpoint's step and trains only the remaining ones (a fresh run of this
    # deterministic recipe would give the same losses, so equal curves alone do not show a resume)
    assert (steps.first, steps.trained) == (2, [3, 4])
    a, b = _losses(full.out_dir), _losses(resumed.out_dir)
    assert len(a) == len(b) == 4
    assert a == pytest.approx(b, abs=1e-5)


class PoisonWeights(TrainerCallback):
    def on_step_begin(self, args, state, control, model=None, **kw):
        if state.global_step == 3:  # after checkpoint-2 and step 3's finite loss: step 4's loss is NaN
            with torch.no_grad():
                for p in model.parameters():
                    if p.requires_grad:
                        p.fill_(float("nan"))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_recipe):
    run_sft(tiny_recipe("sft"))
    recipe = tiny_recipe("dpo", "train.max_steps=6")
    with pytest.raises(UserError, match=r"non-finite at step 4.*checkpoint-2"):
        run_dpo(recipe, callbacks=(PoisonWeights(),))
    ckpts = sorted(p.name for p in (recipe.output_dir / "checkpoints").glob("checkpoint-*"))
    assert ckpts == ["checkpoint-2"]
    assert not (recipe.output_dir / "final").exists()


def _adapter(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_file(ckpt / "adapter_model.safetensors")


def test_diverged_run_keeps_only_checkpoints_from_before_the_bad_update_and_a_sane_rerun_finishes(tiny_recipe):
    """lr 1e30 after one warmup step (lr 0): update 2 is finite but huge, step 3's loss is not. checkpoint-2 holds
    that update (its weights are ~1e30 and gave the non-finite loss): only checkpoint-1 is kept. The rerun with a
    sane lr resumes it at the recipe's learning rate (not the checkpoint's 1e30) and trains to the end."""
    steps = ("train.max_steps=6", "train.save_steps=1", "train.warmup_steps=1", "train.save_total_limit=10")
    bad = tiny_recipe("sft", *steps, "train.learning_rate=1e30")
    with pytest.raises(UserError, match=r"non-finite at step 3; last good checkpoint kept: .*checkpoint-1 "):
        run_sft(bad)
    ckpts = bad.output_dir / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("checkpoint-*")) == ["checkpoint-1"]
    assert all(
        bool(t.isfinite().all()) and float(t.abs().max()) < 10 for t in _adapter(ckpts / "checkpoint-1").values()
    )
    sane = tiny_recipe("sft", *steps, "train.learning_rate=1e-3")
    recorded = Steps()
    result = run_sft(sane, callbacks=(recorded,))
    assert (recorded.first, recorded.trained) == (1, [2, 3, 4, 5, 6])
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 6 and all(math.isfinite(v) for _, v in metrics["curves"]["loss"])
    lrs = dict(metrics["curves"]["learning_rate"])
    assert lrs[1] == 0.0 and 0 < lrs[2] <= 1e-3 and max(lrs.values()) <= 1e-3  # the recipe's rate, on its schedule
