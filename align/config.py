"""Recipes: YAML -> typed dataclasses, loaded strictly (unknown keys fail with the valid choices), key=value overrides."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from align.errors import UserError


@dataclass
class ModelConfig:
    name: str = "smollm2-135m"  # embedded short name, local directory, or hub id
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # autocast dtype for matmuls; weights stay fp32 for LoRA
    quantization: Literal["none", "4bit"] = "none"  # 4bit = QLoRA (bitsandbytes, CUDA only)
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False
    allow_network: bool = False  # False keeps HF_HUB_OFFLINE=1: nothing is fetched at run time
    requires: Literal["any", "cuda"] = "any"  # a GPU-only recipe says `cuda` and fails fast on a CPU machine


@dataclass
class LoraConfig:
    enabled: bool = True
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    # Two-step PEFT: a finished `align domain` run (or a LoRA adapter directory) the task adapter trains on top of;
    # `frozen` keeps it as a second, active, non-trainable adapter, `merged` folds it into the base weights first.
    domain_adapter: str = ""
    domain_mode: Literal["frozen", "merged"] = "frozen"


@dataclass
class DatasetConfig:
    path: str = ""
    kind: Literal["auto", "sft", "preference", "text"] = "auto"  # text = a domain corpus (.txt files, `text` column)
    columns: dict[str, str] = field(default_factory=dict)  # canonical name -> the file's column name
    shape: str | None = None  # detected when None
    system_prompt: str | None = None
    task: str | None = None  # rows without a `task` field get this name (default: the file's stem)
    weight: float = 1.0  # mixture weight: 1.0 = every row once


@dataclass
class DataConfig:
    train: list[DatasetConfig] = field(default_factory=list)
    eval: list[DatasetConfig] = field(default_factory=list)
    test_split_size: float = 0.0  # carve an eval split from train when `eval` is empty (fraction or count)
    max_length: int = 768  # per sequence (prompt + answer); longer rows are truncated, counted and reported
    tasks: list[str] = field(default_factory=list)  # keep only these tasks (empty = all)
    limit_per_task: dict[str, int] = field(default_factory=dict)  # first N train rows of a task (CPU budgets)
    allow_phi: bool = False  # train even when the PHI scan finds likely identifiers
    build_bundled: bool = True  # build data/clinical/ first if a path under it is missing


@dataclass
class TrainConfig:
    epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 2e-4
    batch_size: int = 8  # sequences (SFT) or pairs (DPO) per optimizer micro-step
    grad_accum: int = 1
    warmup_ratio: float = 0.05
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    packing: bool = True  # padding-free packing into bins of `pack_length` tokens
    pack_length: int = 1024
    logging_steps: int = 5
    save_steps: int = 50
    save_total_limit: int = 2


@dataclass
class DPOSection:
    init_from: str = "outputs/default/sft"  # the SFT stage directory: policy and reference start there
    beta: float = 0.1
    loss_type: list[str] = field(default_factory=lambda: ["sigmoid"])  # TRL's DPO loss types, combined if several
    loss_weights: list[float] = field(default_factory=list)  # one per loss_type (empty = all 1.0)
    ref_cache: bool = True  # reference log-probs computed once, cached on disk, reused across runs
    label_smoothing: float = 0.0


@dataclass
class ReportSection:
    sft: str = "outputs/default/sft"
    dpo: str = "outputs/default/dpo"
    test_data: str = "data/clinical/sft_test.jsonl"
    pref_data: str = "data/clinical/pref_test.jsonl"
    variants: list[str] = field(default_factory=lambda: ["base", "sft", "sft_dpo"])
    max_examples_per_task: int = 0  # test prompts per task (0 = all)
    max_pairs_per_task: int = 0  # held-out preference pairs per task (0 = all)
    batch_size: int = 16
    max_new_tokens: dict[str, int] = field(
        default_factory=lambda: {"triage": 48, "provider_routing": 32, "reasoning": 48, "summarization": 160}
    )
    n_boot: int = 2000
    extra_dpo: dict[str, str] = field(default_factory=dict)  # more DPO runs to compare with SFT: name -> stage dir
    domain: str = ""  # a finished `align domain` run: its held-out perplexity before/after goes in the report


@dataclass
class PairsSection:
    sft: str = "outputs/default/sft"  # the model whose own sampled answers become the pairs
    prompts: str = "data/clinical/sft_train.jsonl"  # training prompts with their gold answer and task metadata
    out: str = "data/onpolicy/pref_train.jsonl"  # the preference dataset written (canonical format, scores recorded)
    k: int = 4  # samples per prompt
    temperature: float = 0.8
    top_p: float = 0.95
    min_gap: float = 0.5  # keep (best, worst) only when their task scores differ by at least this
    include_reference: bool = True  # the gold answer competes as a candidate (chosen when no sample beats it)
    balance: bool = True  # as many rejected errors of each direction (e.g. under- vs over-triage) per task
    batch_size: int = 16
    max_new_tokens: dict[str, int] = field(
        default_factory=lambda: {"triage": 24, "provider_routing": 16, "reasoning": 24, "summarization": 128}
    )


@dataclass
class Recipe:
    stage: Literal["sft", "dpo", "report", "domain", "pairs"] = "sft"
    run_name: str = "default"
    output_root: str = "outputs"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    dpo: DPOSection = field(default_factory=DPOSection)
    report: ReportSection = field(default_factory=ReportSection)
    pairs: PairsSection = field(default_factory=PairsSection)

    @property
    def output_dir(self) -> Path:
        return Path(self.output_root) / self.run_name / self.stage


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a recipe YAML strictly, apply `key=value` overrides, and return the typed recipe."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"recipe not found: {path}", "pass a YAML file such as recipes/smollm2-135m/sft.yaml")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        raise UserError(
            f"invalid YAML: {getattr(err, 'problem', err)}", "fix the syntax", str(path), _one(line)
        ) from None
    raw, lines = _to_python(node) if node is not None else ({}, {})
    if not isinstance(raw, dict):
        raise UserError(
            "a recipe must be a mapping of keys to values", "see recipes/smollm2-135m/sft.yaml", str(path), 1
        )
    for item in overrides or []:
        _apply_override(raw, item)
    return build(Recipe, raw, str(path), lines)


def _one(line: int | None) -> int | None:
    return None if line is None else line + 1


def _to_python(node: yaml.Node, key: str = "") -> tuple[Any, dict[str, int]]:
    """Convert a composed YAML node to Python, recording the 1-based line of every dotted key."""
    lines: dict[str, int] = {key: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            child = f"{key}.{knode.value}" if key else str(knode.value)
            lines[child] = knode.start_mark.line + 1
            value, sub = _to_python(vnode, child)
            out[str(knode.value)] = value
            lines.update({k: v for k, v in sub.items() if k != child})
        return out, lines
    if isinstance(node, yaml.SequenceNode):
        values = []
        for i, item in enumerate(node.value):
            value, sub = _to_python(item, f"{key}[{i}]")
            values.append(value)
            lines.update(sub)
        return values, lines
    return yaml.safe_load(yaml.serialize(node)), lines


def _apply_override(raw: dict[str, Any], item: str) -> None:
    if "=" not in item:
        raise UserError(f"override {item!r} is not key=value", "write e.g. train.learning_rate=1e-4")
    key, value = item.split("=", 1)
    target = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise UserError(f"override {item!r}: {part!r} is not a section", "override a key inside a section")
    target[parts[-1]] = yaml.safe_load(value) if value.strip() else ""


def build(cls: type, raw: Any, path: str, lines: dict[str, int], prefix: str = "") -> Any:
    """Build dataclass `cls` from `raw`, failing on unknown keys and wrong types with the line and the valid choices."""
    if not isinstance(raw, dict):
        raise UserError(f"{prefix or 'recipe'} must be a mapping", "indent its keys under it", path, lines.get(prefix))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in raw.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(
                f"unknown key {dotted!r}", f"{hint}valid keys here: {', '.join(fields)}", path, lines.get(dotted)
            )
        kwargs[key] = _coerce(hints[key], value, path, lines, dotted)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, path: str, lines: dict[str, int], dotted: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    line = lines.get(dotted)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, str) and "path" in {f.name for f in dataclasses.fields(hint)}:
            value = {"path": value}  # `train: file.jsonl` is short for `train: [{path: file.jsonl}]`
        return build(hint, value, path, lines, dotted)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        return _coerce(next(a for a in args if a is not type(None)), value, path, lines, dotted)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise UserError(f"{dotted} = {value!r} is not allowed", f"choose one of {choices}", path, line)
        return value
    if origin is list:
        if isinstance(value, (str, dict)) and (args[0] is str or dataclasses.is_dataclass(args[0])):
            value = [value]
        if not isinstance(value, list):
            raise UserError(f"{dotted} must be a list", "write it as [a, b] or one item per '- ' line", path, line)
        return [_coerce(args[0], v, path, lines, f"{dotted}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{dotted} must be a mapping", "write it as {key: value}", path, line)
        return {str(k): _coerce(args[1], v, path, lines, f"{dotted}.{k}") for k, v in value.items()}
    return _scalar(hint, value, path, line, dotted)


def _scalar(hint: Any, value: Any, path: str, line: int | None, dotted: str) -> Any:
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads `2e-4` as a string
        except ValueError:
            pass
    if hint in (int, str, bool, float) and type(value) is hint:
        return value
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise UserError(f"{dotted} = {value!r} should be {hint.__name__}", f"write a {hint.__name__} value", path, line)


def to_dict(recipe: Recipe) -> dict[str, Any]:
    return dataclasses.asdict(recipe)


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML, saved beside every output."""
    return yaml.safe_dump(to_dict(recipe), sort_keys=False)
