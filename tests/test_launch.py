"""The launcher command for a stage: plain `align`, torchrun for NPROC > 1, accelerate with a config (exact argv)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from align.errors import UserError
from align.launch import command_from_argv, launch_command

REPO = Path(__file__).resolve().parents[1]
RECIPE = "recipes/smollm2-135m/sft.yaml"
FSDP = str(REPO / "recipes" / "accelerate" / "fsdp.yaml")


def test_one_process_is_plain_align():
    assert launch_command("sft", RECIPE, ["train.num_train_epochs=2"]) == [
        ".venv/bin/align",
        "sft",
        RECIPE,
        "train.num_train_epochs=2",
    ]


def test_several_processes_use_torchrun_standalone():
    assert launch_command("dpo", "r.yaml", [], nproc=2, python="/opt/venv/bin/python") == [
        "/opt/venv/bin/torchrun",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "align.cli",
        "dpo",
        "r.yaml",
    ]


def test_accelerate_config_uses_its_process_count_unless_nproc_is_given():
    assert launch_command("sft", RECIPE, ["seed=1"], accelerate_config=FSDP) == [
        ".venv/bin/accelerate",
        "launch",
        "--config_file",
        FSDP,
        "-m",
        "align.cli",
        "sft",
        RECIPE,
        "seed=1",
    ]
    assert launch_command("sft", RECIPE, [], nproc=4, accelerate_config=FSDP) == [
        ".venv/bin/accelerate",
        "launch",
        "--config_file",
        FSDP,
        "--num_processes",
        "4",
        "-m",
        "align.cli",
        "sft",
        RECIPE,
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stage": "eval"}, "unknown stage 'eval'; choose one of sft, dpo, report"),
        ({"nproc": 0}, "NPROC = 0 must be at least 1; pass NPROC=1 (default), 2, 8, ..."),
        ({"accelerate_config": "nope.yaml"}, "accelerate config not found: nope.yaml; pass one of recipes/accelerate/"),
    ],
)
def test_bad_launch_arguments_fail_with_one_line(kwargs, message):
    args = {"stage": "sft", "recipe": RECIPE, "overrides": [], **kwargs}
    with pytest.raises(UserError) as err:
        launch_command(**args)
    assert str(err.value).startswith(message)


def test_module_entry_points_run_as_python_dash_m():
    """`python -m align.launch` (the Makefile's) and `-m align.cli` (what torchrun/accelerate start) both run."""
    launch = subprocess.run(
        [sys.executable, "-m", "align.launch", "--nproc", "0", "sft", RECIPE], capture_output=True, text=True, cwd=REPO
    )
    assert (launch.returncode, launch.stderr.strip()) == (
        2,
        "NPROC = 0 must be at least 1; pass NPROC=1 (default), 2, 8, ...",
    )
    cli = subprocess.run([sys.executable, "-m", "align.cli", "sft", "--help"], capture_output=True, text=True, cwd=REPO)
    assert cli.returncode == 0 and "usage: align sft" in cli.stdout


def test_makefile_arguments_map_to_the_command():
    """What `make sft NPROC=2 ARGS='train.num_train_epochs=2 --force'` and `make dpo ACCELERATE=` pass to `align.launch`."""
    argv = ["--nproc", "2", "--accelerate-config", "", "sft", RECIPE, "train.num_train_epochs=2", "--force"]
    assert command_from_argv(argv, python="bin/python") == [
        "bin/torchrun",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "align.cli",
        "sft",
        RECIPE,
        "train.num_train_epochs=2",
        "--force",
    ]
    argv = ["--nproc", "1", "--accelerate-config", FSDP, "dpo", "d.yaml"]
    assert command_from_argv(argv, python="bin/python") == [
        "bin/accelerate",
        "launch",
        "--config_file",
        FSDP,
        "-m",
        "align.cli",
        "dpo",
        "d.yaml",
    ]
