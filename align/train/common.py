"""What the training stages share: trainer arguments from a recipe, the non-finite-loss guard (and the recipe's learning
rate on resume), the checks before the first step (answers left after truncation; memory: train/memory.py), the metrics they save."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from align.config import TrainingRecipe
from align.data.collate import answerless
from align.errors import UserError
from align.stage import CHECKPOINTS, TENSORBOARD, write_metrics
from align.train.memory import check_memory
from align.trl_args import DEFAULTS, trainer_config

log = logging.getLogger("align")


def trainer_args(recipe: TrainingRecipe, precision: torch.dtype, hw_cuda: bool, **align_set: Any):
    """The stage's TRL config (align/trl_args.py) writing checkpoints into the stage directory."""
    out = str(recipe.output_dir / CHECKPOINTS)
    return trainer_config(recipe.stage, recipe.train, out, recipe.seed, precision, hw_cuda, **align_set)


@contextlib.contextmanager
def tensorboard_logs(out_dir: Path) -> Iterator[None]:
    """Trainers made inside the block write TensorBoard curves (`train.report_to: tensorboard`) to <stage>/tensorboard
    rather than under checkpoints/: transformers' callback reads TENSORBOARD_LOGGING_DIR when it is created."""
    old = os.environ.get("TENSORBOARD_LOGGING_DIR")
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(out_dir / TENSORBOARD)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TENSORBOARD_LOGGING_DIR", None)
        else:
            os.environ["TENSORBOARD_LOGGING_DIR"] = old


class NonFiniteGuard(TrainerCallback):
    """Stops training at the first non-finite logged loss (or grad norm), keeps only the checkpoints whose weights
    were seen to give a finite loss, and on a resume lets the recipe's learning rate win over the checkpoint's.

    The loss logged at step s is the forward of the weights after update s-1; checkpoint-c holds the weights after
    update c. So checkpoint-c is known good only when a finite logged loss covers step c+1, i.e. c < the last step
    logged finite: the first bad update can have a finite loss itself (lr 1e30 after one warmup step: update 2 is
    finite and huge, step 3's loss is not), so keeping c < bad_step would keep it."""

    def __init__(self) -> None:
        self.bad_step: int | None = None
        self.last_good_step = 0

    def on_train_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        self.last_good_step = state.global_step  # a resumed checkpoint's weights are not yet seen by this run
        if state.global_step > 0 and optimizer is not None and lr_scheduler is not None:
            use_recipe_learning_rate(optimizer, lr_scheduler, args.learning_rate, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs:
            return
        loss = float(logs["loss"])
        if math.isfinite(loss) and math.isfinite(float(logs.get("grad_norm", 0.0))):
            if self.bad_step is None:
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
            step = re.fullmatch(r"checkpoint-(\d+)", ckpt.name)
            if step and int(step.group(1)) >= self.last_good_step:
                shutil.rmtree(ckpt, ignore_errors=True)
        kept = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
        raise UserError(
            f"training stopped: the loss became non-finite at step {self.bad_step}",
            f"last good checkpoint kept: {kept or 'none'} (later ones never gave a finite loss: removed); lower "
            "train.learning_rate or check the data, then rerun (it resumes with the recipe's learning rate)",
        )


def use_recipe_learning_rate(optimizer, scheduler, learning_rate: float, step: int) -> None:
    """After a resume, the optimizer and scheduler hold the checkpoint's learning rate (its base_lrs and each group's
    current lr): rescale them to the recipe's `learning_rate` on the recipe's schedule at `step`, and say so when
    that changes the rate. A rerun after a diverged run thus trains at the rate its recipe says."""
    groups, base_lrs = optimizer.param_groups, list(getattr(scheduler, "base_lrs", None) or [])
    if len(base_lrs) != len(groups) or not base_lrs[0] or not all(isinstance(g.get("lr"), float) for g in groups):
        return  # a scheduler without base rates (DeepSpeed's, a plateau scheduler) or tensor rates: left as loaded
    before, ratio = [g["lr"] for g in groups], learning_rate / base_lrs[0]
    scheduler.base_lrs = [b * ratio for b in base_lrs]
    lambdas = getattr(scheduler, "lr_lambdas", None)
    for i, group in enumerate(groups):
        group["initial_lr"] = scheduler.base_lrs[i]
        # LambdaLR (every transformers schedule): the recipe's schedule at this step; otherwise rescale
        group["lr"] = scheduler.base_lrs[i] * lambdas[i](scheduler.last_epoch) if lambdas else group["lr"] * ratio
    scheduler._last_lr = [g["lr"] for g in groups]
    if any(not math.isclose(a, g["lr"], rel_tol=1e-6) for a, g in zip(before, groups, strict=True)):
        log.warning(
            "resumed at step %d: the checkpoint was trained with learning_rate %.3g (next step %.3g); the recipe's "
            "wins: learning_rate %.3g (next step %.3g)",
            step,
            base_lrs[0],
            before[0],
            learning_rate,
            groups[0]["lr"],
        )


# ---- before the first step: a run that cannot learn anything, or cannot fit ------------------------------------


def check_before_training(recipe: TrainingRecipe, model, train_ds) -> None:
    """Refuse, before any step, a stage none of whose rows keeps an answer token after truncation (warn when some
    do not), and one whose micro-step's estimated peak memory does not fit (`check_memory`)."""
    length, key = answer_budget(recipe)
    cut = sum(answerless(batch, length) for batch in train_ds.iter(batch_size=1024))
    if cut and cut == len(train_ds):
        raise UserError(
            f"{key} = {length} cuts away the whole answer of every training row ({cut} of {cut} kept no answer "
            "token), so the stage would train on nothing",
            f"raise {key} above the prompts' length (`align data validate` counts them), or shorten the prompts",
        )
    if cut:
        log.warning("%d of %d training rows kept no answer token at %s = %d", cut, len(train_ds), key, length)
    check_memory(recipe, model, train_ds)


def answer_budget(recipe: TrainingRecipe) -> tuple[int, str]:
    """(tokens per row, the key that sets it): data.max_length, or SFT's train.max_length when that is shorter (TRL
    cuts each row to it when packing)."""
    train_max = (DEFAULTS[recipe.stage] | recipe.train).get("max_length") if recipe.stage == "sft" else None
    if train_max is not None and train_max < recipe.data.max_length:
        return train_max, "train.max_length"
    return recipe.data.max_length, "data.max_length"


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
