"""Domain corpora for `align domain`: text files, a directory of them, or rows with a `text` column -> documents.

A `.txt` file is one document; a directory means every `.txt` file under it (sorted, one document each); JSONL,
JSON, CSV and Parquet files (and `save_to_disk` directories) hold one document per row in the `text` column, or in
the column the recipe maps with `columns: {text: mycol}`. Documents are `{"id", "text", "task"}`: `task` is the
dataset's `task` name or the file's stem, so `data.limit_per_task` and `data.tasks` work as for other stages.
Without `data.train` the domain stage reads the bundled notes, and without `data.eval` (or `test_split_size`) it
measures perplexity on the bundled held-out notes.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from align.config import DataConfig, DatasetConfig
from align.errors import UserError

TEXT = "text"
DEFAULT_TRAIN = "data/clinical/notes_train.jsonl"
DEFAULT_EVAL = "data/clinical/notes_test.jsonl"
SAVED_DATASET_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")


def with_default_corpus(cfg: DataConfig) -> DataConfig:
    """The data section with the bundled notes filled in where the recipe gives no corpus."""
    train = cfg.train or [DatasetConfig(path=DEFAULT_TRAIN)]
    evals = cfg.eval or ([] if cfg.test_split_size else [DatasetConfig(path=DEFAULT_EVAL)])
    return dataclasses.replace(cfg, train=train, eval=evals)


def read_corpus(spec: DatasetConfig) -> list[dict]:
    """The documents of one dataset entry, in file order."""
    _check_spec(spec)
    path = Path(spec.path)
    if not path.exists():
        raise UserError("corpus not found", "check data.train / data.eval paths in the recipe", spec.path)
    task = spec.task or path.stem
    if path.suffix.lower() == ".txt" and path.is_file():
        return [_read_txt(path, task)]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if files:
            return [_read_txt(p, task) for p in files]
        if not any((path / name).exists() for name in SAVED_DATASET_FILES):
            raise UserError(
                "no .txt files in this directory",
                "put one document per .txt file in it, or pass a .jsonl/.csv file with a 'text' column",
                path=str(path),
            )
    return _read_rows(spec, task)


def _check_spec(spec: DatasetConfig) -> None:
    if spec.kind not in ("auto", TEXT):
        raise UserError(
            f"dataset kind {spec.kind!r} in a domain recipe", "a domain corpus is kind: text (or auto)", spec.path
        )
    unknown = sorted(set(spec.columns) - {TEXT})
    if unknown:
        raise UserError(
            f"columns maps {', '.join(map(repr, unknown))}, but a text corpus has only 'text'",
            "write columns: {text: your_column}",
            spec.path,
        )


def _read_txt(path: Path, task: str) -> dict:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise UserError(
            f"byte 0x{data[err.start]:02x} is not valid UTF-8",
            "re-save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 in.txt > out.txt`",
            str(path),
            line,
        ) from None
    if not text.strip():
        raise UserError("the document is empty", "remove the file or add its text", str(path))
    return {"id": str(path), "text": text.strip(), "task": task}


def _read_rows(spec: DatasetConfig, task: str) -> list[dict]:
    from align.data.readers import read_records

    column = spec.columns.get(TEXT, TEXT)
    docs = []
    for rec in read_records(spec.path):
        if column not in rec.data:
            found = ", ".join(rec.data) or "none"
            raise rec.error(
                f"no '{column}' column (columns here: {found})",
                "give every row one, or map yours in the recipe with columns: {text: your_column}",
            )
        value = rec.data[column]
        if not isinstance(value, str):
            raise rec.error(f"'{column}' is {type(value).__name__}, not text", "each document must be a string")
        if not value.strip():
            raise rec.error(f"'{column}' is empty", "remove the row or fill in its text")
        row_id = rec.data.get("id")
        docs.append({"id": str(row_id) if row_id is not None else rec.source, "text": value, "task": task})
    return docs


def load_corpus(cfg: DataConfig, seed: int) -> tuple[list[dict], list[dict]]:
    """Train and held-out documents for the domain stage; a held-out text is never trained on."""
    from align.data.load import ensure_bundled, limit_per_task
    from align.data.mixing import mix

    ensure_bundled(cfg)
    train = limit_per_task(_select(mix([(read_corpus(s), s.weight) for s in cfg.train], seed), cfg), cfg.limit_per_task)
    evals = _select([d for s in cfg.eval for d in read_corpus(s)], cfg)
    if not evals and cfg.test_split_size:
        train, evals = split_documents(train, cfg.test_split_size, seed)
    if not evals:
        raise UserError(
            "the domain stage needs held-out documents for its perplexity",
            "set data.eval (e.g. data/clinical/notes_test.jsonl) or data.test_split_size",
        )
    held = {d["text"] for d in evals}
    train = [d for d in train if d["text"] not in held]
    if not train:
        raise UserError("no training document is left after removing the held-out ones", "check data.train/eval")
    return train, evals


def _select(docs: list[dict], cfg: DataConfig) -> list[dict]:
    return [d for d in docs if d["task"] in cfg.tasks] if cfg.tasks else docs


def split_documents(docs: list[dict], size: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out `size` (a fraction, or a count when >= 1) of the distinct texts."""
    texts = sorted({d["text"] for d in docs})
    random.Random(seed).shuffle(texts)
    n_eval = int(size) if size >= 1 else max(1, round(size * len(texts)))
    held = set(texts[:n_eval])
    return [d for d in docs if d["text"] not in held], [d for d in docs if d["text"] in held]


def validate_corpus(cfg: DataConfig, seed: int) -> int:
    """`align data validate DOMAIN_RECIPE`: document counts and a PHI scan; exit code 0 if ok, 1 if PHI is likely."""
    from align.data.phi import scan_phi

    train, evals = load_corpus(with_default_corpus(cfg), seed)
    chars = sum(len(d["text"]) for d in train)
    print(f"corpus: {len(train)} training documents ({chars} characters), {len(evals)} held out")
    report = scan_phi(train + evals)
    print(report.format())
    return 0 if report.clean or cfg.allow_phi else 1
