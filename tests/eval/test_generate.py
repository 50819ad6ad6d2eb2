"""Batched generation on the tiny random LLaMA: left padding changes nothing; sampling is seeded, grouped by prompt."""

from __future__ import annotations

import pytest

from align.config import ModelConfig
from align.eval.generate import generate, left_pad, sample
from align.models import load_model


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(ModelConfig(name=str(tiny_model_dir), precision="fp32"), str(tiny_model_dir))


PROMPTS = [[{"role": "user", "content": "Chest pain" + " and nausea" * n}] for n in (0, 5, 1, 9, 3)]


def test_left_pad_ends_every_prompt_at_the_last_column() -> None:
    ids, mask = left_pad([[7, 8, 9], [5]], pad=0)
    assert ids.tolist() == [[7, 8, 9], [0, 0, 5]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_batched_greedy_equals_one_prompt_at_a_time(tiny) -> None:
    model, tok = tiny
    batched = generate(model, tok, PROMPTS, max_new_tokens=6, batch_size=4)
    alone = [generate(model, tok, [p], max_new_tokens=6, batch_size=1)[0] for p in PROMPTS]
    assert batched == alone


def test_sampling_is_seeded_and_grouped_by_prompt(tiny) -> None:
    model, tok = tiny
    first = sample(model, tok, PROMPTS, 6, k=3, temperature=1.0, top_p=1.0, seed=1, batch_size=6)
    assert [len(texts) for texts in first] == [3] * len(PROMPTS)
    assert sample(model, tok, PROMPTS, 6, k=3, temperature=1.0, top_p=1.0, seed=1, batch_size=6) == first
    assert sample(model, tok, PROMPTS, 6, k=3, temperature=1.0, top_p=1.0, seed=2, batch_size=6) != first
    # near-zero temperature is greedy: each prompt's k answers are its own greedy answer, in input order
    cold = sample(model, tok, PROMPTS, 6, k=2, temperature=1e-5, top_p=1.0, seed=0, batch_size=4)
    greedy = generate(model, tok, PROMPTS, max_new_tokens=6, batch_size=4)
    assert cold == [[g, g] for g in greedy]
