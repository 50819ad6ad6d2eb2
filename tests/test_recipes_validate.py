"""Every shipped recipe loads strictly and builds the pinned TRL/PEFT config objects it implies, without a model.

A renamed argument in TRL, transformers or PEFT fails here, in CI, instead of on a GPU an hour into a download. GPU
recipes on a CPU machine stop at `check_requirements` with one line; on a (described) GPU they resolve to
flash-attention 2 and bf16. The accelerate configs parse with accelerate's own loader and launch-argument validation.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import peft
import pytest
import torch
import trl
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DistributedType

from align.config import load_recipe
from align.errors import UserError
from align.models import (
    Hardware,
    check_requirements,
    peft_config,
    qlora_config,
    select_attn_implementation,
    select_precision,
)
from align.tasks import BUILTIN
from align.train.common import trainer_args
from align.trl_args import DEFAULTS

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(p for p in (REPO / "recipes").rglob("*.yaml") if p.parent.name != "accelerate")
ACCELERATE = sorted((REPO / "recipes" / "accelerate").glob("*.yaml"))
GPU_MODELS = {
    "llama3-8b": "meta-llama/Meta-Llama-3-8B-Instruct",
    "mistral-7b": "mistralai/Mistral-7B-Instruct-v0.2",
    "qwen2.5-1.5b": "Qwen/Qwen2.5-1.5B-Instruct",
}
GPU_RECIPES = [p for p in RECIPES if p.parent.name in GPU_MODELS]
CPU = Hardware(cuda=False, flash_attn=False, cuda_bf16=False, cpu_bf16=False)
GPU = Hardware(cuda=True, flash_attn=True, cuda_bf16=True, cpu_bf16=False)
GPU_NO_FA = Hardware(cuda=True, flash_attn=False, cuda_bf16=True, cpu_bf16=False)


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_the_recipe_set_is_complete():
    names = {_rel(p) for p in RECIPES}
    for model in ("smollm2-135m", *GPU_MODELS):
        assert {f"recipes/{model}/{s}.yaml" for s in ("sft", "dpo", "report")} <= names, model
    for model in ("llama3-8b", "mistral-7b"):
        assert {f"recipes/{model}/{s}-qlora.yaml" for s in ("sft", "dpo", "report")} <= names, model
    assert {p.name for p in ACCELERATE} == {"ddp.yaml", "fsdp.yaml", "zero3.yaml"}


def _generated_pairs() -> dict[str, str]:
    """pairs.out -> pairs.sft for every `pairs` recipe: preference files that `align pairs generate` writes."""
    recipes = [load_recipe(p) for p in RECIPES if p.stem == "pairs"]
    return {r.pairs.out: r.pairs.sft for r in recipes}


@pytest.mark.parametrize("path", RECIPES, ids=_rel)
def test_recipe_builds_the_pinned_trainer_and_lora_configs(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # building configs must not create anything (checkpoint dirs are relative paths)
    recipe = load_recipe(path)
    assert path.stem.split("-")[0] == recipe.stage
    generated = _generated_pairs()  # written by `align pairs generate`, not committed
    imported = ("data/real/",)  # written by `align data import` (make real-data), never committed
    for spec in (recipe.data.train + recipe.data.eval) if hasattr(recipe, "data") else []:
        assert (REPO / spec.path).is_file() or spec.path in generated or spec.path.startswith(imported), spec.path
    if recipe.stage == "report":
        assert recipe.report.sft == f"{recipe.output_root}/{recipe.run_name}/sft"
        assert recipe.report.dpo == f"{recipe.output_root}/{recipe.run_name}/dpo"
        return
    if recipe.stage == "pairs":  # no trainer: the SFT model it samples, and a task definition for every task it pairs
        assert recipe.pairs.sft == f"{recipe.output_root}/{recipe.run_name}/sft"
        assert set(recipe.data.tasks) <= set(BUILTIN)
        return
    extra = {"max_length": recipe.data.max_length} if recipe.stage == "dpo" else {}
    args = trainer_args(recipe, torch.float32, CPU.cuda, **extra)
    assert isinstance(args, trl.DPOConfig if recipe.stage == "dpo" else trl.SFTConfig)
    for key, value in (DEFAULTS[recipe.stage] | recipe.train).items():  # every setting reaches TRL's config as given
        got = getattr(args, key)
        got = got.value if hasattr(got, "value") else got
        as_list = [] if value == "none" else [value]  # transformers keeps report_to as a list, "none" as []
        assert got == value or (isinstance(got, list) and got == as_list), (key, got, value)
    assert args.output_dir == str(recipe.output_dir / "checkpoints") and args.seed == recipe.seed
    if recipe.stage == "dpo":
        # on-policy pairs: DPO must start from (and use as reference) the SFT model that sampled them
        samplers = {generated[spec.path] for spec in recipe.data.train if spec.path in generated}
        assert recipe.dpo.init_from in ({f"{recipe.output_root}/{recipe.run_name}/sft"} if not samplers else samplers)
    lora = peft_config(recipe.lora)
    assert isinstance(lora, peft.LoraConfig)
    assert (lora.r, lora.lora_alpha, set(lora.target_modules)) == (
        recipe.lora.r,
        recipe.lora.alpha,
        set(recipe.lora.target_modules),
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", GPU_RECIPES, ids=_rel)
def test_gpu_recipe_stops_on_cpu_with_one_line_naming_the_gpu(path):
    recipe = load_recipe(path)
    model = GPU_MODELS[path.parent.name]
    assert (recipe.model.name, recipe.model.requires, recipe.model.allow_network) == (model, "cuda", True)
    with pytest.raises(UserError) as err:
        check_requirements(recipe.model, CPU)
    assert str(err.value) == (
        f"this recipe needs a CUDA GPU (model {model}); run it on a GPU machine, or use recipes/smollm2-135m/"
    )


@pytest.mark.parametrize("path", GPU_RECIPES, ids=_rel)
def test_gpu_recipe_on_a_gpu_picks_flash_attention_and_bf16(path, monkeypatch):
    recipe = load_recipe(path)
    assert recipe.model.precision == "bf16" and recipe.model.attn_implementation == "auto"
    assert recipe.stage == "report" or recipe.train["gradient_checkpointing"]
    assert select_precision(recipe.model.precision, GPU) == torch.bfloat16
    assert select_attn_implementation(recipe.model.attn_implementation, GPU) == "flash_attention_2"
    assert select_attn_implementation(recipe.model.attn_implementation, GPU_NO_FA) == "sdpa"
    _pretend_installed(monkeypatch, {"bitsandbytes"})
    check_requirements(recipe.model, GPU)  # passes: CUDA, flash-attn and bitsandbytes present


def _pretend_installed(monkeypatch, present: set[str]) -> None:
    """find_spec as on a GPU box with the `.[gpu]` extra (present) or without it, whatever this machine has."""
    real = importlib.util.find_spec

    def find_spec(name, *args):
        if name in ("bitsandbytes", "flash_attn"):
            return real("json") if name in present else None  # any real spec stands in for "installed"
        return real(name, *args)

    monkeypatch.setattr("align.models.importlib.util.find_spec", find_spec)


@pytest.mark.parametrize("path", [p for p in GPU_RECIPES if "qlora" in p.stem], ids=_rel)
def test_qlora_recipe_needs_cuda_and_bitsandbytes(path, monkeypatch):
    recipe = load_recipe(path)
    assert recipe.model.quantization == "4bit"
    recipe.model.requires = "any"  # isolate the QLoRA check from the recipe-level GPU requirement
    with pytest.raises(UserError, match=r"^model.quantization = 4bit \(QLoRA\) needs a CUDA GPU; set model"):
        check_requirements(recipe.model, CPU)
    _pretend_installed(monkeypatch, set())
    with pytest.raises(UserError, match=r"^model.quantization = 4bit needs bitsandbytes; pip install -e '.\[gpu\]'$"):
        check_requirements(recipe.model, GPU)
    bnb = qlora_config()
    assert (bnb.load_in_4bit, bnb.bnb_4bit_quant_type, bnb.bnb_4bit_use_double_quant) == (True, "nf4", True)
    assert bnb.bnb_4bit_compute_dtype == torch.bfloat16


EXPECTED_TYPE = {"ddp": DistributedType.MULTI_GPU, "fsdp": DistributedType.FSDP, "zero3": DistributedType.DEEPSPEED}


@pytest.mark.parametrize("path", ACCELERATE, ids=_rel)
def test_accelerate_config_parses_and_every_key_is_a_launch_option(path):
    cfg = load_config_from_file(str(path))  # accelerate's own loader: unknown top-level keys raise
    assert isinstance(cfg, ClusterConfig)
    assert cfg.distributed_type == EXPECTED_TYPE[path.stem]
    assert (cfg.num_processes, cfg.num_machines, cfg.mixed_precision, cfg.use_cpu) == (8, 1, "bf16", False)
    parser = launch_command_parser()
    args = parser.parse_args(["--config_file", str(path), "-m", "align.cli", "sft", "recipe.yaml"])
    known = set(vars(args))
    # accelerate copies fsdp_config/deepspeed_config entries onto launch arguments by name and ignores unknown ones
    for section in (cfg.fsdp_config, cfg.deepspeed_config):
        for key in section:
            name = key if key.startswith("fsdp") or section is not cfg.fsdp_config else f"fsdp_{key}"
            assert name in known, f"{path.name}: {key} is not an accelerate launch option"
    args, _, _ = _validate_launch_command(args)
    assert args.num_processes == 8 and args.mixed_precision == "bf16"
    assert (args.multi_gpu, args.use_fsdp, args.use_deepspeed) == (
        path.stem == "ddp",
        path.stem == "fsdp",
        path.stem == "zero3",
    )
    if path.stem == "fsdp":
        assert (args.fsdp_version, args.fsdp_state_dict_type) == (2, "FULL_STATE_DICT")
    if path.stem == "zero3":
        assert (args.zero_stage, args.zero3_save_16bit_model) == (3, True)


def _tokens_to_answer(task, answer: str, row: dict, tokenizer) -> int:
    """Tokens a reply needs before its answer parses: up to the end of the first line that gives it."""
    lines = answer.split("\n")
    reach = next(i for i in range(1, len(lines) + 1) if task.parse("\n".join(lines[:i]), row) is not None)
    return len(tokenizer("\n".join(lines[:reach]))["input_ids"])


BUDGETED = [p for p in RECIPES if load_recipe(p).stage in ("report", "pairs")]


@pytest.mark.parametrize("path", BUDGETED, ids=_rel)
def test_answer_budgets_reach_the_bundled_answers(path, tokenizer):
    """A closed answer cut off before its answer line parses as nothing: each shipped report and pairs recipe gives
    every bundled closed task at least the tokens its longest bundled answer needs to get there (the triage walk
    gives its level last)."""
    recipe = load_recipe(path)
    budgets = (recipe.report if recipe.stage == "report" else recipe.pairs).max_new_tokens
    rows = [json.loads(line) for line in (REPO / "data/clinical/sft_test.jsonl").read_text().splitlines()]
    for name, task in BUILTIN.items():
        mine = [r for r in rows if r["task"] == name]
        if not task.closed or not mine:
            continue
        need = max(_tokens_to_answer(task, r["completion"][0]["content"], r, tokenizer) for r in mine)
        assert budgets.get(name, task.max_new_tokens) >= need, (name, need)
