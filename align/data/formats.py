"""Any user dataset -> canonical rows (id, task, prompt, chosen, rejected | prompt, completion, meta).

`to_canonical` is the one conversion, run by the one reader (`align.data.load.read_rows`) that validate, inspect,
every stage and the report use, so they all see the same rows, checks and drops. The shapes it knows are listed in
`align/data/shapes.py`.

- The shape is detected per file from every row (each row's first matching shape, counted per shape). A file whose
  rows have different shapes fails with one line naming the first line of each, rather than converting each row by
  its own shape: a mixed file is nearly always two exports concatenated, or a column misspelt in some rows, and
  reading it anyway would hide which rows trained on what. A row that matches no shape is reported as missing the
  file's columns.
- Rows in align's own format (an `id`, a `task`, a list of `prompt` messages and the answers, no column mapping:
  what `align data build`, `data import` and `pairs generate` write) keep their `id`, `task`, `meta` and other keys
  exactly; only prompt and answers are checked and normalised. Other rows get `id` `<task>-<n>` and
  `meta["source"]` = `path:line` (`meta["location"]` when their meta already has a `source`, the summarization note).
- Every row is a `Row`, a dict that also knows the `path:line` it was read from (an attribute, not a key).
- A row's own non-empty `task` column wins; `task` is for rows without one.
- A `system` column, or the `system_prompt` argument, is prepended as a system message unless the prompt already
  starts with one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from align.data.readers import Record
from align.data.shapes import ANSWERS, CANONICAL_COLUMNS, SHAPES, DropRow, Kind, row_shape
from align.errors import UserError

OWN_FORMAT_SHAPES = ("explicit", "prompt_completion", "chosen_as_completion")  # the shapes align's own rows have


class Row(dict):
    """A canonical row: a plain dict to every consumer, plus `source`, the `path:line` it was read from.

    The location is an attribute, not a key, so it reaches neither the model's data nor a data fingerprint; mixing,
    filtering and splitting keep the row objects, so the PHI scan before training can still name the line.
    """

    def __init__(self, data: dict[str, Any], source: str) -> None:
        super().__init__(data)
        self.source = source


@dataclass
class ConvertResult:
    rows: list[dict[str, Any]]
    shape: str
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count, e.g. {"chosen_equals_rejected": 2}
    n_read: int = 0
    shape_counts: dict[str, int] = field(default_factory=dict)  # rows per detected shape (one shape per file)


def to_canonical(
    records: Iterable[Record],
    kind: Kind,
    columns: dict[str, str] | None = None,
    shape: str | None = None,
    system_prompt: str | None = None,
    task: str = "custom",
    min_score_margin: float = 0.0,
) -> ConvertResult:
    """Convert raw records into canonical `Row`s; unusable rows are counted in `dropped`, bad input raises UserError."""
    _check_kind_and_shape(kind, shape)
    mapping = _check_mapping(columns or {})
    located = [(rec, _apply_mapping(rec, mapping)) for rec in records]
    if not located:
        return ConvertResult([], shape or "")
    if shape is None:
        shape, counts = detect_shape(located, kind)
    else:
        counts = {shape: len(located)}
    result, dropped, spec = ConvertResult([], shape, {}, len(located), counts), Counter[str](), SHAPES[shape]
    own_format = not mapping and shape in OWN_FORMAT_SHAPES
    for rec, row in located:
        missing = [c for c in spec.columns if c not in row]
        if missing:
            raise _missing_column(rec, missing[0], mapping, f"shape '{shape}' needs it")
        try:
            parts = spec.convert(row, rec, min_score_margin)
            n = len(result.rows)
            result.rows.append(_finish(parts, row, rec, kind, task, system_prompt, n, own_format, mapping.values()))
        except DropRow as drop:
            dropped[drop.reason] += 1
    result.dropped = dict(dropped)
    if not result.rows:
        raise UserError(
            f"no usable rows: all {result.n_read} were dropped ({format_dropped(result.dropped)})",
            "fix the data (e.g. chosen must differ from rejected) or check the column mapping",
            path=located[-1][0].path,
        )
    return result


def format_dropped(dropped: dict[str, int]) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(dropped.items())) or "none"


def detect_shape(located: list[tuple[Record, dict[str, Any]]], kind: Kind) -> tuple[str, dict[str, int]]:
    """The one shape of `kind` the file's rows have, and the count of rows per shape; mixed shapes raise.

    Rows that match no shape are not counted (they fail later, as missing a column of the file's shape); if none
    matches, the first row's columns are reported with the shapes expected.
    """
    counts: Counter[str] = Counter()
    first: dict[str, Record] = {}
    for rec, row in located:
        name = row_shape(row, kind)
        if name is not None:
            counts[name] += 1
            first.setdefault(name, rec)
    if not counts:
        rec = located[0][0]
        expected = "; ".join(f"{n} ({', '.join(s.columns)})" for n, s in SHAPES.items() if s.kind == kind)
        raise rec.error(
            f"cannot tell the {kind} data shape from columns {_column_list(rec)}; expected one of: {expected}",
            "map your columns, e.g. --columns prompt=question,chosen=good_answer,rejected=bad_answer",
        )
    if len(counts) > 1:
        each = ", ".join(
            f"{n} ({', '.join(SHAPES[n].columns)}) {counts[n]} row{'s' * (counts[n] != 1)} from {_where(rec)}"
            for n, rec in first.items()
        )
        raise list(first.values())[1].error(
            f"rows of different shapes in one file: {each}",
            "give every row the same columns, or split the file into one file per shape",
        )
    return next(iter(counts)), dict(counts)


def _where(rec: Record) -> str:
    return f"line {rec.line}" if rec.line is not None else str(rec.item)


def _check_kind_and_shape(kind: str, shape: str | None) -> None:
    if kind not in ANSWERS:
        raise UserError(f"unknown data kind '{kind}'", f"use one of {', '.join(ANSWERS)}")
    valid = [n for n, s in SHAPES.items() if s.kind == kind]
    if shape is not None and shape not in valid:
        raise UserError(f"unknown {kind} shape '{shape}'", f"use one of {', '.join(valid)} (or omit it to detect)")


def _check_mapping(columns: dict[str, str]) -> dict[str, str]:
    for canonical, user in columns.items():
        if canonical not in CANONICAL_COLUMNS:
            raise UserError(f"cannot map column '{canonical}'", f"map one of {', '.join(CANONICAL_COLUMNS)}")
        if not isinstance(user, str) or not user:
            raise UserError(f"column mapping for '{canonical}' must name a column, got {user!r}")
    return columns


def _apply_mapping(rec: Record, mapping: dict[str, str]) -> dict[str, Any]:
    row = dict(rec.data)
    for canonical, user in mapping.items():
        if user not in rec.data:
            raise _missing_column(rec, canonical, mapping, "it is in the column mapping")
        row[canonical] = rec.data[user]
    return row


def _missing_column(rec: Record, canonical: str, mapping: dict[str, str], why: str) -> UserError:
    name = mapping.get(canonical, canonical)
    label = f"'{name}' (mapped to '{canonical}')" if name != canonical else f"'{name}'"
    return rec.error(
        f"missing column {label}, {why}; the columns are {_column_list(rec)}",
        "fix the column mapping (--columns canonical=yours) or the file",
    )


def _column_list(rec: Record) -> str:
    return ", ".join(rec.data) or "(none)"


def _finish(
    parts: dict[str, Any],
    row: dict[str, Any],
    rec: Record,
    kind: Kind,
    task: str,
    system: str | None,
    n: int,
    own_format: bool,
    mapped: Iterable[str] = (),
) -> Row:
    prompt, answers = parts["prompt"], {k: parts[k] for k in ANSWERS[kind]}
    if not any(m["content"].strip() for m in prompt if m["role"] != "system"):
        raise DropRow("empty_field")
    if any(not a[0]["content"].strip() for a in answers.values()):
        raise DropRow("empty_field")
    if kind == "preference" and answers["chosen"][0]["content"].strip() == answers["rejected"][0]["content"].strip():
        raise DropRow("chosen_equals_rejected")
    system = system or (row["system"] if isinstance(row.get("system"), str) and row["system"].strip() else None)
    if system and prompt[0]["role"] != "system":
        prompt = [{"role": "system", "content": system}, *prompt]
    own_task = row.get("task") if isinstance(row.get("task"), str) and row.get("task") else None
    if own_format and own_task and "id" in row and isinstance(row.get("prompt"), list):
        consumed = {"chosen", "rejected", "completion", "system"} - set(answers)
        kept = {k: v for k, v in row.items() if k not in consumed}  # id, task, meta and extra keys as written
        return Row({**kept, "prompt": prompt, **answers} | ({} if "meta" in row else {"meta": {}}), rec.source)
    row_task = own_task or task
    # the file's other columns (a gold label, options, facts...) go into meta, where a declared task finds them
    consumed = set(mapped) | set(CANONICAL_COLUMNS) | {"id"}
    extra = {k: v for k, v in rec.data.items() if k not in consumed}
    meta = {**extra, **(row["meta"] if isinstance(row.get("meta"), dict) else {}), **parts.get("meta", {})}
    meta["location" if "source" in meta else "source"] = rec.source
    return Row({"id": f"{row_task}-{n}", "task": row_task, "prompt": prompt, **answers, "meta": meta}, rec.source)


def parse_columns_arg(text: str) -> dict[str, str]:
    """`"prompt=question,chosen=good_answer"` -> {"prompt": "question", "chosen": "good_answer"} (the CLI form)."""
    mapping: dict[str, str] = {}
    for pair in text.split(","):
        canonical, sep, user = (s.strip() for s in pair.partition("="))
        if not sep or not canonical or not user:
            raise UserError(
                f"bad column mapping '{pair.strip()}' in --columns", "write canonical=yours, e.g. prompt=question"
            )
        if canonical in mapping:
            raise UserError(f"column '{canonical}' is mapped twice in --columns", "map each canonical column once")
        mapping[canonical] = user
    return _check_mapping(mapping)
