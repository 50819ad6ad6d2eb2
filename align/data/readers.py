"""Read user datasets (JSONL, JSON, CSV/TSV, Parquet, `save_to_disk` dirs, Hub ids) into located raw records.

Every record remembers where it came from (`path:line`, or `path: row N` for columnar data) so that later errors
can point at the exact line. Bad input raises `UserError` with the path and line, never a traceback: bytes that are
not UTF-8, malformed JSON, JSON nested more than `MAX_DEPTH` levels (a row needs a few; deeper is a broken export,
and would overflow the parser's recursion), lone UTF-16 surrogates (`"\\ud800"` decodes to a str that cannot be
written or tokenized), fields over `max_field_bytes`.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from align.errors import UserError

MAX_FIELD_BYTES = 1_000_000  # default per-field limit; a bigger field is almost always a broken export
MAX_DEPTH = 100  # JSON nesting levels per row; conversations nest 3 or 4
_DEEP = (
    f"JSON nested more than {MAX_DEPTH} levels deep",
    "a data row nests a few levels at most, so the export is broken; fix or remove the row",
)
_ICONV_FIX = "the file must be UTF-8: re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`"
_NETWORK_FIX = "set model.allow_network: true in the recipe to download it, or give the path of a local file"
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


@dataclass(frozen=True)
class Record:
    """One raw input row plus where it came from.

    `line` is the 1-based physical line where the row starts (JSONL, CSV, JSON); `item` is a 0-based index label
    ("item 3" for a JSON array element, "row 3" for Parquet / saved datasets / the Hub) so `data[3]` finds it.
    """

    data: dict[str, Any]
    path: str
    line: int | None = None
    item: str | None = None

    @property
    def source(self) -> str:
        """`path:line` when the line is known, else `path:row N`."""
        return f"{self.path}:{self.line}" if self.line is not None else f"{self.path}:{self.item}"

    def error(self, what: str, fix: str = "") -> UserError:
        """A UserError pointing at this record (the caller raises it)."""
        return UserError(f"{self.item}: {what}" if self.item else what, fix, path=self.path, line=self.line)


def read_records(
    path: str | Path, split: str | None = None, allow_network: bool = False, max_field_bytes: int = MAX_FIELD_BYTES
) -> Iterator[Record]:
    """Yield the records of a local file, a `save_to_disk` directory, or (with `allow_network`) a Hub dataset id."""
    p = Path(path)
    if p.is_dir():
        records = _read_saved_dataset(p, split)
    elif p.is_file():
        reader = READERS.get(_suffix(p))
        if reader is None:
            raise UserError(
                f"unsupported file type '{p.suffix}'", f"use one of {', '.join(sorted(READERS))}", path=str(p)
            )
        records = reader(p)
    else:
        records = _read_hub(str(path), split, allow_network)
    count = 0
    for rec in records:
        _check_values(rec)
        _check_sizes(rec, max_field_bytes)
        count += 1
        yield rec
    if count == 0:
        raise UserError("file is empty (no data rows)", "check the export; it must hold at least one row", path=str(p))


def _suffix(p: Path) -> str:
    return p.suffix.lower()


def _check_values(rec: Record) -> None:
    """Every row, whatever its format: nesting within MAX_DEPTH, and no lone surrogate in any string."""
    for column, value in rec.data.items():
        stack: list[tuple[Any, int]] = [(column, 1), (value, 1)]
        while stack:  # iterative: the depth we check is the depth a recursive walk would overflow on
            item, depth = stack.pop()
            if isinstance(item, str):
                _check_text(item, column, rec)
            elif isinstance(item, (dict, list)):
                if depth > MAX_DEPTH:
                    raise rec.error(*_DEEP)
                children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)


def _check_text(text: str, column: str, rec: Record) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        name = column.encode("utf-8", "backslashreplace").decode("utf-8")
        raise rec.error(
            f"column '{name}' holds a lone surrogate \\u{ord(text[e.start]):04x} (half of a UTF-16 pair, not a character)",
            "fix the export so it writes whole characters (UTF-8), or remove the row",
        ) from None


def _loads(text: str, path: Path, line: int) -> Any:
    """json.loads that turns the parser's recursion overflow into a located UserError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise UserError(*_DEEP, str(path), line) from None


