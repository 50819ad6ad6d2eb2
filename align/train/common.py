"""What SFT and DPO share: trainer arguments from a recipe, resume, the non-finite-loss guard, and saving outputs."""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from align.config import Recipe
from align.errors import UserError
from align.runinfo import is_main_process, write_json

log = logging.getLogger("align")


@dataclass
class RunResult:
    out_dir: Path
    final_dir: Path
    metrics: dict = field(default_factory=dict)


def is_complete(out_dir: Path) -> bool:
    return (out_dir / "final").is_dir() and (out_dir / "metrics.json").is_file()


def trainer_kwargs(recipe: Recipe, precision: torch.dtype, hw_cuda: bool) -> dict:
    """Arguments shared by SFTConfig and DPOConfig, straight from the recipe."""
    t = recipe.train
    return {
        "output_dir": str(recipe.output_dir / "checkpoints"),
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


def resume_checkpoint(out_dir: Path) -> str | None:
    ckpt_dir = out_dir / "checkpoints"
    if not ckpt_dir.is_dir():
        return None
    last = get_last_checkpoint(str(ckpt_dir))
    if last:
        log.info("resuming from %s", last)
    return last


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
        ckpt_dir = out_dir / "checkpoints"
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
    history = trainer.state.log_history
    tokens = max((e.get("num_tokens", 0) for e in history), default=0)
    metrics = {
        "curves": loss_curves(history, keys),
        "global_step": trainer.state.global_step,
        "tokens_seen": int(tokens),
        "wall_time_s": round(time.time() - started, 1),
        **extra,
    }
    if is_main_process():
        write_json(out_dir / "metrics.json", metrics)
    return metrics


def save_final(trainer, tokenizer, out_dir: Path, adapters: list[str] | None = None) -> Path:
    """final/: the LoRA adapter (PEFT) or full weights, loadable with plain transformers/PEFT; safetensors only.

    `adapters` names the PEFT adapters to save when the model holds several (e.g. the task adapter, not the frozen
    domain adapter under it)."""
    extra = {"selected_adapters": adapters} if adapters else {}
    return _save_atomic(trainer.model, tokenizer, out_dir / "final", **extra)


def save_merged(model, tokenizer, out_dir: Path) -> Path:
    """merged/: the adapter folded into the base weights, the starting point and reference for the next stage."""
    return _save_atomic(model, tokenizer, out_dir / "merged")


def _save_atomic(model, tokenizer, target: Path, **save_kwargs) -> Path:
    """Write model + tokenizer to a temporary folder beside `target`, then swap it in (rank 0 only), so an
    interrupted save never leaves a half-written `target`."""
    if not is_main_process():
        return target
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True, **save_kwargs)
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
