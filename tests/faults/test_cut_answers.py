"""A stage whose truncation cuts away every answer fails before training, naming the key; one that cuts some warns."""

from __future__ import annotations

import logging

import pytest

from align.data.collate import answerless, render_sft
from align.errors import UserError
from align.stage import is_complete
from align.train.dpo import run_dpo
from align.train.sft import run_sft
from tests.conftest import toy_rows


def test_answerless_counts_rows_without_an_answer_token():
    sft = {"completion_mask": [[0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 1], []]}
    assert answerless(sft) == 2
    assert answerless(sft, max_length=3) == 3  # the third row's one answer token is past 3
    pairs = {"chosen_ids": [[5], [], [6], []], "rejected_ids": [[7], [8], [], []]}
    assert answerless(pairs) == 3  # a pair needs both answers


FIX = "raise {key} above the prompts' length (`align data validate` counts them), or shorten the prompts"


@pytest.mark.parametrize("key", ["data.max_length", "train.max_length"])
def test_sft_with_every_answer_cut_away_fails_before_writing_anything(tiny_recipe, key):
    recipe = tiny_recipe("sft", f"{key}=16")  # the chat template's system line alone is longer
    with pytest.raises(UserError) as err:
        run_sft(recipe)
    assert str(err.value) == (
        f"{key} = 16 cuts away the whole answer of every training row (12 of 12 kept no answer token), so the stage "
        f"would train on nothing; {FIX.format(key=key)}"
    )
    assert not recipe.output_dir.exists()


def test_dpo_with_every_answer_cut_away_fails_before_training(tiny_recipe):
    run_sft(tiny_recipe("sft"))
    recipe = tiny_recipe("dpo", "data.max_length=16")
    with pytest.raises(UserError, match=r"^data.max_length = 16 cuts away .* \(12 of 12 kept no answer token\)"):
        run_dpo(recipe)
    assert not is_complete(recipe.output_dir) and not (recipe.output_dir / "checkpoints").exists()


def test_some_answers_cut_away_is_a_warning_with_the_count(tiny_recipe, tokenizer, caplog):
    prompts = [
        len(r["input_ids"]) - sum(r["completion_mask"])
        for r in (render_sft(tokenizer, t, 768) for t in toy_rows(12, "sft"))
    ]
    longest = max(prompts)  # rows with the longest prompt keep no answer token, the others keep some
    recipe = tiny_recipe("sft", f"data.max_length={longest}")
    with caplog.at_level(logging.WARNING, logger="align"):
        result = run_sft(recipe)
    assert (
        f"{prompts.count(longest)} of 12 training rows kept no answer token at data.max_length = {longest}"
        in caplog.text
    )
    assert 0 < prompts.count(longest) < 12 and is_complete(result.out_dir)
