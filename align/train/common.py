"""What the training stages share: trainer arguments from a recipe, the non-finite-loss guard, the metrics they save."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from align.config import TrainingRecipe
from align.errors import UserError
from align.stage import CHECKPOINTS, TENSORBOARD, write_metrics
from align.trl_args import trainer_config

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
