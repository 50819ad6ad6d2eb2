"""Recipes load strictly: every recipe under recipes/ loads; mistakes fail with the line and the valid choices."""

from pathlib import Path

import pytest

from align.config import Recipe, dump_recipe, load_recipe
from align.errors import UserError

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(p for p in (REPO / "recipes").rglob("*.yaml") if "accelerate" not in p.parts)


def test_there_are_recipes():
    assert len(RECIPES) >= 3


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_recipe_loads(path):
    recipe = load_recipe(path)
    assert isinstance(recipe, Recipe)
    assert recipe.stage in path.stem or recipe.stage in ("sft", "dpo", "report", "domain")


def test_misspelled_key_names_line_and_suggests(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("stage: sft\ntrain:\n  epochs: 1\n  learning_rat: 0.1\n")
    with pytest.raises(UserError) as err:
        load_recipe(bad)
    msg = str(err.value)
    assert msg.startswith(f"{bad}:4: unknown key 'train.learning_rat'")
    assert "did you mean 'learning_rate'?" in msg and "batch_size" in msg


def test_bad_choice_lists_valid_values(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("model:\n  precision: fp16\n")
    with pytest.raises(
        UserError, match=r"r.yaml:2: model.precision = 'fp16' is not allowed; choose one of 'auto', 'bf16', 'fp32'"
    ):
        load_recipe(bad)


def test_wrong_type_fails(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("train:\n  batch_size: eight\n")
    with pytest.raises(UserError, match="train.batch_size = 'eight' should be int"):
        load_recipe(bad)


def test_overrides_and_shorthand(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("data:\n  train: a.jsonl\n")
    r = load_recipe(path, ["train.learning_rate=1e-4", "lora.enabled=false", "dpo.loss_type=ipo"])
    assert r.train.learning_rate == 1e-4 and r.lora.enabled is False and r.dpo.loss_type == ["ipo"]
    assert r.data.train[0].path == "a.jsonl"
    assert "learning_rate: 0.0001" in dump_recipe(r)


def test_bad_override_key_fails_before_anything_loads(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("stage: sft\n")
    with pytest.raises(UserError, match="unknown key 'train.epoch'.*did you mean 'epochs'"):
        load_recipe(path, ["train.epoch=2"])
