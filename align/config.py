"""Recipes: YAML -> one typed recipe per stage, loaded strictly, with `key=value` overrides.

Each stage has its own recipe type (RECIPES): a training stage's `train:` section is TRL's config in TRL's words
(align/trl_args.py), the other sections are align's dataclasses below, where every default lives. A key the stage
does not know fails with its line, a did-you-mean and the valid keys; a key that moved names its new place; a recipe
for another stage, a duplicate key and a bad override fail with one line too — all before any model loads. The
strict reading itself (lines, duplicate keys, overrides, types) is align/strict_yaml.py.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from align.errors import UserError
from align.strict_yaml import apply_override, build, read_yaml


@dataclass
class ModelConfig:
    name: str = "smollm2-135m"  # embedded short name, local directory, or hub id
    attn_implementation: Literal["auto", "sdpa", "sdpa_blocks", "eager", "flash_attention_2"] = "auto"
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # training autocast dtype; answering: stage.inference_dtype
    quantization: Literal["none", "4bit"] = "none"  # 4bit = QLoRA (bitsandbytes, CUDA only)
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
    test_split_size: int | float = 0  # carve an eval split from train when `eval` is empty: a fraction or a count
    max_length: int = 768  # per sequence (prompt + answer); longer rows are truncated, counted and reported
    tasks: list[str] = field(default_factory=list)  # keep only these tasks (empty = all)
    limit_per_task: dict[str, int] = field(default_factory=dict)  # first N train rows of a task (CPU budgets)
    allow_phi: bool = False  # train even when the PHI scan finds likely identifiers
    build_bundled: bool = True  # build data/clinical/ first if a path under it is missing


@dataclass
class DPOSection:
    """align's own DPO settings; the loss (beta, loss_type, ...) is TRL's and lives in `train:`."""

    init_from: str = "outputs/default/sft"  # the SFT stage directory: policy and reference start there
    pack_length: int = 1024  # tokens per packed bin in the padding-free forward and the reference pass
    ref_cache: bool = True  # reference log-probs stored on disk and reused across runs (with precompute_ref_log_probs)
    # a pair's prompt computed once, not once per answer, in the policy forward and the reference pass (where the
    # model's attention takes an explicit mask: SDPA / eager, no sliding window; otherwise off, and logged)
    share_prompt: bool = True


@dataclass
class ReportSection:
    sft: str = "outputs/default/sft"
    dpo: str = "outputs/default/dpo"
    # held-out rows to answer and pairs to score, declared like data.train (any file, columns, shape, task); empty:
    # what the SFT / DPO stages held out (their heldout.jsonl). Prompts a compared stage trained on are never scored.
    test_data: list[DatasetConfig] = field(default_factory=list)
    pref_data: list[DatasetConfig] = field(default_factory=list)
    variants: list[str] = field(default_factory=lambda: ["base", "sft", "sft_dpo"])
    max_examples_per_task: int = 0  # test prompts per task (0 = all)
    max_pairs_per_task: int = 0  # held-out preference pairs per task (0 = all)
    batch_size: int = 16
    max_new_tokens: dict[str, int] = field(default_factory=dict)  # per task; default: the task's own budget
    # a closed answer (label, choice) whose first line gives it stops there: the rationale after it is not decoded
    stop_at_answer: bool = True
    # report.test_data / pref_data are de-identified: show their prompts even if the PHI scan finds likely identifiers
    allow_phi: bool = False
    max_length: int = 768  # tokens per held-out pair (prompt + answer) when scoring preference log-probs
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
    max_new_tokens: dict[str, int] = field(default_factory=dict)  # per task; default: the task's own budget


@dataclass
class Recipe:
    """What every recipe has; each stage's type adds its sections (RECIPES)."""

    stage: Literal["sft", "dpo", "report", "domain", "pairs"] = "sft"
    run_name: str = "default"  # a folder name under output_root (no path separators)
    output_root: str = "outputs"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)

    @property
    def output_dir(self) -> Path:
        return Path(self.output_root) / self.run_name / self.stage


