"""Domain corpora: .txt files, directories of them, JSONL/CSV text columns; bad input names the file and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from align.config import DataConfig, DatasetConfig
from align.data.corpus import DEFAULT_EVAL, DEFAULT_TRAIN, load_corpus, read_corpus, with_default_corpus
from align.errors import UserError


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_txt_file_is_one_document(tmp_path):
    path = tmp_path / "note.txt"
    path.write_text("\ufeffHPI: cough for 3 days.\n\nPlan: rest.\n", encoding="utf-8")
    assert read_corpus(DatasetConfig(path=str(path))) == [
        {"id": str(path), "text": "HPI: cough for 3 days.\n\nPlan: rest.", "task": "note"}
    ]


def test_a_directory_is_its_txt_files_sorted(tmp_path):
    (tmp_path / "notes" / "sub").mkdir(parents=True)
    (tmp_path / "notes" / "b.txt").write_text("second", encoding="utf-8")
    (tmp_path / "notes" / "a.txt").write_text("first", encoding="utf-8")
    (tmp_path / "notes" / "sub" / "c.txt").write_text("third", encoding="utf-8")
    (tmp_path / "notes" / "readme.md").write_text("not a document", encoding="utf-8")
    docs = read_corpus(DatasetConfig(path=str(tmp_path / "notes"), task="clinic"))
    assert [d["text"] for d in docs] == ["first", "second", "third"]
    assert {d["task"] for d in docs} == {"clinic"}


def test_jsonl_and_csv_text_columns(tmp_path):
    path = _jsonl(tmp_path / "c.jsonl", [{"id": "n1", "text": "one"}, {"text": "two"}])
    docs = read_corpus(DatasetConfig(path=str(path)))
    assert [(d["id"], d["text"]) for d in docs] == [("n1", "one"), (f"{path}:2", "two")]
    csv_path = tmp_path / "c.csv"
    csv_path.write_text('body,other\n"multi\nline",x\nplain,y\n', encoding="utf-8")
    docs = read_corpus(DatasetConfig(path=str(csv_path), columns={"text": "body"}))
    assert [d["text"] for d in docs] == ["multi\nline", "plain"]


def test_jsonl_without_the_text_column_names_file_and_line(tmp_path):
    path = _jsonl(tmp_path / "c.jsonl", [{"text": "ok"}, {"body": "no text"}])
    with pytest.raises(UserError) as err:
        read_corpus(DatasetConfig(path=str(path)))
    assert str(err.value) == (
        f"{path}:2: no 'text' column (columns here: body); give every row one, or map yours in the recipe with "
        "columns: {text: your_column}"
    )


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("empty.txt", b"  \n", "empty.txt: the document is empty"),
        ("latin1.txt", b"ok\nfi\xe8vre\n", "latin1.txt:2: byte 0xe8 is not valid UTF-8"),
        ("blank.jsonl", b'{"text": "a"}\n{"text": " "}\n', "blank.jsonl:2: 'text' is empty"),
        ("number.jsonl", b'{"text": 3}\n', "number.jsonl:1: 'text' is int, not text"),
    ],
)
def test_bad_documents_are_one_line_errors(tmp_path, name, data, expected):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UserError, match="^" + str(tmp_path / expected).replace("\\", "\\\\")):
        read_corpus(DatasetConfig(path=str(path)))


def test_bad_specs_fail_before_reading(tmp_path):
    with pytest.raises(UserError, match="corpus not found"):
        read_corpus(DatasetConfig(path=str(tmp_path / "missing.txt")))
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(UserError, match="no .txt files in this directory"):
        read_corpus(DatasetConfig(path=str(tmp_path / "empty_dir")))
    path = _jsonl(tmp_path / "c.jsonl", [{"text": "a"}])
    with pytest.raises(UserError, match="columns maps 'prompt'"):
        read_corpus(DatasetConfig(path=str(path), columns={"prompt": "q"}))
    with pytest.raises(UserError, match="dataset kind 'sft' in a domain recipe"):
        read_corpus(DatasetConfig(path=str(path), kind="sft"))


def test_held_out_documents_never_train(tmp_path):
    train = _jsonl(tmp_path / "train.jsonl", [{"text": t} for t in ("a", "b", "c", "shared")])
    held = _jsonl(tmp_path / "held.jsonl", [{"text": "shared"}])
    cfg = DataConfig(train=[DatasetConfig(path=str(train))], eval=[DatasetConfig(path=str(held))])
    docs, evals = load_corpus(cfg, seed=0)
    assert [d["text"] for d in docs] == ["a", "b", "c"] and [d["text"] for d in evals] == ["shared"]
    split = DataConfig(train=[DatasetConfig(path=str(train))], test_split_size=2)
    docs, evals = load_corpus(split, seed=0)
    assert len(evals) == 2 and not {d["text"] for d in docs} & {d["text"] for d in evals}
    limited = DataConfig(train=[DatasetConfig(path=str(train))], eval=cfg.eval, limit_per_task={"train": 2})
    assert [d["text"] for d in load_corpus(limited, seed=0)[0]] == ["a", "b"]


def test_defaults_are_the_bundled_notes():
    cfg = with_default_corpus(DataConfig())
    assert [s.path for s in cfg.train] == [DEFAULT_TRAIN] and [s.path for s in cfg.eval] == [DEFAULT_EVAL]
    assert with_default_corpus(DataConfig(test_split_size=0.1)).eval == []


def test_align_data_validate_on_a_domain_recipe(tmp_path, capsys):
    from align.cli import main

    train = _jsonl(
        tmp_path / "train.jsonl", [{"text": "Cough for 3 days."}, {"text": "Call Mr. Johnson at 555-123-4567."}]
    )
    recipe = tmp_path / "domain.yaml"
    recipe.write_text(f"stage: domain\ndata:\n  train: {train}\n  test_split_size: 1\n", encoding="utf-8")
    assert main(["data", "validate", str(recipe)]) == 1  # likely PHI: exit code 1, counts only
    out = capsys.readouterr().out
    assert "corpus: 1 training documents" in out and "1 held out" in out and "phone" in out
    assert "555-123-4567" not in out and "Johnson" not in out
