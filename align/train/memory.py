"""Will a training micro-step fit? A conservative estimate of its peak memory from the model's shape and the recipe,
checked against what the machine has left before the first step: refuse with the key to lower rather than be killed
by the kernel (and take whatever runs beside it down too)."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from align.config import TrainingRecipe
from align.errors import UserError
from align.trl_args import DEFAULTS

log = logging.getLogger("align")

MEMORY_SHARE = 0.8  # of the memory available before the first step; the rest is for the allocator and the OS
GIB = 1024**3


@dataclass(frozen=True)
class DecoderShape:
    """What the memory estimate needs of a decoder-only transformer (from its config)."""

    layers: int
    hidden: int
    intermediate: int
    vocab: int

    @staticmethod
    def of(config) -> DecoderShape | None:
        config = config.get_text_config() if hasattr(config, "get_text_config") else config
        names = ("num_hidden_layers", "hidden_size", "intermediate_size", "vocab_size")
        values = [getattr(config, n, None) for n in names]
        return DecoderShape(*values) if all(isinstance(v, int) and v > 0 for v in values) else None


def peak_training_bytes(
    tokens: int,
    labelled: int,
    shape: DecoderShape,
    trainable_params: int,
    gradient_checkpointing: bool = False,
    lora_dropout: bool = False,
    bytes_per_value: int = 4,
) -> int:
    """Conservative peak memory one training micro-step adds to the loaded model (fp32 values).

    Per token and decoder layer, autograd keeps 9h + 4i values: each of the two RMSNorms its input and output (4h),
    attention q, k, v (k, v repeated to all heads) and its output (4h), o_proj's input (h), the MLP's gate, SiLU(gate),
    up and their product (4i); LoRA dropout adds the dropped copy of each adapted input (6h + i). Counted for
    layers + 1 (the gradients of one layer's activations exist beside them in backward), plus 3h (embeddings, final
    norm). Gradient checkpointing keeps each layer's input (h) and one layer's set while it is recomputed. Each
    labelled position adds 4 vocabulary-sized values (logits, log-softmax, their gradients); each trainable
    parameter 3 (gradient, Adam's two moments).
    Example: 10 tokens, 4 labelled, (layers 2, h 8, i 16, vocab 100), 50 trainable: 9*8 + 4*16 = 136 per layer,
    10 * (3 * 136 + 24) = 4320, + 4 * 4 * 100 = 1600, + 150 = 6070 values = 24280 bytes."""
    h, i = shape.hidden, shape.intermediate
    per_layer = 9 * h + 4 * i + ((6 * h + i) if lora_dropout else 0)
    kept_layers = (shape.layers * h + 2 * per_layer) if gradient_checkpointing else (shape.layers + 1) * per_layer
    values = tokens * (kept_layers + 3 * h) + labelled * 4 * shape.vocab + 3 * trainable_params
    return values * bytes_per_value


def available_memory() -> int:
    """Bytes this process can still allocate: the machine's available memory, or less under a cgroup v2 limit."""
    import psutil

    free = psutil.virtual_memory().available
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return free
    return min(free, int(limit) - used) if limit.isdigit() else free


def micro_step_tokens(recipe: TrainingRecipe, train_ds) -> tuple[int, int, str]:
    """(tokens, labelled tokens, how) of the largest training micro-step: SFT per_device_train_batch_size packed bins
    of train.max_length tokens (labelled: at most the largest answer share of any row); DPO
    per_device_train_batch_size pairs of 2 x data.max_length tokens (labelled: the longest chosen + rejected)."""
    settings = DEFAULTS[recipe.stage] | recipe.train
    batch = settings["per_device_train_batch_size"]
    if recipe.stage == "dpo":
        tokens = batch * 2 * recipe.data.max_length
        answers = _largest(train_ds, _longest_pair_answers)
        how = f"train.per_device_train_batch_size {batch} pairs x 2 x data.max_length {recipe.data.max_length}"
        return tokens, min(tokens, batch * answers), how
    length = settings.get("max_length") or recipe.data.max_length
    share = _largest(train_ds, _largest_answer_share)
    how = f"train.per_device_train_batch_size {batch} x train.max_length {length}"
    return batch * length, math.ceil(batch * length * share), how


def _largest(train_ds, measure) -> float:
    """The largest `measure(batch)` over a dataset read 1024 rows at a time."""
    return max((measure(batch) for batch in train_ds.iter(batch_size=1024)), default=0)


def _longest_pair_answers(batch: dict[str, list[list[int]]]) -> int:
    return max(len(c) + len(r) for c, r in zip(batch["chosen_ids"], batch["rejected_ids"], strict=True))


def _largest_answer_share(batch: dict[str, list[list[int]]]) -> float:
    return max((sum(m) / len(m) for m in batch["completion_mask"] if m), default=0.0)


def trainable_parameters(model, recipe: TrainingRecipe) -> int:
    """Parameters the optimizer will hold: the LoRA adapters' (r x (in + out) per adapted linear), else all."""
    if hasattr(model, "peft_config") or not recipe.lora.enabled:  # adapters attached already, or full tuning
        return sum(p.numel() for p in model.parameters() if p.requires_grad)
    targets = tuple(recipe.lora.target_modules)
    return sum(
        recipe.lora.r * (m.in_features + m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and name.split(".")[-1] in targets
    )


def check_memory(recipe: TrainingRecipe, model, train_ds, available: int | None = None) -> None:
    """Refuse with the key to lower when a micro-step's estimated peak exceeds MEMORY_SHARE of what is available,
    rather than being killed by the kernel (and whatever runs beside it) at the first step."""
    shape = DecoderShape.of(model.config)
    if shape is None:
        log.info("memory check skipped: the model config does not say layers, hidden, intermediate and vocab sizes")
        return
    settings = DEFAULTS[recipe.stage] | recipe.train
    tokens, labelled, how = micro_step_tokens(recipe, train_ds)
    checkpointing = bool(settings.get("gradient_checkpointing"))
    dropout = recipe.lora.enabled and recipe.lora.dropout > 0
    need = peak_training_bytes(tokens, labelled, shape, trainable_parameters(model, recipe), checkpointing, dropout)
    ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # ranks on this machine share its memory
    need *= ranks
    free = available_memory() if available is None else available
    log.info("estimated peak memory of a micro-step: %.1f GiB (%s); %.1f GiB available", need / GIB, how, free / GIB)
    if need <= MEMORY_SHARE * free:
        return
    length_key = "data.max_length" if recipe.stage == "dpo" else "train.max_length"
    fix = f"lower train.per_device_train_batch_size or {length_key}"
    per_rank = f", on each of {ranks} ranks" if ranks > 1 else ""
    raise UserError(
        f"a training micro-step ({how} = {tokens} tokens{per_rank}) needs about {need / GIB:.1f} GiB, more than "
        f"{MEMORY_SHARE:.0%} of the {free / GIB:.1f} GiB available",
        fix if checkpointing else f"{fix}, or set train.gradient_checkpointing: true",
    )
