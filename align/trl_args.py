"""A training recipe's `train:` section, in TRL's own words, and the TRL config it builds.

Every field of the stage's TRL config — `trl.SFTConfig` for `sft` and `domain`, `trl.DPOConfig` for `dpo`, with
transformers' `TrainingArguments` under both — is set by the name TRL's and transformers' docs give it
(`per_device_train_batch_size`, `warmup_steps`, `optim`, `report_to`, `eval_strategy`, `beta`, `loss_type`, ...).
align adds three things, each a visible table here:
- DEFAULTS: values sized for a 2-core, 24 GiB CPU machine where TRL's are GPU-sized or not what align's data
  needs (e.g. one packed bin of 1024 tokens per SFT micro-step; TRL's 8 would not fit);
- OWNED: keys align sets from elsewhere in the recipe (output folder, seed, precision, DPO's max_length), refused
  here with the key to set instead;
- RENAMED: the names earlier align recipes used, refused with TRL's name.
Keys are checked at load time (unknown key: its line, did-you-mean, where TRL's keys are documented), values are
coerced by the config's own type hints, checked for range, and the config is built once so TRL's own checks (e.g. an
unknown `lr_scheduler_type`) fail then, before any model loads.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from typing import Any

import torch

from align.errors import UserError
from align.strict_yaml import did_you_mean

CONFIG_CLASS = {"sft": "SFTConfig", "domain": "SFTConfig", "dpo": "DPOConfig"}
DOCS = {
    "SFTConfig": "https://huggingface.co/docs/trl/sft_trainer#trl.SFTConfig",
    "DPOConfig": "https://huggingface.co/docs/trl/dpo_trainer#trl.DPOConfig",
}

_COMMON = {
    "num_train_epochs": 1.0,
    "learning_rate": 2e-4,
    "gradient_accumulation_steps": 1,
    "warmup_steps": 0.05,  # below 1: a share of the training steps
    "lr_scheduler_type": "cosine",
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "logging_steps": 5,
    "save_strategy": "steps",
    "save_steps": 50,
    "save_total_limit": 2,
    "eval_strategy": "no",
    "gradient_checkpointing": False,  # TRL turns it on (GPU memory); on CPU it costs ~20 % per step
    "report_to": "none",
    "dataloader_num_workers": 0,
    "prediction_loss_only": True,
    "disable_tqdm": False,
    "logging_nan_inf_filter": False,  # the default hides a NaN loss behind the window average; align stops on it
    "dataset_num_proc": None,
}
DEFAULTS: dict[str, dict[str, Any]] = {
    # one packed, padding-free bin of max_length tokens per micro-step (TRL's best-fit-decreasing packing)
    "sft": _COMMON
    | {
        "per_device_train_batch_size": 1,
        "packing": True,
        "packing_strategy": "bfd",
        "padding_free": True,
        "max_length": 1024,
        "completion_only_loss": True,
    },
    # a document longer than a bin continues in the next bins instead of being cut
    "domain": _COMMON
    | {
        "per_device_train_batch_size": 1,
        "packing": True,
        "packing_strategy": "bfd_split",
        "padding_free": True,
        "max_length": 1024,
        "dataset_text_field": "text",
    },
    # pairs per micro-step; padding_free is honoured by align (packed forward), TRL 1.16 alone ignores it
    "dpo": _COMMON
    | {
        "per_device_train_batch_size": 4,
        "padding_free": True,
        "precompute_ref_log_probs": True,
        "beta": 0.1,
        "loss_type": ["sigmoid"],
    },
}
_PRECISION = "set model.precision (auto, bf16 or fp32): align turns it into TRL's bf16 flag"
OWNED: dict[str, str] = {
    "output_dir": "align writes to output_root/run_name/<stage>/checkpoints: set output_root or run_name",
    "seed": "set the recipe's top-level seed (it also seeds data mixing and splits)",
    "data_seed": "set the recipe's top-level seed (it also seeds data mixing and splits)",
    "bf16": _PRECISION,
    "fp16": _PRECISION,
    "bf16_full_eval": _PRECISION,
    "fp16_full_eval": _PRECISION,
    "model_init_kwargs": "align loads the model: set the model section",
    "remove_unused_columns": "align's rendered datasets need their columns",
}
OWNED_BY_STAGE: dict[str, dict[str, str]] = {
    "dpo": {
        "max_length": "set data.max_length: align truncates each pair when it renders it",
        "precompute_ref_batch_size": "align's reference pass packs pairs into bins of dpo.pack_length tokens",
    },
}
RENAMED: dict[str, str] = {
    "epochs": "num_train_epochs",
    "batch_size": "per_device_train_batch_size",
    "grad_accum": "gradient_accumulation_steps",
    "warmup_ratio": "warmup_steps (a value below 1 is a share of the steps, as warmup_ratio was)",
    "lr_scheduler": "lr_scheduler_type",
}
RENAMED_BY_STAGE: dict[str, dict[str, str]] = {
    "sft": {"pack_length": "max_length (with packing: the length of a packed bin)"},
    "domain": {"pack_length": "max_length (with packing: the length of a packed bin)"},
    "dpo": {"pack_length": "dpo.pack_length", "packing": "padding_free"},
}


def _positive(v: Any) -> bool:
    return v is not None and math.isfinite(v) and v > 0


def _at_least_one(v: Any) -> bool:
    return v is not None and v >= 1


RANGES: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "learning_rate": (_positive, "a finite number above 0, e.g. 2e-4"),
    "per_device_train_batch_size": (_at_least_one, "1 or more"),
    "per_device_eval_batch_size": (_at_least_one, "1 or more"),
    "gradient_accumulation_steps": (_at_least_one, "1 or more"),
    "max_length": (_at_least_one, "1 or more tokens"),
    "beta": (_positive, "a finite number above 0, e.g. 0.1"),
    "max_grad_norm": (lambda v: v is None or (math.isfinite(v) and v >= 0), "0 (off) or more"),
    "weight_decay": (lambda v: math.isfinite(v) and v >= 0, "0 or more"),
    "warmup_steps": (lambda v: math.isfinite(v) and v >= 0, "0 or more (below 1: a share of the steps)"),
    "num_train_epochs": (lambda v: math.isfinite(v) and v >= 0, "0 or more (0 needs max_steps)"),
}


def config_class(stage: str) -> type:
    import trl

    return getattr(trl, CONFIG_CLASS[stage])


def check_train(stage: str, train: Any, path: str, lines: dict[str, int]) -> dict[str, Any]:
    """The `train:` mapping checked strictly against the stage's TRL config and coerced to its field types."""
    if not isinstance(train, dict):
        raise UserError("train must be a mapping of TRL settings", "indent its keys under it", path, lines.get("train"))
    cls = config_class(stage)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for key, value in train.items():
        dotted, line = f"train.{key}", lines.get(f"train.{key}")
        _refuse_known(stage, key, dotted, path, line)
        if key not in fields:
            raise UserError(
                f"unknown key {dotted!r}",
                f"{did_you_mean(key, fields)}valid keys are {CONFIG_CLASS[stage]}'s: {DOCS[CONFIG_CLASS[stage]]}",
                path,
                line,
            )
        try:
            out[key] = coerce(hints[key], value)
        except TypeError as err:
            raise UserError(f"{dotted} = {value!r} should be {err}", f"write a {err} value", path, line) from None
        check_range(key, out[key], dotted, path, line)
    settings = DEFAULTS[stage] | out
    if not settings["num_train_epochs"] and settings.get("max_steps", -1) <= 0:
        raise UserError(
            "train.num_train_epochs is 0 and train.max_steps is not set",
            "train for at least one step",
            path,
            lines.get("train"),
        )
    _try_build(cls, settings, out, path, lines)
    return out


