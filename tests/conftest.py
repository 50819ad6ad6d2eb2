"""Shared fixtures: the embedded tokenizer, a tiny random LLaMA with it, toy clinical rows, tiny recipes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from align.config import load_recipe
from align.embedded import prepare_embedded
from align.models import load_tokenizer

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer(str(prepare_embedded("smollm2-135m")))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A 2-layer, 64-wide LLaMA with the real tokenizer and chat template, saved like any local model."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(cfg)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def toy_rows(n: int, kind: str) -> list[dict]:
    """Small triage-like rows with varied lengths; chosen and rejected differ."""
    rows = []
    for i in range(n):
        prompt = [{"role": "user", "content": f"Patient {i}: chest pain for {i + 1} hours" + " and nausea" * (i % 4)}]
        good = f"ESI level: {1 + i % 5}\nRationale: finding {i}" + " with detail" * (i % 3)
        bad = f"ESI level: {1 + (i + 2) % 5}\nRationale: wrong {i}"
        if kind == "sft":
            rows.append(
                {
                    "id": f"t{i}",
                    "task": "triage",
                    "prompt": prompt,
                    "completion": [{"role": "assistant", "content": good}],
                    "meta": {"esi": 1 + i % 5},
                }
            )
        else:
            rows.append(
                {
                    "id": f"t{i}",
                    "task": "triage",
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": good}],
                    "rejected": [{"role": "assistant", "content": bad}],
                    "meta": {"error_type": "over_triage"},
                }
            )
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def tiny_recipe(tmp_path, tiny_model_dir):
    """Build a tiny SFT or DPO recipe writing under tmp_path."""

    def make(stage: str, *overrides: str, n: int = 12):
        kind = "sft" if stage == "sft" else "preference"
        style = "sft" if stage == "sft" else "pref"
        train = write_jsonl(tmp_path / "data" / f"{kind}_train.jsonl", toy_rows(n, style))
        held_out = [
            {**r, "id": "e" + r["id"], "prompt": [{"role": "user", "content": "eval " + r["prompt"][0]["content"]}]}
            for r in toy_rows(4, style)
        ]
        ev = write_jsonl(tmp_path / "data" / f"{kind}_eval.jsonl", held_out)
        recipe = REPO / "recipes" / "smollm2-135m" / f"{stage}.yaml"
        base = [
            f"stage={stage}",
            f"output_root={tmp_path / 'outputs'}",
            f"model.name={tiny_model_dir}",
            "model.precision=fp32",
            f"data.train={train}",
            f"data.eval={ev}",
            "train.max_steps=3",
            "train.per_device_train_batch_size=4",
            "train.logging_steps=1",
            "train.save_steps=2",
            "train.eval_strategy=no",
            "train.report_to=none",
        ]
        if stage == "dpo":
            base.append(f"dpo.init_from={tmp_path / 'outputs' / 'default' / 'sft'}")
        return load_recipe(recipe, base + list(overrides))

    return make


def plain_answer_logps(model, sequences) -> list[float]:
    """One sequence at a time, full logits from the model's own forward: the definition."""
    out = []
    with torch.no_grad():
        for prompt, answer in sequences:
            ids = torch.tensor([prompt + answer])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
            targets = ids[0, 1:]
            picked = logp.gather(-1, targets[:, None])[:, 0]
            out.append(float(picked[max(len(prompt), 1) - 1 :].sum()))
    return out
