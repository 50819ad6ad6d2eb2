"""Two-step PEFT on the tiny model: the domain stage, and a task adapter that really trains on top of a domain adapter.

The stacked model must run both adapters (its outputs differ from either alone), train only the task adapter (the
domain weights stay bit-identical, also across a resume), save the task adapter alone, and fold base + domain + task
into merged/; `merged` mode must equal `frozen` mode with the same weights.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from peft import PeftModel, get_peft_model, get_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, TrainerCallback

from align.config import LoraConfig, load_recipe
from align.errors import UserError
from align.models import peft_config
from align.stage import load_stage_model
from align.train.adapters import DOMAIN, TASK, attach_task_adapter, merged_copy, resolve_domain, stack_frozen
from align.train.domain import run_domain
from align.train.dpo import run_dpo
from align.train.sft import run_sft
from tests.conftest import REPO, write_jsonl

TASK_LORA = LoraConfig(r=4, alpha=8, dropout=0.0)


def _base(model_dir):
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


def _randomize(model, adapter: str, seed: int) -> None:
    """Non-zero LoRA B matrices (PEFT starts them at zero), so the adapter changes the outputs."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if f"lora_B.{adapter}." in name:
                param.normal_(0.0, 0.2)


@torch.no_grad()
def _logits(model, tokenizer) -> torch.Tensor:
    ids = tokenizer("Patient with chest pain radiating to the left arm for two hours.", return_tensors="pt").input_ids
    return model(input_ids=ids, use_cache=False).logits  # (1, T, V)


@pytest.fixture(scope="module")
def domain_dir(tiny_model_dir, tmp_path_factory):
    """A domain LoRA on the tiny model with random, non-zero weights, saved like `align domain` saves final/."""
    model = get_peft_model(_base(tiny_model_dir), peft_config(LoraConfig(r=8, alpha=16, dropout=0.0)))
    _randomize(model, "default", seed=1)
    out = tmp_path_factory.mktemp("domain") / "final"
    model.save_pretrained(out, safe_serialization=True)
    return out


def test_both_adapters_are_active_and_only_the_task_adapter_trains(tiny_model_dir, domain_dir, tokenizer):
    model = stack_frozen(_base(tiny_model_dir), domain_dir, peft_config(TASK_LORA), seed=0).eval()
    _randomize(model, TASK, seed=2)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(f".{TASK}." in n for n in trainable)
    both = _logits(model, tokenizer)
    model.base_model.set_adapter(DOMAIN)
    domain_only = _logits(model, tokenizer)
    model.base_model.set_adapter(TASK)
    task_only = _logits(model, tokenizer)
    with model.disable_adapter():
        base = _logits(model, tokenizer)
    for other in (domain_only, task_only, base):
        assert (both - other).abs().max() > 1e-2
    assert (domain_only - task_only).abs().max() > 1e-2
    model.base_model.set_adapter([TASK, DOMAIN])
    merged = merged_copy(model)  # merge_and_unload of both adapters: base + domain + task in plain weights
    assert not hasattr(merged, "peft_config")
    torch.testing.assert_close(_logits(merged, tokenizer), both, atol=1e-5, rtol=0)


def test_merged_mode_equals_frozen_mode(tiny_model_dir, domain_dir, tokenizer):
    lora = LoraConfig(**{**TASK_LORA.__dict__, "domain_adapter": str(domain_dir.parent), "domain_mode": "frozen"})
    frozen, cfg = attach_task_adapter(_base(tiny_model_dir), lora, resolve_domain(lora), seed=0)
    assert cfg is None  # the trainer gets the PeftModel as is
    _randomize(frozen, TASK, seed=3)
    lora.domain_mode = "merged"
    plain, cfg = attach_task_adapter(_base(tiny_model_dir), lora, resolve_domain(lora), seed=0)
    assert not isinstance(plain, PeftModel)
    merged = get_peft_model(plain, cfg).eval()
    task_only = get_peft_model(_base(tiny_model_dir), peft_config(TASK_LORA)).eval()
    weights = {n: p for n, p in frozen.named_parameters() if f".{TASK}." in n}
    with torch.no_grad():
        for model in (merged, task_only):
            for name, param in model.named_parameters():
                if "lora_" in name:
                    param.copy_(weights[name])
    expected = _logits(frozen.eval(), tokenizer)
    torch.testing.assert_close(_logits(merged, tokenizer), expected, atol=1e-5, rtol=0)
    assert (_logits(task_only, tokenizer) - expected).abs().max() > 1e-2  # the domain adapter is in there


class Watch(TrainerCallback):
    """Records the active adapters at every step and keeps the trained model."""

    def __init__(self) -> None:
        self.active: list[list[str]] = []
        self.model = None

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self.active.append(list(model.active_adapters))
        self.model = model


