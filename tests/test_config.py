"""Recipes load strictly, one type per stage: every recipe under recipes/ loads; mistakes fail with the line and the
fix before anything loads; the `train:` section is TRL's config in TRL's words."""

from pathlib import Path

import pytest
import torch
import trl

from align.config import RECIPES, DPORecipe, ReportRecipe, SFTRecipe, dump_recipe, load_recipe
from align.errors import UserError
from align.trl_args import trainer_config

REPO = Path(__file__).resolve().parents[1]
RECIPE_FILES = sorted(p for p in (REPO / "recipes").rglob("*.yaml") if "accelerate" not in p.parts)


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def _error(path, overrides=(), stage=None) -> str:
    with pytest.raises(UserError) as err:
        load_recipe(path, list(overrides), stage=stage)
    return str(err.value)


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_recipe_loads_as_its_stages_type(path):
    recipe = load_recipe(path)
    assert type(recipe) is RECIPES[recipe.stage]
    assert path.stem.split("-")[0] == recipe.stage


def test_misspelled_trl_key_names_line_suggests_and_points_at_trls_docs(tmp_path):
    path = _write(tmp_path, "stage: sft\ntrain:\n  num_train_epochs: 1\n  learning_rat: 0.1\n")
    msg = _error(path)
    assert msg.startswith(f"{path}:4: unknown key 'train.learning_rat'; did you mean 'learning_rate'?")
    assert "SFTConfig" in msg and "huggingface.co/docs/trl" in msg


def test_misspelled_align_key_lists_the_valid_keys(tmp_path):
    msg = _error(_write(tmp_path, "stage: sft\nmodel:\n  precison: fp32\n"))
    assert msg.endswith(
        "r.yaml:3: unknown key 'model.precison'; did you mean 'precision'? valid keys here: name, "
        "attn_implementation, precision, quantization, trust_remote_code, allow_network, requires"
    )


def test_bad_choice_lists_valid_values(tmp_path):
    msg = _error(_write(tmp_path, "model:\n  precision: fp16\n"))
    assert msg.endswith("r.yaml:2: model.precision = 'fp16' is not allowed; choose one of 'auto', 'bf16', 'fp32'")


def test_wrong_type_in_the_trainer_section(tmp_path):
    msg = _error(_write(tmp_path, "train:\n  per_device_train_batch_size: eight\n"))
    assert msg.endswith(
        "r.yaml:2: train.per_device_train_batch_size = 'eight' should be whole number; write a whole number value"
    )


def test_overrides_shorthand_and_trl_values(tmp_path):
    path = _write(tmp_path, "stage: dpo\ndata:\n  train: a.jsonl\n")
    r = load_recipe(path, ["train.learning_rate=1e-4", "lora.enabled=false", "train.loss_type=ipo", "train.beta=0.5"])
    assert isinstance(r, DPORecipe) and r.lora.enabled is False and r.data.train[0].path == "a.jsonl"
    assert r.train == {"learning_rate": 1e-4, "loss_type": ["ipo"], "beta": 0.5}
    assert "learning_rate: 0.0001" in dump_recipe(r)


def test_old_align_names_fail_with_trls_name(tmp_path):
    cases = {
        "stage: sft\ntrain:\n  batch_size: 2\n": "r.yaml:3: train.batch_size was renamed to TRL's name; write train.per_device_train_batch_size",
        "stage: sft\ntrain:\n  epochs: 2\n": "r.yaml:3: train.epochs was renamed to TRL's name; write train.num_train_epochs",
        "stage: sft\ntrain:\n  pack_length: 512\n": "write train.max_length (with packing: the length of a packed bin)",
        "stage: dpo\ntrain:\n  pack_length: 512\n": "r.yaml:3: train.pack_length was renamed to TRL's name; write train.dpo.pack_length",
        "stage: dpo\ndpo:\n  beta: 0.2\n": "r.yaml:3: dpo.beta has moved; write train.beta",
        "stage: sft\nmodel:\n  gradient_checkpointing: true\n": "r.yaml:3: model.gradient_checkpointing has moved; write train.gradient_checkpointing",
        "stage: report\ndata:\n  max_length: 512\n": "r.yaml:3: data.max_length has moved; write report.max_length",
    }
    for text, expected in cases.items():
        assert _error(_write(tmp_path, text)).endswith(expected), text


def test_keys_align_sets_itself_are_refused_with_where_to_set_them(tmp_path):
    assert _error(_write(tmp_path, "train:\n  output_dir: /tmp/x\n")).endswith(
        "r.yaml:2: train.output_dir is set by align; align writes to output_root/run_name/<stage>/checkpoints: set "
        "output_root or run_name"
    )
    assert "set model.precision" in _error(_write(tmp_path, "train:\n  bf16: true\n"))
    assert "top-level seed" in _error(_write(tmp_path, "train:\n  seed: 3\n"))
    assert "set data.max_length" in _error(_write(tmp_path, "stage: dpo\ntrain:\n  max_length: 9\n"))


