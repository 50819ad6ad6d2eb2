"""A few steps of the real embedded default (SmolLM2-135M-Instruct) through SFT and DPO on the bundled data."""

import json
import math

import pytest

from align.config import load_recipe
from align.train.dpo import run_dpo
from align.train.sft import run_sft
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_real_default_model_sft_then_dpo_steps(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # recipes point at data/clinical relative to the repository
    out = tmp_path / "outputs"
    # fp32: the step-1 check below is exact there; bf16 autocast (picked by `auto` on AMX CPUs) adds ~0.03 of noise
    common = [
        f"output_root={out}",
        "model.precision=fp32",
        "train.max_steps=2",
        "train.logging_steps=1",
        "train.save_steps=100",
    ]
    sft = run_sft(load_recipe("recipes/smollm2-135m/sft.yaml", common))
    dpo = run_dpo(
        load_recipe(
            "recipes/smollm2-135m/dpo.yaml",
            [*common, f"dpo.init_from={out}/default/sft", "train.per_device_train_batch_size=2"],
        )
    )
    sft_m = json.loads((sft.out_dir / "metrics.json").read_text())
    dpo_m = json.loads((dpo.out_dir / "metrics.json").read_text())
    sft_losses = [v for _, v in sft_m["curves"]["loss"]]
    assert len(sft_losses) == 2 and all(math.isfinite(v) and 0 < v < 10 for v in sft_losses)
    first_margin = dpo_m["curves"]["rewards/margins"][0][1]
    assert abs(first_margin) < 0.01  # step 1: the policy is the reference (the SFT model), so rewards are ~0
    assert dpo_m["ref_forward_calls"] + dpo_m["ref_cache_hits"] >= 1
    assert dpo_m["padding_fraction"] < 0.35
    versions = json.loads((dpo.out_dir / "versions.json").read_text())
    assert versions["reference_model"].endswith("sft/merged") and versions["versions"]["trl"] == "1.16.0"
