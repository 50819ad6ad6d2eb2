"""Build (and exec) the launcher command for a training stage: plain `align`, `torchrun`, or `accelerate launch`.

`make sft NPROC=2` and `make sft ACCELERATE=recipes/accelerate/fsdp.yaml` come through here:

    python -m align.launch --nproc 2 sft recipes/smollm2-135m/sft.yaml train.epochs=2

Why torchrun for NPROC > 1 without a config: `accelerate launch --cpu --num_processes 2` falls through to accelerate's
single-process launcher on a CPU machine (accelerate 1.15 only spawns several CPU processes through MPI), so it
silently trains a world of 1. `torchrun --standalone` starts N ranks on CPU (gloo) or GPU (NCCL) alike, and
`--standalone` picks a free rendezvous port so two runs on one machine do not collide.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from align.errors import UserError

STAGES = ("sft", "dpo", "report")


def launch_command(
    stage: str,
    recipe: str,
    overrides: list[str],
    nproc: int = 1,
    accelerate_config: str | None = None,
    python: str = ".venv/bin/python",
) -> list[str]:
    """The argv that runs `stage` on `recipe`: one process, N processes on this node, or an accelerate config."""
    if stage not in STAGES:
        raise UserError(f"unknown stage {stage!r}", f"choose one of {', '.join(STAGES)}")
    if nproc < 1:
        raise UserError(f"NPROC = {nproc} must be at least 1", "pass NPROC=1 (default), 2, 8, ...")
    bin_dir = Path(python).parent
    cli = [stage, recipe, *overrides]
    if accelerate_config is not None:
        if not Path(accelerate_config).is_file():
            raise UserError(
                f"accelerate config not found: {accelerate_config}", "pass one of recipes/accelerate/*.yaml"
            )
        procs = ["--num_processes", str(nproc)] if nproc > 1 else []  # else the config's num_processes
        return [
            str(bin_dir / "accelerate"),
            "launch",
            "--config_file",
            accelerate_config,
            *procs,
            "-m",
            "align.cli",
        ] + cli
    if nproc > 1:
        return [str(bin_dir / "torchrun"), "--standalone", "--nproc_per_node", str(nproc), "-m", "align.cli"] + cli
    return [str(bin_dir / "align")] + cli


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m align.launch", description="run a stage on 1..N processes")
    p.add_argument("--nproc", type=int, default=1, help="processes on this node (torchrun, or accelerate's count)")
    p.add_argument("--accelerate-config", default=None, help="an accelerate config, e.g. recipes/accelerate/fsdp.yaml")
    p.add_argument("stage", help="sft, dpo or report")
    p.add_argument("recipe", help="recipe YAML")
    p.add_argument("overrides", nargs="*", help="key=value overrides")
    return p


def command_from_argv(argv: list[str] | None = None, python: str = sys.executable) -> list[str]:
    """`--nproc N --accelerate-config CFG STAGE RECIPE [overrides] [--force ...]` -> the launcher argv."""
    args, cli_flags = build_parser().parse_known_args(argv)  # --force, --allow-phi: for align.cli, passed through
    config = args.accelerate_config or None  # an empty ACCELERATE= from the Makefile means "no config"
    return launch_command(args.stage, args.recipe, args.overrides + cli_flags, args.nproc, config, python=python)


def main(argv: list[str] | None = None) -> int:
    try:
        cmd = command_from_argv(argv)
    except UserError as err:
        print(str(err), file=sys.stderr)
        return 2
    print("+ " + shlex.join(cmd), flush=True)
    os.execv(cmd[0], cmd)  # replaces this process: exit code and signals are the launcher's own
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
