"""Load the packaged `evaluate` metrics by local path, so that no hub access is ever needed."""

from __future__ import annotations

from pathlib import Path

import evaluate

from align.errors import UserError

METRICS_DIR = Path(__file__).resolve().parent / "metrics"
METRIC_NAMES = tuple(sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file()))


def metric_path(name: str) -> Path:
    """Folder of a packaged metric (`metrics/<name>/<name>.py` inside it)."""
    if name not in METRIC_NAMES:
        raise UserError(f"unknown metric '{name}'", f"use one of: {', '.join(METRIC_NAMES)}")
    return METRICS_DIR / name


def load_metric(name: str) -> evaluate.EvaluationModule:
    """`evaluate.load` on the packaged folder; works offline (HF_HUB_OFFLINE=1, HF_EVALUATE_OFFLINE=1)."""
    return evaluate.load(str(metric_path(name)), keep_in_memory=True)
