"""What every run saves beside its outputs: resolved recipe, library versions, data fingerprint, seed, metrics."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from align.config import Recipe, dump_recipe

LIBRARIES = ("align", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "evaluate", "numpy")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except OSError:
        return None
    return res.stdout.strip() or None


def data_fingerprint(rows: list[dict]) -> str:
    """sha256 of the rows, in order (canonical JSON lines): the data fingerprint saved beside a run's outputs."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


def write_atomic(path: Path, text: str) -> None:
    """Write to a temp file in the same directory, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def is_main_process() -> bool:
    """Rank 0 (or a single process): the only one that writes outputs under a multi-process launch."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def save_run_info(out_dir: Path, recipe: Recipe, data_fingerprints: dict[str, str], extra: dict | None = None) -> None:
    """recipe.yaml (resolved) and versions.json (libraries, data fingerprints, seed, git commit); rank 0 only."""
    if not is_main_process():
        return
    write_atomic(out_dir / "recipe.yaml", dump_recipe(recipe))
    info = {
        "versions": library_versions(),
        "data_fingerprint": data_fingerprints,
        "seed": recipe.seed,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "git_commit": git_commit(),
        **(extra or {}),
    }
    write_json(out_dir / "versions.json", info)
