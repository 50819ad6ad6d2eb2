"""SFT then DPO on the tiny model end to end: the output contract a user relies on."""

import json

from align.train.dpo import run_dpo
from align.train.sft import run_sft


def test_sft_then_dpo_writes_the_output_contract(tiny_recipe):
    sft = run_sft(tiny_recipe("sft"))
    dpo = run_dpo(tiny_recipe("dpo"))
    for res in (sft, dpo):
        for name in ("final", "metrics.json", "recipe.yaml", "versions.json"):
            assert (res.out_dir / name).exists(), name
        metrics = json.loads((res.out_dir / "metrics.json").read_text())
        assert metrics["global_step"] == 3
        assert len(metrics["curves"]["loss"]) == 3
    assert (sft.out_dir / "merged" / "model.safetensors").is_file()
    assert (dpo.out_dir / "final" / "adapter_config.json").is_file()
