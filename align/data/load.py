"""A recipe's `data` section -> canonical train/eval rows: bundled data built on demand, every file read one way.

`read_rows` is the one reading path (records -> canonical rows, with the same checks and drop rules) behind
validate, inspect, every stage and the report; `load_rows` reads one dataset entry of a recipe through it.
"""

from __future__ import annotations

import json
from pathlib import Path

from align.config import DataConfig, DatasetConfig
from align.data.formats import ConvertResult, Kind, to_canonical
from align.data.mixing import mix, split_rows
from align.data.readers import read_records
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


def read_rows(
    path: str | Path,
    kind: Kind,
    columns: dict[str, str] | None = None,
    shape: str | None = None,
    system_prompt: str | None = None,
    task: str | None = None,
    allow_network: bool = False,
) -> ConvertResult:
    """The one reading path: a file, saved dataset or Hub id -> canonical rows, with every check and drop rule.

    `align data validate`, `align data inspect`, every training stage and the report all read through here (the
    last three via `load_rows`), so a file that validates is the file that trains. Rows without their own `task`
    get `task` (default: the file's stem). Raises UserError, one located line, on anything unreadable.
    """
    records = read_records(path, allow_network=allow_network)
    return to_canonical(records, kind, columns or None, shape, system_prompt, task or Path(path).stem)


def load_rows(spec: DatasetConfig, kind: Kind, allow_network: bool = False) -> list[dict]:
    """The canonical rows of one `data.train` / `data.eval` / `report.test_data` entry, for `kind` sft|preference.

    Rows align wrote itself keep their id, task and meta exactly (the report grades against meta); each row is a
    `Row` that knows its `path:line`, for the PHI scan. `allow_network` (the recipe's `model.allow_network`) lets a
    Hub dataset id be downloaded.
    """
    path = Path(spec.path)
    looks_like_hub_id = spec.path.count("/") == 1 and not path.suffix
    if not path.exists() and not looks_like_hub_id:
        raise UserError(
            "dataset not found",
            "check the path in the recipe (a relative path starts at the current directory)",
            spec.path,
        )
    result = read_rows(path, kind, spec.columns, spec.shape, spec.system_prompt, spec.task, allow_network)
    return result.rows


def load_split(
    specs: list[DatasetConfig],
    kind: str,
    tasks: list[str],
    seed: int,
    limits: dict[str, int] | None = None,
    allow_network: bool = False,
) -> list[dict]:
    """The rows of several entries mixed by weight, kept to `tasks` (all when empty), cut by `limits` per task."""
    parts = [(load_rows(s, kind, allow_network), s.weight) for s in specs]
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


def load_stage_data(
    cfg: DataConfig, kind: str, seed: int, allow_network: bool = False
) -> tuple[list[dict], list[dict]]:
    """Train and eval rows for a stage; eval prompts never appear in train."""
    if not cfg.train:
        raise UserError("the recipe has no data.train", "add data.train: path/to/file.jsonl")
    ensure_bundled(cfg)
    train = load_split(cfg.train, kind, cfg.tasks, seed, cfg.limit_per_task, allow_network)
    evals = load_split(cfg.eval, kind, cfg.tasks, seed, allow_network=allow_network) if cfg.eval else []
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
    first = next(iter(read_records(path)), None)
    keys = set(first.data) if first is not None else set()
    return "preference" if keys & set(PREFERENCE_KEYS) else "sft"
