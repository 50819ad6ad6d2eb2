"""A recipe's `data` section -> canonical train/eval rows: bundled data built on demand, user files converted."""

from __future__ import annotations

import json
from pathlib import Path

from align.config import DataConfig, DatasetConfig
from align.data.mixing import mix, split_rows
from align.errors import UserError

BUNDLED_DIR = Path("data/clinical")


def ensure_bundled(cfg: DataConfig) -> None:
    """Build data/clinical/ when a recipe points into it and it is missing."""
    paths = [Path(d.path) for d in cfg.train + cfg.eval]
    if cfg.build_bundled and any(BUNDLED_DIR in p.parents and not p.exists() for p in paths):
        from align.data.build import build_bundled

        build_bundled(BUNDLED_DIR)


def is_bundled(path: str | Path) -> bool:
    return BUNDLED_DIR.resolve() in Path(path).resolve().parents


def read_canonical(path: Path) -> list[dict] | None:
    """Read a JSONL file already in canonical form (every row has `task` and `prompt` messages); else None."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"malformed JSON ({err.msg})", "fix or remove the line", str(path), n) from None
            if not (isinstance(row, dict) and "task" in row and isinstance(row.get("prompt"), list)):
                return None
            rows.append(row)
    return rows


def load_dataset_rows(spec: DatasetConfig, kind: str) -> list[dict]:
    path = Path(spec.path)
    looks_like_hub_id = spec.path.count("/") == 1 and not path.suffix
    if not path.exists() and not looks_like_hub_id:
        raise UserError(f"dataset not found: {spec.path}", "check data.train / data.eval paths in the recipe")
    rows = read_canonical(path) if path.suffix == ".jsonl" and not spec.columns and not spec.shape else None
    if rows is None:
        from align.data.formats import to_canonical
        from align.data.readers import read_records

        result = to_canonical(
            read_records(path),
            kind=kind,
            columns=spec.columns or None,
            shape=spec.shape,
            system_prompt=spec.system_prompt,
            task=spec.task or path.stem,
        )
        rows = result.rows
    elif spec.system_prompt:
        rows = [{**r, "prompt": [{"role": "system", "content": spec.system_prompt}, *r["prompt"]]} for r in rows]
    if not rows:
        raise UserError(f"no usable rows in {spec.path}", "check the file and the column mapping", spec.path)
    return rows


def load_split(
    specs: list[DatasetConfig], kind: str, tasks: list[str], seed: int, limits: dict[str, int] | None = None
) -> list[dict]:
    parts = [(load_dataset_rows(s, kind), s.weight) for s in specs]
    rows = mix(parts, seed)
    if tasks:
        rows = [r for r in rows if r.get("task") in tasks]
    return limit_per_task(rows, limits or {})


def limit_per_task(rows: list[dict], limits: dict[str, int]) -> list[dict]:
    """Keep the first N rows of each task named in `limits`; other tasks keep every row."""
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        task = row.get("task", "")
        seen[task] = seen.get(task, 0) + 1
        if task not in limits or seen[task] <= limits[task]:
            out.append(row)
    return out


def load_stage_data(cfg: DataConfig, kind: str, seed: int) -> tuple[list[dict], list[dict]]:
    """Train and eval rows for a stage; eval prompts never appear in train."""
    if not cfg.train:
        raise UserError("the recipe has no data.train", "add data.train: path/to/file.jsonl")
    ensure_bundled(cfg)
    train = load_split(cfg.train, kind, cfg.tasks, seed, cfg.limit_per_task)
    evals = load_split(cfg.eval, kind, cfg.tasks, seed) if cfg.eval else []
    if not evals and cfg.test_split_size:
        train, evals = split_rows(train, cfg.test_split_size, seed)
    leaked = {json.dumps(r["prompt"], sort_keys=True) for r in evals} & {
        json.dumps(r["prompt"], sort_keys=True) for r in train
    }
    if leaked:
        train = [r for r in train if json.dumps(r["prompt"], sort_keys=True) not in leaked]
    return train, evals


def check_phi(cfg: DataConfig, rows: list[dict], allow_phi: bool) -> None:
    """User data is scanned for likely PHI before training; the bundled synthetic data is project-written."""
    user_paths = [d.path for d in cfg.train + cfg.eval if not is_bundled(d.path)]
    if not user_paths:
        return
    from align.data.phi import require_no_phi

    require_no_phi(rows, allow_phi or cfg.allow_phi, ", ".join(user_paths))


PREFERENCE_KEYS = ("chosen", "rejected", "responses", "scores", "completions")


def guess_kind(path: str, kind: str, columns: dict[str, str] | None = None) -> str:
    """`auto` -> preference when the first row (or the column mapping) has preference fields, else sft."""
    if kind != "auto":
        return kind
    if columns and ("chosen" in columns or "rejected" in columns):
        return "preference"
    from align.data.readers import read_records

    first = next(iter(read_records(path)), None)
    keys = set(first.data) if first is not None else set()
    return "preference" if keys & set(PREFERENCE_KEYS) else "sft"
