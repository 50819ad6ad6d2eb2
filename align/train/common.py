"""What the training stages share: trainer arguments from a recipe, the non-finite-loss guard, the metrics they save."""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from align.config import Recipe
from align.errors import UserError
from align.stage import CHECKPOINTS, write_metrics

log = logging.getLogger("align")


def trainer_kwargs(recipe: Recipe, precision: torch.dtype, hw_cuda: bool) -> dict:
    """Arguments shared by SFTConfig and DPOConfig, straight from the recipe."""
    t = recipe.train
    return {
        "output_dir": str(recipe.output_dir / CHECKPOINTS),
        "num_train_epochs": t.epochs,
        "max_steps": t.max_steps,
        "learning_rate": t.learning_rate,
        "per_device_train_batch_size": t.batch_size,
        "per_device_eval_batch_size": t.batch_size,
        "gradient_accumulation_steps": t.grad_accum,
        "warmup_steps": t.warmup_ratio,
        "lr_scheduler_type": t.lr_scheduler,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "logging_steps": t.logging_steps,
        "save_steps": t.save_steps,
        "save_total_limit": t.save_total_limit,
        "seed": recipe.seed,
        "data_seed": recipe.seed,
        "bf16": precision == torch.bfloat16,
        "use_cpu": not hw_cuda,
        "gradient_checkpointing": recipe.model.gradient_checkpointing,
        "report_to": "none",
        "dataloader_num_workers": 0,
        "save_strategy": "steps",
        "eval_strategy": "no",
        "prediction_loss_only": True,
        "disable_tqdm": False,
        "logging_nan_inf_filter": False,  # the default hides a NaN loss behind the window average; we stop on it
    }


class NonFiniteGuard(TrainerCallback):
    """Stops training at the first non-finite logged loss; checkpoints after the last finite one are removed."""

    def __init__(self) -> None:
        self.bad_step: int | None = None
        self.last_good_step = 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs:
            return
        loss = float(logs["loss"])
        if math.isfinite(loss) and math.isfinite(float(logs.get("grad_norm", 0.0))):
            self.last_good_step = state.global_step
        elif self.bad_step is None:
            self.bad_step = state.global_step
            control.should_training_stop = True
            control.should_save = False

    def on_save(self, args, state, control, **kwargs):
        if self.bad_step is not None:
            control.should_save = False

    def fail_if_tripped(self, out_dir: Path) -> None:
        if self.bad_step is None:
            return
        ckpt_dir = out_dir / CHECKPOINTS
        for ckpt in ckpt_dir.glob("checkpoint-*"):
            if int(ckpt.name.split("-")[-1]) > self.last_good_step:
                shutil.rmtree(ckpt, ignore_errors=True)
        kept = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
        raise UserError(
            f"training stopped: the loss became non-finite at step {self.bad_step}",
            f"last good checkpoint kept: {kept or 'none'}; lower train.learning_rate or check the data",
        )


def loss_curves(log_history: list[dict], keys: tuple[str, ...]) -> dict[str, list[list[float]]]:
    """[[step, value], ...] per logged key, from the trainer's log history."""
    curves: dict[str, list[list[float]]] = {k: [] for k in keys}
    for entry in log_history:
        for k in keys:
            if k in entry and "step" in entry:
                curves[k].append([entry["step"], float(entry[k])])
    return curves


def save_metrics(out_dir: Path, trainer, keys: tuple[str, ...], started: float, extra: dict) -> dict:
    """The stage's metrics.json from the trainer's log history: curves, steps, tokens seen, wall time, extras."""
    history = trainer.state.log_history
    tokens = max((e.get("num_tokens", 0) for e in history), default=0)
    metrics = {
        "curves": loss_curves(history, keys),
        "global_step": trainer.state.global_step,
        "tokens_seen": int(tokens),
        "wall_time_s": round(time.time() - started, 1),
        **extra,
    }
    write_metrics(out_dir, metrics)
    return metrics
