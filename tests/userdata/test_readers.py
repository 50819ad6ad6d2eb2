"""Readers: every format yields located records; every bad input names the file and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from align.data.readers import read_records
from align.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures"


def read(name: str) -> list:
    return list(read_records(FIXTURES / name))


def test_jsonl_records_carry_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")  # a blank line is skipped but still counted
    recs = list(read_records(path))
    assert [r.data for r in recs] == [{"a": 1}, {"a": 2}]
    assert [r.line for r in recs] == [1, 3]
    assert recs[1].source == f"{path}:3"


def test_csv_lines_account_for_quoted_multiline_fields() -> None:
    recs = read("mapped.csv")
    assert [r.line for r in recs] == [2, 5]  # header is line 1; the first row spans lines 2-4
    assert recs[0].data["good_answer"] == "ESI level: 2\nRationale: meningitis risk."
    assert list(recs[1].data) == ["question", "good_answer", "bad_answer"]


def test_csv_with_utf8_bom_and_tsv(tmp_path: Path) -> None:
    csv_path = tmp_path / "excel.csv"
    csv_path.write_bytes("\ufeffprompt,completion\nq,a\n".encode())
    assert [r.data for r in read_records(csv_path)] == [{"prompt": "q", "completion": "a"}]
    tsv_path = tmp_path / "d.tsv"
    tsv_path.write_text("prompt\tcompletion\nq, with comma\ta\n", encoding="utf-8")
    assert [r.data for r in read_records(tsv_path)] == [{"prompt": "q, with comma", "completion": "a"}]


def test_json_array_items_report_index_and_line() -> None:
    recs = read("sharegpt_sft.json")
    assert [r.item for r in recs] == ["item 0", "item 1"]
    assert [r.line for r in recs] == [2, 18]
    assert recs[1].data["conversations"][0]["value"] == "Define bradycardia."


def test_json_object_wrapping_one_array_and_json_lines_named_json(tmp_path: Path) -> None:
    wrapped = tmp_path / "w.json"
    wrapped.write_text(json.dumps({"version": 2, "data": [{"a": 1}, {"a": 2}]}), encoding="utf-8")
    assert [(r.data, r.item) for r in read_records(wrapped)] == [({"a": 1}, "item 0"), ({"a": 2}, "item 1")]
    lines = tmp_path / "l.json"
    lines.write_text('{"a": 1}\n{"a": 2}\n', encoding="utf-8")
    assert [(r.data, r.line) for r in read_records(lines)] == [({"a": 1}, 1), ({"a": 2}, 2)]


def test_parquet_rows(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"prompt": ["p0", "p1", "p2"], "completion": ["c0", "c1", "c2"]}), path)
    recs = list(read_records(path))
    assert [r.data["completion"] for r in recs] == ["c0", "c1", "c2"]
    assert recs[2].source == f"{path}:row 2"


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    path.write_text("not parquet", encoding="utf-8")
    with pytest.raises(UserError, match="not a readable Parquet file") as err:
        list(read_records(path))
    assert str(path) in str(err.value)


def test_saved_dataset_dir_and_dataset_dict(tmp_path: Path) -> None:
    import datasets

    rows = {"prompt": ["a", "b"], "chosen": ["x", "y"], "rejected": ["z", "w"]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "single"))
    assert [r.data for r in read_records(tmp_path / "single")][1] == {"prompt": "b", "chosen": "y", "rejected": "w"}
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows), "test": datasets.Dataset.from_dict(rows)})
    dd.save_to_disk(str(tmp_path / "dict"))
    assert len(list(read_records(tmp_path / "dict", split="test"))) == 2
    with pytest.raises(UserError, match="no split 'dev' \\(splits: train, test\\)"):
        list(read_records(tmp_path / "dict", split="dev"))


def test_plain_directory_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(UserError, match="not a dataset saved with"):
        list(read_records(tmp_path))


def test_hub_id_offline_and_without_opt_in_name_the_recipe_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as err:
        list(read_records("someorg/clinical-prefs", allow_network=True))
    assert str(err.value) == (
        "someorg/clinical-prefs: not a local file, and the Hugging Face Hub is offline (HF_HUB_OFFLINE=1); unset "
        "HF_HUB_OFFLINE and set model.allow_network: true in the recipe to download it, or give the path of a local file"
    )
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(UserError) as err:
        list(read_records("someorg/clinical-prefs"))
    assert str(err.value) == (
        "someorg/clinical-prefs: not a local file; reading it as a Hugging Face Hub dataset needs network access; "
        "set model.allow_network: true in the recipe to download it, or give the path of a local file"
    )


def test_missing_local_file_is_not_treated_as_hub_id() -> None:
    with pytest.raises(UserError, match="file not found"):
        list(read_records(FIXTURES / "nope.jsonl"))


@pytest.mark.parametrize(
    ("name", "line", "message"),
    [
        ("malformed.jsonl", 3, "malformed JSON (Expecting value at column 31)"),
        ("latin1.jsonl", 2, "byte 0xe9 is not valid UTF-8; the file must be UTF-8"),
        ("wrong_fields.csv", 3, "row has 3 fields but the header has 2"),
        ("not_object.jsonl", 2, "expected a JSON object, got list"),
        ("bad_array.json", 3, "item 1: malformed JSON (Expecting ',' delimiter)"),
    ],
)
def test_bad_input_names_file_and_line(name: str, line: int, message: str) -> None:
    with pytest.raises(UserError) as err:
        read(name)
    assert str(err.value).startswith(f"{FIXTURES / name}:{line}: {message}")
    assert (err.value.path, err.value.line) == (str(FIXTURES / name), line)


def test_latin1_error_tells_how_to_convert() -> None:
    with pytest.raises(UserError, match="iconv -f latin1 -t utf-8"):
        read("latin1.jsonl")


@pytest.mark.parametrize("name", ["empty.jsonl", "header_only.csv"])
def test_empty_files(name: str) -> None:
    with pytest.raises(UserError) as err:
        read(name)
    assert str(err.value).startswith(f"{FIXTURES / name}: file is empty (no data rows)")


def test_megabyte_field_names_column_line_and_size(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    rows = [{"prompt": "ok", "completion": "ok"}, {"prompt": "x" * 1_500_000, "completion": "ok"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(UserError) as err:
        list(read_records(path))
    assert str(err.value).startswith(f"{path}:2: column 'prompt' is 1.5 MB, over the 1 MB per-field limit")


def test_megabyte_field_in_csv_and_multibyte_characters(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("prompt,completion\nq,a\nq," + "é" * 600_000 + "\n", encoding="utf-8")  # 600k chars = 1.2 MB
    with pytest.raises(UserError, match=r":3: column 'completion' is 1.2 MB") as err:
        list(read_records(path))
    assert str(path) in str(err.value)
    assert len(list(read_records(path, max_field_bytes=2_000_000))) == 2


def test_damaged_saved_dataset_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="cannot load the saved dataset") as err:
        list(read_records(tmp_path))
    assert str(err.value).startswith(f"{tmp_path}: ")


DEEP_FIX = "a data row nests a few levels at most, so the export is broken; fix or remove the row"


@pytest.mark.parametrize("depth", [150, 100_000])  # 150 parses, then fails later; 100k overflows the parser
def test_deeply_nested_json_is_a_located_line(tmp_path: Path, depth: int) -> None:
    deep = '{"prompt": ' + "[" * depth + "]" * depth + ', "completion": "c"}'
    lines = tmp_path / "deep.jsonl"
    lines.write_text('{"prompt": "p", "completion": "c"}\n' + deep + "\n", encoding="utf-8")
    with pytest.raises(UserError) as err:
        list(read_records(lines))
    assert str(err.value) == f"{lines}:2: JSON nested more than 100 levels deep; {DEEP_FIX}"
    array = tmp_path / "deep.json"
    array.write_text('[\n{"prompt": "p", "completion": "c"},\n' + deep + "\n]\n", encoding="utf-8")
    with pytest.raises(UserError) as err:
        list(read_records(array))
    assert str(err.value) == f"{array}:3: item 1: JSON nested more than 100 levels deep; {DEEP_FIX}"
    whole = tmp_path / "one.json"
    whole.write_text("\n" + deep, encoding="utf-8")
    with pytest.raises(UserError) as err:
        list(read_records(whole))
    assert str(err.value) == f"{whole}:2: JSON nested more than 100 levels deep; {DEEP_FIX}"


def test_lone_surrogate_is_a_located_line(tmp_path: Path) -> None:
    path = tmp_path / "surrogate.jsonl"
    ok = '{"prompt": "smile \\ud83d\\ude00", "completion": "c"}'  # a valid pair is one character
    path.write_text(ok + '\n{"prompt": "p", "completion": ["x\\ud800y"]}\n', encoding="utf-8")
    with pytest.raises(UserError) as err:
        list(read_records(path))
    assert str(err.value) == (
        f"{path}:2: column 'completion' holds a lone surrogate \\ud800 (half of a UTF-16 pair, not a character); "
        "fix the export so it writes whole characters (UTF-8), or remove the row"
    )
    path.write_text(ok + "\n", encoding="utf-8")
    assert [r.data["prompt"] for r in read_records(path)] == ["smile \U0001f600"]