def test_a_trl_option_align_never_mentions_reaches_the_trainer_config(tmp_path):
    path = _write(
        tmp_path, "stage: sft\ntrain:\n  optim: adafactor\n  report_to: tensorboard\n  lr_scheduler_kwargs: {}\n"
    )
    r = load_recipe(path)
    args = trainer_config("sft", r.train, str(tmp_path / "ckpt"), 0, torch.float32, cuda=False)
    assert isinstance(args, trl.SFTConfig) and args.optim == "adafactor" and args.report_to == ["tensorboard"]
    assert (args.per_device_train_batch_size, args.max_length, args.packing) == (1, 1024, True)  # align's defaults
    assert not (tmp_path / "ckpt").exists()


def test_trls_own_checks_fail_at_load_with_the_line(tmp_path):
    msg = _error(_write(tmp_path, "stage: sft\ntrain:\n  save_steps: 5\n  lr_scheduler_type: cosin\n"))
    assert msg.startswith(f"{tmp_path / 'r.yaml'}:4: train: cosin is not a valid SchedulerType")


def test_values_out_of_range_fail_at_load(tmp_path):
    for text, line in (
        ("train:\n  learning_rate: 0\n", 2),
        ("train:\n  learning_rate: -1e-4\n", 2),
        ("train:\n  learning_rate: .nan\n", 2),
        ("train:\n  per_device_train_batch_size: 0\n", 2),
        ("train:\n  gradient_accumulation_steps: 0\n", 2),
        ("stage: dpo\ntrain:\n  beta: -1\n", 3),
    ):
        msg = _error(_write(tmp_path, text))
        assert f"r.yaml:{line}: train." in msg and "is out of range; use" in msg, msg
    assert "train for at least one step" in _error(_write(tmp_path, "train:\n  num_train_epochs: 0\n"))


def test_a_recipe_for_another_stage_fails_with_one_line():
    sft = REPO / "recipes" / "smollm2-135m" / "sft.yaml"
    line = sft.read_text().splitlines().index("stage: sft") + 1
    assert _error(sft, stage="dpo") == (
        f"{sft}:{line}: this is a sft recipe, not one for `align dpo`; run `align sft {sft}`, or pass a dpo recipe"
    )


def test_each_stage_carries_only_its_own_sections():
    sft = load_recipe(REPO / "recipes" / "smollm2-135m" / "sft.yaml")
    report = load_recipe(REPO / "recipes" / "smollm2-135m" / "report.yaml")
    assert isinstance(sft, SFTRecipe) and not hasattr(sft, "dpo") and not hasattr(sft, "report")
    assert isinstance(report, ReportRecipe) and not hasattr(report, "train") and not hasattr(report, "data")
    dumped = dump_recipe(sft)
    assert "\ndpo:" not in dumped and "\nreport:" not in dumped and "\npairs:" not in dumped


def test_duplicate_keys_fail_with_both_lines(tmp_path):
    msg = _error(_write(tmp_path, "stage: sft\ntrain:\n  learning_rate: 1e-4\ntrain:\n  max_steps: 3\n"))
    assert msg.endswith(
        "r.yaml:4: duplicate key 'train' (first at line 2); merge the two into one; YAML would silently keep only the last"
    )


def test_bad_override_value_and_run_name_outside_output_root(tmp_path):
    path = _write(tmp_path, "stage: sft\n")
    assert _error(path, ["train.learning_rate=[1e-4"]) == (
        "override 'train.learning_rate=[1e-4': the value is not valid YAML; quote it: train.learning_rate='[1e-4'"
    )
    assert "run_name = '../x' is not a plain folder name" in _error(path, ["run_name=../x"])
    assert "not a plain folder name" in _error(path, ["run_name=a/b"])


def test_periodic_eval_needs_eval_data(tmp_path):
    path = _write(tmp_path, "stage: sft\ndata:\n  train: a.jsonl\ntrain:\n  eval_strategy: steps\n")
    assert _error(path).endswith(
        "r.yaml:5: train.eval_strategy = 'steps' but the recipe has no eval data; add "
        "data.eval or data.test_split_size, or set train.eval_strategy: no"
    )
    load_recipe(path, ["data.test_split_size=3"])  # a row count works


def test_yaml_no_is_trls_no(tmp_path):
    r = load_recipe(_write(tmp_path, "stage: sft\ntrain:\n  eval_strategy: no\n  save_strategy: no\n"))
    assert r.train == {"eval_strategy": "no", "save_strategy": "no"}


def test_bad_override_key_fails_before_anything_loads(tmp_path):
    path = _write(tmp_path, "stage: sft\n")
    assert "unknown key 'train.num_train_epoch'; did you mean 'num_train_epochs'?" in _error(
        path, ["train.num_train_epoch=2"]
    )
