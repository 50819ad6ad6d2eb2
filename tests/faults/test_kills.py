"""Fault suite: a tiny-model `align sft` / `align dpo`, started as a user starts it, is SIGKILLed at points the test
chooses — inside a checkpoint save (a `checkpoint-N` folder exists, its trainer_state.json, written last, does not),
right after a save completes (the trainer's rotation, the next step, the final save) — then the same command is run
again. The result must be the uninterrupted run's: the same loss curve and the same final adapter weights (fp32,
1e-5)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.faults.runs import run_align, run_env, stage_args

KILLED = -9


def inside_save(ckpts: Path, step: int) -> Callable[[], bool]:
    """True while checkpoint-<step> is being written: its folder exists, its trainer_state.json not yet."""
    folder = ckpts / f"checkpoint-{step}"
    return lambda: folder.is_dir() and not (folder / "trainer_state.json").exists()


def saved(ckpts: Path, step: int) -> Callable[[], bool]:
    """True from the moment checkpoint-<step> is complete (the trainer goes on to rotate old checkpoints)."""
    return lambda: (ckpts / f"checkpoint-{step}" / "trainer_state.json").exists()


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("kills")
    return root, run_env(root / "home"), tiny_model_dir


def _run(world, stage: str, name: str, *extra: str, kill_when=None) -> int:
    root, env, model = world
    return run_align(stage_args(stage, root, model, name, *extra), env, root / f"{name}-{stage}.log", kill_when)


def _out(world, name: str, stage: str) -> Path:
    return world[0] / "outputs" / name / stage


@pytest.fixture(scope="module")
def reference_sft(world) -> Path:
    assert _run(world, "sft", "reference") == 0
    return _out(world, "reference", "sft")


def assert_same_result(run: Path, reference: Path) -> None:
    a, b = (json.loads((d / "metrics.json").read_text())["curves"]["loss"] for d in (run, reference))
    assert [s for s, _ in a] == [s for s, _ in b] == list(range(1, len(b) + 1))
    assert [v for _, v in a] == pytest.approx([v for _, v in b], abs=1e-5)
    wa, wb = (load_file(d / "final" / "adapter_model.safetensors") for d in (run, reference))
    assert wa.keys() == wb.keys()
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) <= 1e-5
    assert any(float(w.abs().max()) > 0 for k, w in wa.items() if "lora_B" in k)  # it trained (B starts at zero)


def _log(world, name: str, stage: str) -> str:
    return (world[0] / f"{name}-{stage}.log").read_text()


def test_sft_killed_inside_two_checkpoint_saves_resumes_to_the_uninterrupted_result(world, reference_sft):
    name, ckpts = "in-save", _out(world, "in-save", "sft") / "checkpoints"
    assert _run(world, "sft", name, kill_when=inside_save(ckpts, 2)) == KILLED
    assert not (ckpts / "checkpoint-2" / "trainer_state.json").exists()  # the kill landed inside the save
    # the rerun sets the half-written checkpoint-2 aside, starts afresh, and is killed inside checkpoint-4's save
    assert _run(world, "sft", name, kill_when=inside_save(ckpts, 4)) == KILLED
    assert not (ckpts / "checkpoint-4" / "trainer_state.json").exists()
    assert (ckpts / "checkpoint-2" / "trainer_state.json").exists()
    assert _run(world, "sft", name) == 0  # resumes checkpoint-2, sets checkpoint-4 aside
    aside = sorted(p.name for p in (ckpts.parent / "checkpoints-incomplete").iterdir())
    assert aside == ["checkpoint-2", "checkpoint-4"]
    assert "skipping incomplete checkpoint" in _log(world, name, "sft")
    assert f"resuming from {ckpts / 'checkpoint-2'}" in _log(world, name, "sft")
    assert_same_result(ckpts.parent, reference_sft)


def test_sft_killed_right_after_saves_resumes_to_the_uninterrupted_result(world, reference_sft):
    """After checkpoint-2 completes (the next step), then after the last checkpoint-6 completes (the rotation that
    deletes checkpoint-2, or the final save)."""
    name, ckpts = "after-save", _out(world, "after-save", "sft") / "checkpoints"
    assert _run(world, "sft", name, kill_when=saved(ckpts, 2)) == KILLED
    assert _run(world, "sft", name, kill_when=saved(ckpts, 6)) == KILLED
    assert not (ckpts.parent / "metrics.json").exists()
    assert _run(world, "sft", name) == 0
    assert_same_result(ckpts.parent, reference_sft)


def test_dpo_killed_inside_a_checkpoint_save_resumes_to_the_uninterrupted_result(world, reference_sft):
    init = f"dpo.init_from={reference_sft}"
    assert _run(world, "dpo", "reference", init) == 0
    name, ckpts = "in-save", _out(world, "in-save", "dpo") / "checkpoints"
    assert _run(world, "dpo", name, init, kill_when=inside_save(ckpts, 4)) == KILLED
    assert not (ckpts / "checkpoint-4" / "trainer_state.json").exists()
    assert _run(world, "dpo", name, init) == 0
    assert (ckpts.parent / "checkpoints-incomplete" / "checkpoint-4").is_dir()
    assert_same_result(ckpts.parent, _out(world, "reference", "dpo"))
