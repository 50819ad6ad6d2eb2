"""DDP on CPU: `make sft NPROC=2`'s torchrun command really starts 2 ranks (gloo), only rank 0 writes the outputs, and
2 ranks x batch b give the same losses and adapter as 1 process x batch b x grad_accum 2.

Why grad_accum and not 1 process x batch 2b: both DDP and gradient accumulation average per-micro-batch losses, so
they agree for every loss. A batch of 2b instead averages over all of its pairs/tokens at once, which differs for
DPO's `sft` (RPO) term: TRL averages it over the chosen tokens of a micro-batch, so 2 ranks would average two token
means instead of taking one. The sample order also matches: accelerate hands micro-batch 2k to rank 0 and 2k+1 to
rank 1, which are the two micro-batches gradient accumulation takes for step k.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from align.config import dump_recipe
from align.launch import launch_command
from align.train.dpo import run_dpo
from align.train.sft import run_sft

# 12 toy rows of 56..69 tokens pack into 6 bins of <= 128 tokens: 3 steps of 2 bins, and 12 pairs make 3 steps of
# 2 x 2 pairs; both divide evenly, so no rank ever gets a padded (repeated) last batch.
COMMON = (
    "train.max_steps=-1",
    "train.num_train_epochs=1",
    "train.logging_steps=1",
    "train.save_steps=2",
    "lora.dropout=0.0",
)
SFT = (*COMMON, "train.per_device_train_batch_size=1", "train.max_length=128", "train.learning_rate=1e-3")
DPO = (*COMMON, "train.per_device_train_batch_size=2", "train.learning_rate=1e-3")
# fp32 throughout; the two runs differ only in summation order (gloo all-reduce vs accumulating in .grad), ~1e-7
# relative per step. 1e-4 leaves room for 3 Adam steps to amplify that and still fails on any real mismatch: one
# swapped micro-batch or a loss scaled by the world size moves these losses by >1e-2.
RTOL = 1e-4


def _torchrun(
    stage: str, recipe, root: Path, tmp_path: Path, overrides: tuple[str, ...]
) -> subprocess.CompletedProcess:
    """Run one stage as `make <stage> NPROC=2` does: the resolved recipe, the same overrides, a new output root."""
    path = tmp_path / f"{stage}-recipe.yaml"
    path.write_text(dump_recipe(recipe))
    cmd = launch_command(stage, str(path), [f"output_root={root}", *overrides], nproc=2, python=sys.executable)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # ALIGN_HOME unchanged: the tokenizer and refcache are shared
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _files(out_dir: Path) -> set[str]:
    return {str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file()}


def _curves(out_dir: Path) -> dict:
    return json.loads((out_dir / "metrics.json").read_text())


def _assert_close(a: list, b: list, what: str) -> None:
    assert len(a) == len(b) and len(a) > 0, (what, a, b)
    for (step_a, va), (step_b, vb) in zip(a, b, strict=True):
        assert step_a == step_b, (what, a, b)
        assert abs(va - vb) <= RTOL * max(1.0, abs(vb)), (what, step_a, va, vb)


def _check_one_writer(single: Path, ddp: Path) -> None:
    """Same files as the 1-process run (no duplicates, no temp leftovers) except the per-rank RNG states."""
    single_files, ddp_files = _files(single), _files(ddp)
    assert not [f for f in ddp_files if f.endswith(".tmp") or "/." in f or f.startswith(".")], ddp_files
    ckpt = "checkpoints/checkpoint-2/"
    # Trainer saves rng_state.pth in a world of 1 and rng_state_{rank}.pth per rank otherwise: proof of 2 ranks.
    assert ckpt + "rng_state.pth" in single_files
    assert {ckpt + "rng_state_0.pth", ckpt + "rng_state_1.pth"} <= ddp_files, sorted(ddp_files)
    per_rank = {f for f in ddp_files if "rng_state_" in f}
    assert ddp_files - per_rank == {f for f in single_files if "rng_state.pth" not in f}, sorted(
        ddp_files ^ single_files
    )


def _assert_same_adapter(single: Path, ddp: Path) -> None:
    a = load_file(str(single / "final" / "adapter_model.safetensors"))
    b = load_file(str(ddp / "final" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=RTOL, atol=1e-6)
    assert any(t.abs().max() > 1e-4 for n, t in a.items() if "lora_B" in n)  # it trained (B starts at zero)


def test_ddp_two_ranks_match_one_process_with_grad_accum(tiny_recipe, tmp_path):
    sft_recipe = tiny_recipe("sft", *SFT, "train.gradient_accumulation_steps=2")
    single_sft = run_sft(sft_recipe).out_dir
    dpo_recipe = tiny_recipe(
        "dpo", *DPO, "train.gradient_accumulation_steps=2"
    )  # both DPO runs start from the 1-process SFT
    single_dpo = run_dpo(dpo_recipe).out_dir

    ddp_root = tmp_path / "ddp"
    _torchrun("sft", sft_recipe, ddp_root, tmp_path, ("train.gradient_accumulation_steps=1",))
    _torchrun("dpo", dpo_recipe, ddp_root, tmp_path, ("train.gradient_accumulation_steps=1",))
    ddp_sft, ddp_dpo = ddp_root / "default" / "sft", ddp_root / "default" / "dpo"

    for single, ddp, keys in (
        (single_sft, ddp_sft, ("loss",)),
        (single_dpo, ddp_dpo, ("loss", "rewards/margins", "logps/chosen")),
    ):
        m1, m2 = _curves(single), _curves(ddp)
        assert m1["global_step"] == m2["global_step"] == 3  # 6 micro-batches of batch b: 3 optimizer steps of 2b
        for key in keys:
            _assert_close(m2["curves"][key], m1["curves"][key], key)
        _check_one_writer(single, ddp)
        _assert_same_adapter(single, ddp)
    # the runs really trained: the SFT loss moved between its first and last step
    losses = [v for _, v in _curves(single_sft)["curves"]["loss"]]
    assert abs(losses[0] - losses[-1]) > 1e-3, losses
