"""Write the bundled clinical data (data/clinical/*.jsonl + manifest.json) and print statistics about a data folder.

Besides the six task files it writes the domain corpus `notes_{train,test}.jsonl` (see `align/data/tasks/notes.py`).

`python -m align.data.build data/clinical` regenerates the bundled files with the defaults; the same seed always
gives the same bytes (sorted keys, fixed separators, tasks in `TASKS` order).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

from align import runinfo
from align.data.tasks import DEFAULT_SIZES, ERROR_TYPES, TASKS, notes
from align.data.tasks.common import SPLITS
from align.errors import UserError

KINDS: tuple[str, ...] = ("sft", "pref")
FILES: tuple[str, ...] = tuple(f"{kind}_{split}.jsonl" for kind in KINDS for split in SPLITS)


def dumps(row: dict) -> str:
    """One JSONL line: sorted keys and fixed separators so equal rows are equal bytes."""
    return json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def _check_mix(error_mix: dict | None) -> None:
    known = sorted({e for types in ERROR_TYPES.values() for e in types})
    for key, value in (error_mix or {}).items():
        if key not in known:
            raise UserError(f"unknown error type {key!r} in error_mix", f"use one of {', '.join(known)}")
        if not isinstance(value, int | float) or value < 0:
            raise UserError(f"error_mix[{key!r}] = {value!r} is not a non-negative number", "give a weight >= 0")


def parse_error_mix(text: str) -> dict[str, float]:
    """`under_triage=0.6,over_triage=0.2` -> {"under_triage": 0.6, "over_triage": 0.2}, checked like a recipe's mix."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        try:
            mix[key.strip()] = float(value)
        except ValueError:
            raise UserError(
                f"--error-mix: {part!r} is not TYPE=WEIGHT", "write e.g. under_triage=0.6,over_triage=0.2"
            ) from None
    _check_mix(mix)
    return mix


def build_rows(seed: int = 0, scale: float = 1.0, error_mix: dict | None = None) -> dict[str, list[dict]]:
    """{file name: rows} for the six bundled files; `scale` multiplies train sizes only."""
    if scale <= 0:
        raise UserError(f"scale must be positive, got {scale}", "use e.g. scale: 1.0")
    _check_mix(error_mix)
    out: dict[str, list[dict]] = {name: [] for name in FILES}
    for task, builder in TASKS.items():
        sizes = dict(DEFAULT_SIZES[task])
        sizes["train"] = max(1, round(sizes["train"] * scale))
        try:
            rows = builder(sizes, seed, error_mix)
        except RuntimeError as err:  # the generator ran out of distinct items
            raise UserError(f"task {task}: {err}", "use a smaller scale") from err
        for split in SPLITS:
            for kind in KINDS:
                out[f"{kind}_{split}.jsonl"].extend(rows[split][kind])
    return out


def build_notes(files: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """{notes file name: documents}: the clinical text of each split's SFT rows (train and test only)."""
    return {f"notes_{split}.jsonl": notes.note_rows(files[f"sft_{split}.jsonl"]) for split in notes.SPLITS}


def build_bundled(out_dir: Path, seed: int = 0, scale: float = 1.0, error_mix: dict | None = None) -> dict:
    """Write the six task files, the two notes files and manifest.json into out_dir atomically; return the manifest."""
    out_dir = Path(out_dir)
    files = build_rows(seed, scale, error_mix)
    files.update(build_notes(files))
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict = defaultdict(lambda: defaultdict(dict))
    manifest: dict = {"seed": seed, "scale": scale, "error_mix": error_mix, "files": {}}
    tmp_paths = []
    for name, rows in files.items():
        data = "".join(dumps(r) + "\n" for r in rows).encode("utf-8")
        tmp = out_dir / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp_paths.append((tmp, out_dir / name))
        manifest["files"][name] = {"rows": len(rows), "sha256": hashlib.sha256(data).hexdigest()}
        if name not in FILES:
            continue  # the notes are counted in "files"; "counts" is per task
        kind, split = name.removesuffix(".jsonl").split("_")
        for task, n in sorted(Counter(r["task"] for r in rows).items()):
            counts[split][task][kind] = n
    manifest["counts"] = {s: {t: dict(k) for t, k in sorted(tasks.items())} for s, tasks in sorted(counts.items())}
    # rename only after every file is fully written, so a failure never leaves a half-new data set
    for tmp, final in tmp_paths:
        os.replace(tmp, final)
    tmp = out_dir / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / "manifest.json")
    return manifest