def _refuse_known(stage: str, key: str, dotted: str, path: str, line: int | None) -> None:
    owned = OWNED_BY_STAGE.get(stage, {}).get(key) or OWNED.get(key)
    if owned:
        raise UserError(f"{dotted} is set by align", owned, path, line)
    renamed = RENAMED_BY_STAGE.get(stage, {}).get(key) or RENAMED.get(key)
    if renamed:
        raise UserError(f"{dotted} was renamed to TRL's name", f"write train.{renamed}", path, line)


def check_range(key: str, value: Any, dotted: str, path: str, line: int | None) -> None:
    rule = RANGES.get(key)
    if rule is not None and not isinstance(value, bool) and isinstance(value, int | float | type(None)):
        ok, text = rule
        if not ok(value):
            raise UserError(f"{dotted} = {value!r} is out of range", f"use {text}", path, line)


def _try_build(cls: type, settings: dict[str, Any], given: dict[str, Any], path: str, lines: dict[str, int]) -> None:
    """Build the TRL config once (CPU, fp32, a dummy folder; nothing is written) so its own checks fail now, at the
    line of the key (or value) the message names."""
    try:
        cls(**(settings | {"output_dir": "/nonexistent/align-check", "use_cpu": True, "bf16": False}))
    except (ValueError, TypeError) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        named = [k for k in given if k in text] or [k for k, v in given.items() if isinstance(v, str) and v in text]
        line = lines.get(f"train.{named[0]}") if named else lines.get("train")
        raise UserError(f"train: {text}", "fix the value (see TRL's docs for this key)", path, line) from None


