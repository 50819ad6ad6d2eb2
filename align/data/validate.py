"""`align data validate`: read a whole dataset, convert it, and report what training would see.

It reads through `align.data.load.read_rows`, the reader every stage uses, so the rows counted here are the rows
trained on.

The report gives row counts, the detected shape, dropped rows by reason (empty fields, chosen identical to
rejected, ...), prompt+response lengths against max_length, exact duplicates, prompt overlap with an eval file
and a PHI scan. Problems (eval overlap, PHI without allow_phi) make `ok` false; the rest are warnings.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from align.data.formats import ANSWERS, ConvertResult, Kind, format_dropped, parse_columns_arg
from align.data.load import read_rows
from align.data.phi import PhiReport, scan_phi
from align.errors import UserError

WORDS_NOTE = "whitespace words; no tokenizer given, token counts are typically 1.3-2x higher"


@dataclass
class LengthStats:
    """Per-row length of prompt + response (for pairs, the longer of chosen and rejected)."""

    unit: str  # "tokens" or WORDS_NOTE
    lengths: list[int] = field(default_factory=list)
    max_length: int | None = None

    @property
    def truncated(self) -> int:
        return 0 if self.max_length is None else sum(n > self.max_length for n in self.lengths)

    def format(self) -> str:
        a = np.asarray(self.lengths, dtype=float)
        p50, p95 = np.percentile(a, [50, 95])
        text = f"length ({self.unit}): min {a.min():.0f}, mean {a.mean():.1f}, p50 {p50:.0f}, p95 {p95:.0f}, max {a.max():.0f}"
        if self.max_length is not None:
            text += f"\n  {self.truncated} rows longer than max_length {self.max_length} would be truncated"
        return text


@dataclass
class ValidationReport:
    path: str
    kind: str
    shape: str
    n_read: int
    n_rows: int
    dropped: dict[str, int]
    duplicates: int
    lengths: LengthStats
    phi: PhiReport
    allow_phi: bool = False
    eval_path: str | None = None
    eval_rows: int = 0
    overlap_prompts: int = 0  # unique prompts found in both train and eval
    overlap_eval_rows: int = 0  # eval rows whose prompt is also in train

    @property
    def problems(self) -> list[str]:
        out = []
        if self.overlap_prompts:
            out.append(
                f"{self.overlap_prompts} prompts appear in both train and eval ({self.overlap_eval_rows} eval rows)"
            )
        if not self.phi.clean and not self.allow_phi:
            out.append(f"possible PHI ({self.phi.summary()}); de-identify it, or set allow_phi: true if it already is")
        return out

    @property
    def warnings(self) -> list[str]:
        out = []
        if self.dropped:
            out.append(f"{sum(self.dropped.values())} rows dropped ({format_dropped(self.dropped)})")
        if self.duplicates:
            out.append(f"{self.duplicates} exact duplicate rows")
        if self.lengths.truncated:
            out.append(f"{self.lengths.truncated} rows exceed max_length {self.lengths.max_length}")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        lines = [
            f"{self.path}: {self.n_rows} {self.kind} rows (shape: {self.shape}) from {self.n_read} read",
            f"dropped: {format_dropped(self.dropped)}",
            f"exact duplicates: {self.duplicates}",
            self.lengths.format(),
        ]
        if self.eval_path is not None:
            lines.append(
                f"eval {self.eval_path}: {self.eval_rows} rows; {self.overlap_prompts} prompts also in train "
                f"({self.overlap_eval_rows} eval rows)"
            )
        lines.append(self.phi.format())
        lines += [f"warning: {w}" for w in self.warnings] + [f"problem: {p}" for p in self.problems]
        lines.append("OK" if self.ok else f"NOT OK: {len(self.problems)} problem(s)")
        return "\n".join(lines)


def validate_path(
    path: str | Path,
    kind: Kind,
    columns: dict[str, str] | str | None = None,
    shape: str | None = None,
    tokenizer: Any = None,
    max_length: int | None = None,
    eval_path: str | Path | None = None,
    system_prompt: str | None = None,
    allow_phi: bool = False,
    allow_network: bool = False,
) -> ValidationReport:
    """Read and convert everything at `path` (and `eval_path`); raises UserError on unreadable input."""
    mapping = parse_columns_arg(columns) if isinstance(columns, str) else columns
    if isinstance(tokenizer, str):
        from align.models import load_tokenizer

        tokenizer = load_tokenizer(tokenizer)

    def convert(p: str | Path) -> ConvertResult:
        return read_rows(p, kind, mapping, shape, system_prompt, allow_network=allow_network)

    train = convert(path)
    report = ValidationReport(
        path=str(path),
        kind=kind,
        shape=train.shape,
        n_read=train.n_read,
        n_rows=len(train.rows),
        dropped=train.dropped,
        duplicates=count_duplicates(train.rows, kind),
        lengths=measure_lengths(train.rows, kind, tokenizer, max_length),
        phi=scan_phi(train.rows),
        allow_phi=allow_phi,
    )
    if eval_path is not None:
        eval_rows = convert(eval_path).rows
        train_prompts = {_prompt_key(r) for r in train.rows}
        shared = [_prompt_key(r) in train_prompts for r in eval_rows]
        report.eval_path, report.eval_rows = str(eval_path), len(eval_rows)
        report.overlap_prompts = len({_prompt_key(r) for r, s in zip(eval_rows, shared, strict=True) if s})
        report.overlap_eval_rows = sum(shared)
    return report


def validate_command(
    path: str,
    kind: str,
    columns: str | None = None,
    shape: str | None = None,
    tokenizer: str | None = None,
    max_length: int | None = None,
    eval_path: str | None = None,
    allow_phi: bool = False,
    allow_network: bool = False,
) -> int:
    """CLI entry: print the report; exit code 0 if ok, 1 if it found problems, 2 on unreadable input."""
    try:
        report = validate_path(
            path, kind, columns, shape, tokenizer, max_length, eval_path, None, allow_phi, allow_network
        )  # type: ignore[arg-type]
    except UserError as e:
        print(str(e), file=sys.stderr)
        return 2
    print(report.format())
    return 0 if report.ok else 1


def count_duplicates(rows: list[dict[str, Any]], kind: Kind) -> int:
    """Rows identical (prompt and answers) to an earlier row."""
    keys = [json.dumps([r["prompt"], *(r[k] for k in ANSWERS[kind])], sort_keys=True) for r in rows]
    return len(keys) - len(set(keys))


def measure_lengths(rows: list[dict[str, Any]], kind: Kind, tokenizer: Any, max_length: int | None) -> LengthStats:
    """Length of prompt + each answer per row (tokens with a tokenizer's chat template, else whitespace words)."""
    stats = LengthStats("tokens" if tokenizer is not None else WORDS_NOTE, max_length=max_length)
    for row in rows:
        sizes = [_length(row["prompt"] + row[k], tokenizer) for k in ANSWERS[kind]]
        stats.lengths.append(max(sizes))
    return stats


def _length(messages: list[dict[str, str]], tokenizer: Any) -> int:
    if tokenizer is None:
        return sum(len(m["content"].split()) for m in messages)
    ids = tokenizer.apply_chat_template(messages, tokenize=True)
    if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding by default
        ids = ids["input_ids"]
    return len(ids)


def _prompt_key(row: dict[str, Any]) -> str:
    return json.dumps(row["prompt"], sort_keys=True)