def _answer(row: dict) -> list[dict]:
    return row.get("completion") or row.get("chosen") or []


def _length(messages: list[dict], tokenizer) -> int:
    if tokenizer is None:
        return sum(len(m["content"].split()) for m in messages)
    if getattr(tokenizer, "chat_template", None):
        from align.data.collate import render_prompt

        if messages[-1]["role"] == "assistant":
            from align.data.collate import render

            prompt_ids, answer_ids = render(tokenizer, messages[:-1], messages[-1:])
            return len(prompt_ids) + len(answer_ids)
        return len(render_prompt(tokenizer, messages))
    return len(tokenizer("\n".join(m["content"] for m in messages))["input_ids"])


def _labels(row: dict) -> list[tuple[str, str]]:
    """(name, value) pairs to count: ESI level, route, answer letter, error type."""
    meta, task = row.get("meta", {}), row["task"]
    picked = [
        (f"{task}:{n}", str(meta[k]))
        for n, k in (("esi", "esi"), ("route", "label"), ("answer", "answer"))
        if k in meta
    ]
    if "error_type" in meta:
        picked.append((f"{task}:error_type", meta["error_type"]))
    return picked


def dataset_stats(data_dir: Path, tokenizer=None) -> str:
    """Printable table: rows per split x task x kind, label distributions, and token lengths (whitespace tokens when
    tokenizer is None, else tokenizer lengths of the chat-rendered prompt and prompt + answer)."""
    data_dir = Path(data_dir)
    counts: Counter = Counter()
    labels: dict[str, Counter] = defaultdict(Counter)
    lengths: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for name in FILES:
        path = data_dir / name
        if not path.exists():
            raise UserError(f"missing {name}", "run `python -m align.data.build DIR` to create it", str(data_dir))
        kind, split = name.removesuffix(".jsonl").split("_")
        for row in runinfo.read_jsonl(path):
            counts[(split, row["task"], kind)] += 1
            for label, value in _labels(row):
                labels[f"{label} ({kind})"][value] += 1
            p = _length(row["prompt"], tokenizer)
            lengths[(row["task"], kind)].append((p, _length(row["prompt"] + _answer(row), tokenizer)))
    return "\n".join(_count_table(counts) + [""] + _label_lines(labels) + [""] + _length_table(lengths, tokenizer))


def _count_table(counts: Counter) -> list[str]:
    tasks = sorted({t for _, t, _ in counts})
    lines = [f"{'split':<6} {'task':<18} {'sft':>6} {'pref':>6}"]
    for split in SPLITS:
        for task in tasks:
            lines.append(f"{split:<6} {task:<18} {counts[(split, task, 'sft')]:>6} {counts[(split, task, 'pref')]:>6}")
    return lines


def _label_lines(labels: dict[str, Counter]) -> list[str]:
    lines = ["label distributions (all splits)"]
    for name in sorted(labels):
        dist = ", ".join(f"{k}: {v}" for k, v in sorted(labels[name].items()))
        lines.append(f"  {name}: {dist}")
    return lines


def _length_table(lengths: dict, tokenizer) -> list[str]:
    unit = "whitespace tokens" if tokenizer is None else "tokenizer tokens"
    lines = [f"lengths in {unit} (min / mean / max)", f"{'task':<18} {'kind':<5} {'prompt':>18} {'prompt+answer':>18}"]
    for (task, kind), pairs in sorted(lengths.items()):
        cols = []
        for values in zip(*pairs, strict=True):
            cols.append(f"{min(values)} / {sum(values) / len(values):.0f} / {max(values)}")
        lines.append(f"{task:<18} {kind:<5} {cols[0]:>18} {cols[1]:>18}")
    return lines


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "data/clinical")
    try:
        result = build_bundled(target)
    except UserError as err:
        print(err, file=sys.stderr)
        sys.exit(2)
    print(dataset_stats(target))
    print(f"wrote {sum(f['rows'] for f in result['files'].values())} rows to {target}")
