"""SFT then DPO on the tiny model end to end: the output contract a user relies on."""

import json
import math

from transformers import TrainerCallback

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


def test_any_trl_option_works_from_a_recipe_with_curves_and_periodic_eval(tiny_recipe):
    """`optim: adafactor` (never mentioned by align), TensorBoard curves, eval on the eval split every 2 steps and at
    the last one."""
    from transformers.optimization import Adafactor

    seen = {}

    class Spy(TrainerCallback):
        def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
            seen["optimizer"] = optimizer

    recipe = tiny_recipe(
        "sft", "train.optim=adafactor", "train.report_to=tensorboard", "train.eval_strategy=steps", "train.eval_steps=2"
    )
    res = run_sft(recipe, callbacks=(Spy(),))
    assert isinstance(seen["optimizer"].optimizer, Adafactor)
    events = list((res.out_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    evals = json.loads((res.out_dir / "metrics.json").read_text())["curves"]["eval_loss"]
    assert [step for step, _ in evals] == [2, 3] and all(math.isfinite(v) for _, v in evals)