class Interrupt(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise KeyboardInterrupt


def _losses(out_dir) -> list[float]:
    return [v for _, v in json.loads((out_dir / "metrics.json").read_text())["curves"]["loss"]]


def _check_merged_and_stage_loading(res, recipe, tiny_model_dir, domain_dir, tokenizer) -> None:
    """merged/ = base + domain + task, and load_stage_model rebuilds the same from final/ + the marker."""
    expected_model = PeftModel.from_pretrained(_base(tiny_model_dir), str(domain_dir)).merge_and_unload()
    expected_model = PeftModel.from_pretrained(expected_model, str(res.final_dir)).merge_and_unload()
    expected = _logits(expected_model, tokenizer)
    torch.testing.assert_close(_logits(_base(res.out_dir / "merged"), tokenizer), expected, atol=1e-5, rtol=0)
    shutil.rmtree(res.out_dir / "merged")  # merged/ takes precedence; without it the marker must be used
    stage_model, _ = load_stage_model(res.out_dir, recipe.model)
    torch.testing.assert_close(_logits(stage_model.eval(), tokenizer), expected, atol=1e-5, rtol=0)
    task_only = PeftModel.from_pretrained(_base(tiny_model_dir), str(res.final_dir)).merge_and_unload()
    assert (_logits(task_only, tokenizer) - expected).abs().max() > 1e-3


def test_sft_on_a_frozen_domain_adapter(tiny_recipe, tiny_model_dir, domain_dir, tokenizer):
    args = (f"lora.domain_adapter={domain_dir.parent}", "lora.domain_mode=frozen", "train.learning_rate=0.01")
    full = tiny_recipe("sft", *args, "train.max_steps=4", "run_name=full")
    watch = Watch()
    res = run_sft(full, callbacks=(watch,))
    assert watch.active == [[TASK, DOMAIN]] * 4
    saved_domain = load_file(domain_dir / "adapter_model.safetensors")
    after = get_peft_model_state_dict(watch.model, adapter_name=DOMAIN)
    assert after.keys() == saved_domain.keys()
    assert all(torch.equal(after[k], saved_domain[k]) for k in saved_domain)  # bit-identical after training
    task = load_file(res.final_dir / "adapter_model.safetensors")  # the task adapter alone
    assert task.keys() == get_peft_model_state_dict(watch.model, adapter_name=TASK).keys()
    assert all(t.abs().max() > 0 for k, t in task.items() if "lora_B" in k)  # trained away from PEFT's zero init
    assert not (res.final_dir / DOMAIN).exists()
    record = {"path": str(domain_dir.resolve()), "mode": "frozen"}
    assert json.loads((res.out_dir / "domain_adapter.json").read_text()) == record
    assert json.loads((res.out_dir / "versions.json").read_text())["domain_adapter"] == record
    assert res.metrics["domain_adapter"] == record
    # resumed == uninterrupted: a resume that re-activated only one adapter would change the losses
    interrupted = tiny_recipe("sft", *args, "train.max_steps=4", "run_name=resumed")
    with pytest.raises(KeyboardInterrupt):
        run_sft(interrupted, callbacks=(Interrupt(),))
    resumed_watch = Watch()
    resumed = run_sft(interrupted, callbacks=(resumed_watch,))
    assert resumed_watch.active == [[TASK, DOMAIN]] * 2
    assert _losses(resumed.out_dir)[2:] == pytest.approx(_losses(res.out_dir)[2:], abs=1e-5)
    after = get_peft_model_state_dict(resumed_watch.model, adapter_name=DOMAIN)
    assert all(torch.equal(after[k], saved_domain[k]) for k in saved_domain)
    _check_merged_and_stage_loading(res, full, tiny_model_dir, domain_dir, tokenizer)


def test_bad_domain_settings_fail_before_loading_a_model(tiny_recipe, tmp_path, domain_dir):
    with pytest.raises(UserError, match="no LoRA adapter there"):
        resolve_domain(LoraConfig(domain_adapter=str(tmp_path)))
    with pytest.raises(UserError, match="needs a task LoRA"):
        resolve_domain(LoraConfig(enabled=False, domain_adapter=str(domain_dir)))
    with pytest.raises(UserError, match="set it in the SFT recipe"):
        run_dpo(tiny_recipe("dpo", f"lora.domain_adapter={domain_dir}"))


def test_domain_stage_then_sft_on_it_merged(tmp_path, tiny_model_dir, tiny_recipe, tokenizer):
    """`align domain`, then `align sft ... lora.domain_adapter=outputs/default/domain lora.domain_mode=merged`."""

    def docs(ids):
        return [
            {"id": f"n{i}", "text": f"Clinic note {i}: cough and fever for {i % 5 + 2} days; lungs clear."} for i in ids
        ]

    train = write_jsonl(tmp_path / "corpus" / "train.jsonl", docs(range(24)))
    held = write_jsonl(tmp_path / "corpus" / "held.jsonl", docs(range(100, 106)))
    recipe = load_recipe(
        REPO / "recipes" / "smollm2-135m" / "domain.yaml",
        [
            f"output_root={tmp_path / 'outputs'}",
            f"model.name={tiny_model_dir}",
            "model.precision=fp32",
            f"data.train={train}",
            f"data.eval={held}",
            "train.max_steps=8",
            "train.learning_rate=0.01",
            "train.warmup_steps=0",
            "train.max_length=128",
            "train.logging_steps=1",
            "train.save_steps=100",
        ],
    )
    res = run_domain(recipe)
    for name in ("final/adapter_config.json", "metrics.json", "recipe.yaml", "versions.json"):
        assert (res.out_dir / name).is_file(), name
    ppl = json.loads((res.out_dir / "metrics.json").read_text())["perplexity"]
    assert ppl["n_docs"] == 6 and ppl["tokens"] > 6 * 10
    assert isinstance(ppl["base"], float) and isinstance(ppl["domain"], float)
    assert ppl["domain"] < ppl["base"] / 2, ppl  # the adapter learned the notes' language
    recipe = tiny_recipe("sft", f"lora.domain_adapter={res.out_dir}", "lora.domain_mode=merged", "train.max_steps=2")
    sft = run_sft(recipe)
    assert json.loads((sft.out_dir / "domain_adapter.json").read_text()) == {
        "path": str((res.out_dir / "final").resolve()),
        "mode": "merged",
    }
    _check_merged_and_stage_loading(sft, recipe, tiny_model_dir, res.final_dir, tokenizer)
