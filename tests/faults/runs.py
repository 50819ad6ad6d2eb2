"""Tiny-model `align sft|dpo` runs as a user starts them (`python -m align.cli ...` in a subprocess), for the fault and
offline tests: the recipe's overrides, the environment, and a runner that can SIGKILL the run when a condition on its
folder holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO, toy_rows, write_jsonl

# 12 toy rows of 56..69 tokens pack into 6 bins of <= 128 tokens: 6 SFT steps of one bin; 12 pairs are 6 DPO steps
# of 2 pairs. A checkpoint every 2 steps (3 kept), a loss logged at every step.
COMMON = (
    "train.max_steps=-1",
    "train.num_train_epochs=1",
    "train.logging_steps=1",
    "train.save_steps=2",
    "train.save_total_limit=2",
    "train.eval_strategy=no",
    "train.report_to=none",
    "train.learning_rate=1e-3",
    "model.precision=fp32",
    "lora.dropout=0.0",
)
STAGE = {
    "sft": ("train.per_device_train_batch_size=1", "train.max_length=128"),
    "dpo": ("train.per_device_train_batch_size=2",),
}


def stage_args(stage: str, root: Path, model_dir: Path, run_name: str, *extra: str) -> list[str]:
    """`align <stage>` arguments for a tiny run writing to root/outputs/<run_name>/<stage>."""
    kind, style = ("sft", "sft") if stage == "sft" else ("preference", "pref")
    train = root / "data" / f"{kind}_train.jsonl"
    if not train.exists():
        write_jsonl(train, toy_rows(12, style))
    ev = root / "data" / f"{kind}_eval.jsonl"
    if not ev.exists():
        held_out = [
            {**r, "id": "e" + r["id"], "prompt": [{"role": "user", "content": f"eval {i}"}]}
            for i, r in enumerate(toy_rows(2, style))
        ]
        write_jsonl(ev, held_out)
    return [
        stage,
        str(REPO / "recipes" / "smollm2-135m" / f"{stage}.yaml"),
        f"output_root={root / 'outputs'}",
        f"run_name={run_name}",
        f"model.name={model_dir}",
        f"data.train={train}",
        f"data.eval={ev}",
        *COMMON,
        *STAGE[stage],
        *extra,
    ]


def run_env(home: Path) -> dict[str, str]:
    """The user's environment, with align's cache (reference log-probs) in `home`; no offline variables set."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    return env | {"ALIGN_HOME": str(home), "PYTHONPATH": str(REPO)}


def run_align(
    args: list[str],
    env: dict[str, str],
    log: Path,
    kill_when: Callable[[], bool] | None = None,
    python: tuple[str, ...] = ("-m", "align.cli"),
    timeout: float = 180,
) -> int:
    """Run `python -m align.cli ARGS` (output to `log`); with `kill_when`, SIGKILL it the moment that holds (polled
    every 0.2 ms). Returns the exit code (-9 when killed)."""
    with log.open("a") as out:
        proc = subprocess.Popen([sys.executable, *python, *args], env=env, cwd=REPO, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while kill_when is not None and proc.poll() is None and time.monotonic() < deadline:
            if kill_when():
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.0002)
        try:
            return proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