def _check_sizes(rec: Record, limit: int) -> None:
    for column, value in rec.data.items():
        size = _size_bytes(value, limit)
        if size > limit:
            raise rec.error(
                f"column '{column}' is {size / 1e6:.1f} MB, over the {limit / 1e6:g} MB per-field limit",
                "check the export (a broken quote can swallow the rest of a file) or raise max_field_bytes",
            )


def _size_bytes(value: Any, limit: int) -> int:
    if isinstance(value, (int, float, bool)) or value is None:
        return 0
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    # UTF-8 takes 1..4 bytes per character: only encode when the character count alone cannot decide.
    if len(text) > limit or 4 * len(text) <= limit:
        return len(text)
    return len(text.encode("utf-8"))


def _decoded_lines(p: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) for each physical line, keeping line endings; non-UTF-8 bytes name their line."""
    with p.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise UserError(
                    f"byte 0x{raw[e.start]:02x} is not valid UTF-8", _ICONV_FIX, path=str(p), line=n
                ) from None
            yield n, text.removeprefix("\ufeff") if n == 1 else text


def _read_jsonl(p: Path) -> Iterator[Record]:
    for n, text in _decoded_lines(p):
        if not text.strip():
            continue
        try:
            obj = _loads(text.rstrip("\r\n"), p, n)
        except json.JSONDecodeError as e:
            raise UserError(
                f"malformed JSON ({e.msg} at column {e.colno})",
                "each line must be one complete JSON object",
                path=str(p),
                line=n,
            ) from None
        yield Record(_as_object(obj, str(p), n, None), str(p), n)


def _as_object(obj: Any, path: str, line: int | None, item: str | None) -> dict[str, Any]:
    if not isinstance(obj, dict):
        where = f"{item}: " if item else ""
        raise UserError(f"{where}expected a JSON object, got {type(obj).__name__}", "one row = one {...}", path, line)
    return obj


def _read_json(p: Path) -> Iterator[Record]:
    """A JSON array of objects (each reported as `item N` at its line), an object holding one such array, or JSONL."""
    text = "".join(t for _, t in _decoded_lines(p))
    start = len(text) - len(text.lstrip())
    if not text.strip():
        return
    if text[start] != "[":
        line = text.count("\n", 0, start) + 1
        try:
            obj = _loads(text, p, line)
        except json.JSONDecodeError as e:
            if e.msg == "Extra data":  # several objects, one per line: it is JSONL with a .json name
                yield from _read_jsonl(p)
                return
            raise UserError(f"malformed JSON ({e.msg})", "fix the JSON syntax", path=str(p), line=e.lineno) from None
        if isinstance(obj, dict):  # checked whole, before one of its arrays is taken as the rows
            _check_values(Record(obj, str(p), line))
        arrays = [v for v in obj.values() if isinstance(v, list)] if isinstance(obj, dict) else []
        if len(arrays) != 1:
            yield Record(_as_object(obj, str(p), 1, None), str(p), 1)
            return
        for i, row in enumerate(arrays[0]):
            yield Record(_as_object(row, str(p), None, f"item {i}"), str(p), None, f"item {i}")
        return
    yield from _json_array_items(p, text, start + 1)


def _json_array_items(p: Path, text: str, pos: int) -> Iterator[Record]:
    decoder, ws = json.JSONDecoder(), re.compile(r"\s*")
    for i in itertools.count():
        pos = ws.match(text, pos).end()
        if text.startswith("]", pos):
            return
        line = text.count("\n", 0, pos) + 1
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise UserError(f"item {i}: malformed JSON ({e.msg})", "fix the JSON syntax", str(p), e.lineno) from None
        except RecursionError:
            raise UserError(f"item {i}: {_DEEP[0]}", _DEEP[1], str(p), line) from None
        yield Record(_as_object(obj, str(p), line, f"item {i}"), str(p), line, f"item {i}")
        pos = ws.match(text, pos).end()
        if text.startswith(",", pos):
            pos += 1
        elif not text.startswith("]", pos):
            line = text.count("\n", 0, pos) + 1
            raise UserError(f"malformed JSON array after item {i}", "separate items with ','", str(p), line)


def _read_csv(p: Path) -> Iterator[Record]:
    """CSV (or TSV by extension); row lines count the header as line 1 and quoted multi-line fields as their lines."""
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # our own per-field check gives the better message
    lines = (text for _, text in _decoded_lines(p))
    reader = csv.reader(lines, delimiter="\t" if _suffix(p) == ".tsv" else ",")
    header: list[str] | None = None
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise UserError(f"unreadable CSV ({e})", "check the quoting of this row", str(p), reader.line_num) from None
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [h.strip() for h in row]
            continue
        if len(row) != len(header):
            raise UserError(
                f"row has {len(row)} fields but the header has {len(header)}",
                'quote fields that contain commas or newlines ("...")',
                path=str(p),
                line=start,
            )
        yield Record(dict(zip(header, row, strict=True)), str(p), start)


def _read_parquet(p: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq  # imported lazily: only Parquet users pay for it

    try:
        batches = pq.ParquetFile(p).iter_batches(batch_size=1024)
        yield from _rows(p, (row for batch in batches for row in batch.to_pylist()))
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid subclasses ValueError
        raise UserError(
            f"not a readable Parquet file ({e})", "re-export it with pyarrow or pandas", path=str(p)
        ) from None


def _rows(p: Path | str, rows: Iterable[dict[str, Any]]) -> Iterator[Record]:
    for i, row in enumerate(rows):
        yield Record(dict(row), str(p), None, f"row {i}")


def _read_saved_dataset(p: Path, split: str | None) -> Iterator[Record]:
    if not any(
        (q / name).exists()
        for q in (p, *p.iterdir())
        for name in ("dataset_info.json", "state.json", "dataset_dict.json")
    ):
        raise UserError(
            "directory is not a dataset saved with `Dataset.save_to_disk`",
            "pass a .jsonl/.json/.csv/.parquet file or a save_to_disk directory",
            path=str(p),
        )
    import datasets  # lazy: importing datasets is slow

    try:
        ds = datasets.load_from_disk(str(p))
    except Exception as e:  # datasets raises FileNotFoundError, ValueError, ArrowInvalid... for a damaged save
        raise UserError(f"cannot load the saved dataset ({type(e).__name__}: {e})", "re-save it", path=str(p)) from None
    if isinstance(ds, datasets.DatasetDict):
        ds = ds[_pick_split(list(ds.keys()), split, str(p))]
    yield from _rows(p, ds)


def _pick_split(splits: list[str], split: str | None, where: str) -> str:
    if split is None and len(splits) == 1:
        return splits[0]
    chosen = split or "train"
    if chosen not in splits:
        raise UserError(f"no split '{chosen}' (splits: {', '.join(splits)})", "name one with split=...", path=where)
    return chosen


def _read_hub(name: str, split: str | None, allow_network: bool) -> Iterator[Record]:
    if not _HUB_ID.match(name) or Path(name).suffix.lower() in READERS:
        raise UserError("file not found", "check the path (relative paths start at the current directory)", path=name)
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise UserError(
            "not a local file, and the Hugging Face Hub is offline (HF_HUB_OFFLINE=1)",
            f"unset HF_HUB_OFFLINE and {_NETWORK_FIX}",
            path=name,
        )
    if not allow_network:
        raise UserError(
            "not a local file; reading it as a Hugging Face Hub dataset needs network access", _NETWORK_FIX, path=name
        )
    import datasets

    try:
        ds = datasets.load_dataset(name, split=split or "train")
    except Exception as e:  # the Hub raises many types (connection, 404, gated); all mean "cannot read this id"
        raise UserError(
            f"could not load Hub dataset ({type(e).__name__}: {e})", "check the id and split", name
        ) from None
    yield from _rows(name, ds)


READERS = {".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv, ".tsv": _read_csv, ".parquet": _read_parquet}