def coerce(hint: Any, value: Any) -> Any:
    """`value` as the field type `hint` says; raises TypeError naming the expected type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        for arm in (a for a in args if a is not type(None)):
            try:
                return coerce(arm, value)
            except TypeError:
                continue
        raise TypeError(" or ".join(dict.fromkeys(_describe(a) for a in args if a is not type(None))))
    if origin is typing.Literal:
        if value in args:
            return value
        raise TypeError("one of " + ", ".join(repr(a) for a in args))
    if origin is list or hint is list:
        items = value if isinstance(value, list) else [value]
        return [coerce(args[0], v) for v in items] if args else items
    if origin is dict or hint is dict:
        if isinstance(value, dict):
            return value
        raise TypeError("a mapping")
    return _scalar(hint, value)


def _scalar(hint: Any, value: Any) -> Any:
    if value is False and (hint is str or isinstance(hint, type) and issubclass(hint, enum.Enum)):
        return "no"  # YAML 1.1 reads `eval_strategy: no` as false; TRL's word is "no"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if isinstance(value, str):
            return value  # the config's own __post_init__ checks it against the enum
        raise TypeError(_describe(hint))
    if hint is bool and isinstance(value, bool):
        return value
    if hint is float and not isinstance(value, bool):
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML 1.1 reads `2e-4` as a string
            except ValueError:
                pass
    if hint is int and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    if hint is str and isinstance(value, str):
        return value
    if hint not in (bool, float, int, str):
        return value  # other field types (callables, objects) are passed as given
    raise TypeError(_describe(hint))


def _describe(hint: Any) -> str:
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "text"
    names = {bool: "true/false", float: "number", int: "whole number", str: "text", dict: "mapping", list: "list"}
    origin = typing.get_origin(hint)
    return names.get(origin or hint, getattr(hint, "__name__", str(hint)))


def trainer_config(
    stage: str, train: dict[str, Any], output_dir: str, seed: int, precision: torch.dtype, cuda: bool, **align_set: Any
):
    """The stage's TRL config: align's defaults, then the recipe's `train:`, then what align sets itself.

    `align_set` holds stage-specific values align owns (DPO: max_length from data.max_length)."""
    settings = DEFAULTS[stage] | {"use_cpu": not cuda} | train
    settings.setdefault("per_device_eval_batch_size", settings.get("per_device_train_batch_size", 8))
    owned = {"output_dir": output_dir, "seed": seed, "data_seed": seed, "bf16": precision == torch.bfloat16}
    if stage == "dpo":
        owned["remove_unused_columns"] = False
    return config_class(stage)(**(settings | owned | align_set))
