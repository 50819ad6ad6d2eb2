"""What every run saves beside its outputs: resolved recipe, library versions, data fingerprint, seed, metrics."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import secrets
import subprocess
from pathlib import Path
from typing import Any

from align.config import Recipe, dump_recipe
from align.errors import UserError

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


def write_atomic(path: Path, text: str) -> Path:
    """Write to a temp file in the same directory, then rename: readers never see half a file.

    The file gets the mode any newly created file gets under the process umask (0644 under umask 022), not
    mkstemp's 0600, so a report can be shared or served as is. A failed write removes the temp file and leaves
    the old file, if any, untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _create_temp(path: Path) -> tuple[int, str]:
    """A new, exclusive temp file beside `path`, opened with mode 0666 so the kernel applies the umask."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp file name beside {path}")


def read_jsonl(path: Path | str) -> list[dict]:
    """The rows of a JSONL file align wrote itself (bundled data, generations, pairs); a bad line is located.

    User datasets go through align.data.load.load_rows, which also converts and checks them."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise UserError(
                    f"line is not valid JSON ({err.msg})", "fix or regenerate the file", str(path), i
                ) from None
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """One JSON object per line, written atomically."""
    return write_atomic(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


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