@dataclass
class TrainingRecipe(Recipe):
    """A stage that trains: a LoRA, data and TRL's trainer settings."""

    lora: LoraConfig = field(default_factory=LoraConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: dict[str, Any] = field(default_factory=dict)  # the stage's TRL config fields (align/trl_args.py)


@dataclass
class SFTRecipe(TrainingRecipe):
    # tasks the data's rows belong to, declared without code (align/tasks/declare.py); checked on every row
    tasks: dict[str, Any] = field(default_factory=dict)


@dataclass
class DomainRecipe(TrainingRecipe):
    """The domain stage: `data` is a text corpus, `train` is trl.SFTConfig for language modelling."""


@dataclass
class DPORecipe(SFTRecipe):
    dpo: DPOSection = field(default_factory=DPOSection)  # `train`: trl.DPOConfig fields


@dataclass
class ReportRecipe(Recipe):
    report: ReportSection = field(default_factory=ReportSection)
    tasks: dict[str, Any] = field(default_factory=dict)  # on top of those the compared stages declared


@dataclass
class PairsRecipe(Recipe):
    data: DataConfig = field(default_factory=DataConfig)  # data.tasks / limit_per_task pick the prompts
    pairs: PairsSection = field(default_factory=PairsSection)
    tasks: dict[str, Any] = field(default_factory=dict)  # on top of those the SFT stage declared


RECIPES: dict[str, type[Recipe]] = {
    "sft": SFTRecipe,
    "domain": DomainRecipe,
    "dpo": DPORecipe,
    "report": ReportRecipe,
    "pairs": PairsRecipe,
}
TRAINING_STAGES = ("sft", "domain", "dpo")
# Keys that moved: dotted key -> where it lives now (per stage where it differs).
MOVED: dict[str, str] = {
    "model.gradient_checkpointing": "train.gradient_checkpointing",
    "dpo.beta": "train.beta",
    "dpo.loss_type": "train.loss_type",
    "dpo.loss_weights": "train.loss_weights",
    "dpo.label_smoothing": "train.label_smoothing",
}
MOVED_BY_STAGE: dict[str, dict[str, str]] = {"report": {"data.max_length": "report.max_length"}}
_RUN_NAME = re.compile(r"^(?!\.{1,2}$)[\w.-]+$")


def load_recipe(path: str | Path, overrides: list[str] | None = None, stage: str | None = None) -> Recipe:
    """Read a recipe YAML strictly, apply `key=value` overrides, and return the stage's typed recipe.

    `stage` is the command running it (`align dpo ...`): a recipe that says another stage fails with one line; a
    recipe without `stage` takes the command's."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"recipe not found: {path}", "pass a YAML file such as recipes/smollm2-135m/sft.yaml")
    raw, lines = read_yaml(path)
    if not isinstance(raw, dict):
        raise UserError(
            "a recipe must be a mapping of keys to values", "see recipes/smollm2-135m/sft.yaml", str(path), 1
        )
    for item in overrides or []:
        apply_override(raw, item)
    raw["stage"] = _stage_of(raw, stage, str(path), lines)
    _refuse_moved(raw, str(path), lines)
    recipe = build(RECIPES[raw["stage"]], raw, str(path), lines, where=f" in a {raw['stage']} recipe")
    _check_recipe(recipe, str(path), lines)
    return recipe


def _stage_of(raw: dict[str, Any], command: str | None, path: str, lines: dict[str, int]) -> str:
    written = raw.get("stage", command or "sft")
    if written not in RECIPES:
        choices = ", ".join(repr(s) for s in RECIPES)
        raise UserError(f"stage = {written!r} is not allowed", f"choose one of {choices}", path, lines.get("stage"))
    if command is not None and written != command:
        raise UserError(
            f"this is a {written} recipe, not one for `align {command}`",
            f"run `align {written} {path}`, or pass a {command} recipe",
            path,
            lines.get("stage"),
        )
    return written


def _refuse_moved(raw: dict[str, Any], path: str, lines: dict[str, int]) -> None:
    """A key that has moved (MOVED) fails with its new place."""
    for dotted, new in (MOVED | MOVED_BY_STAGE.get(raw["stage"], {})).items():
        section, key = dotted.split(".")
        if isinstance(raw.get(section), dict) and key in raw[section]:
            raise UserError(f"{dotted} has moved", f"write {new}", path, lines.get(dotted))


def _check_recipe(recipe: Recipe, path: str, lines: dict[str, int]) -> None:
    """What the dataclasses' types cannot say: a run name that stays under output_root, the trainer section."""
    if not _RUN_NAME.match(recipe.run_name):
        raise UserError(
            f"run_name = {recipe.run_name!r} is not a plain folder name",
            "use letters, digits, '.', '-' or '_' (outputs stay under output_root)",
            path,
            lines.get("run_name"),
        )
    if hasattr(recipe, "tasks"):
        from align.tasks import check_declarations

        elsewhere = recipe.stage in ("report", "pairs")  # may change tasks the stages they read declared
        recipe.tasks = check_declarations(recipe.tasks, path, lines, elsewhere)
    if isinstance(recipe, TrainingRecipe):
        from align.trl_args import check_train

        recipe.train = check_train(recipe.stage, recipe.train, path, lines)
        evaluates = recipe.train.get("eval_strategy", "no") != "no"
        if evaluates and not (recipe.data.eval or recipe.data.test_split_size):
            raise UserError(
                f"train.eval_strategy = {recipe.train['eval_strategy']!r} but the recipe has no eval data",
                "add data.eval or data.test_split_size, or set train.eval_strategy: no",
                path,
                lines.get("train.eval_strategy"),
            )


def to_dict(recipe: Recipe) -> dict[str, Any]:
    return dataclasses.asdict(recipe)


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML, saved beside every output."""
    return yaml.safe_dump(to_dict(recipe), sort_keys=False)
