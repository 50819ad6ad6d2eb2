"""A rerun resumes the newest *complete* checkpoint; incomplete ones (a kill during a save, or during the rotation that
deletes old ones) are logged with the reason and moved out of the trainer's folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors.torch import save_file

from align.stage import checkpoint_problem, last_checkpoint


def write_checkpoint(folder: Path, step: int) -> Path:
    """The files the trainer writes for a LoRA checkpoint, in its order (trainer_state.json last)."""
    folder.mkdir(parents=True)
    save_file({"lora_A": torch.ones(4, 8), "lora_B": torch.zeros(8, 4)}, folder / "adapter_model.safetensors")
    (folder / "adapter_config.json").write_text(json.dumps({"r": 4}))
    torch.save({"state": {}, "param_groups": [{"lr": 1e-3}]}, folder / "optimizer.pt")
    torch.save({"base_lrs": [1e-3], "last_epoch": step}, folder / "scheduler.pt")
    torch.save({"python": 1}, folder / "rng_state.pth")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    return folder


def cut(path: Path, keep: int = -7) -> None:
    """Truncate a file as a kill in the middle of writing it would (keep its first bytes, drop the end)."""
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def test_the_newest_complete_checkpoint_is_resumed_and_incomplete_ones_are_set_aside(tmp_path, caplog):
    ckpts = tmp_path / "sft" / "checkpoints"
    good = write_checkpoint(ckpts / "checkpoint-2", 2)
    write_checkpoint(ckpts / "checkpoint-1", 1)  # older and complete: stays
    broken = {
        3: lambda f: cut(f / "optimizer.pt"),
        4: lambda f: cut(f / "adapter_model.safetensors"),
        5: lambda f: cut(f / "trainer_state.json"),
        6: lambda f: (f / "trainer_state.json").unlink(),  # killed inside the save
        7: lambda f: [p.unlink() for p in f.glob("*.safetensors")],  # half deleted by the trainer's rotation
        8: lambda f: cut(f / "rng_state.pth", keep=10),
    }
    for step, damage in broken.items():
        damage(write_checkpoint(ckpts / f"checkpoint-{step}", step))
    with caplog.at_level(logging.INFO, logger="align"):
        assert last_checkpoint(tmp_path / "sft") == str(good)
    assert sorted(p.name for p in ckpts.iterdir()) == ["checkpoint-1", "checkpoint-2"]
    aside = tmp_path / "sft" / "checkpoints-incomplete"
    assert sorted(p.name for p in aside.iterdir()) == [f"checkpoint-{s}" for s in sorted(broken)]
    reasons = {
        3: "optimizer.pt is truncated (no zip directory at its end)",
        4: "adapter_model.safetensors is truncated (",
        5: "trainer_state.json is truncated (not valid JSON)",
        6: "no trainer_state.json (the save was interrupted)",
        7: "no model or adapter weights",
        8: "rng_state.pth is truncated (no zip directory at its end)",
    }
    for step, reason in reasons.items():
        assert f"skipping incomplete checkpoint {ckpts / f'checkpoint-{step}'}: {reason}" in caplog.text
    assert f"resuming from {good}" in caplog.text
    # a second kill at the same step later: the name already set aside gets a suffix, nothing is overwritten
    write_checkpoint(ckpts / "checkpoint-6", 6).joinpath("trainer_state.json").unlink()
    assert last_checkpoint(tmp_path / "sft") == str(good)
    assert (aside / "checkpoint-6.1").is_dir()


def test_no_complete_checkpoint_means_a_fresh_start(tmp_path):
    ckpts = tmp_path / "sft" / "checkpoints"
    (ckpts / "checkpoint-2").mkdir(parents=True)  # killed right after the folder was made
    assert last_checkpoint(tmp_path / "sft") is None
    assert last_checkpoint(tmp_path / "nothing-here") is None
    assert not (ckpts / "checkpoint-2").exists()


def test_a_complete_checkpoint_has_no_problem(tmp_path):
    assert checkpoint_problem(write_checkpoint(tmp_path / "checkpoint-4", 4)) is None
