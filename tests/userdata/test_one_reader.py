"""One reader for validate, inspect, every stage and the report: the same rows, the same checks, the same drops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from align.config import DataConfig, DatasetConfig
from align.data.load import check_phi, load_rows, load_stage_data, read_rows
from align.data.validate import validate_path
from align.errors import UserError

REPO = Path(__file__).resolve().parents[2]
ICONV = "the file must be UTF-8: re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`"


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def bot(text: str) -> dict:
    return {"role": "assistant", "content": text}


def sft_row(n: int, text: str, answer: str = "ESI level: 3") -> dict:
    """A row in align's own canonical format, with the kind of meta the report grades against."""
    return {"id": f"triage-test-{n:04d}", "task": "triage", "prompt": [user(text)], "completion": [bot(answer)]} | {
        "meta": {"esi": 3, "source": "the triage note", "deciding_findings": ["stable"]}
    }


def pref_row(n: int, chosen: str, rejected: str) -> dict:
    return {
        "id": f"triage-train-{n:04d}",
        "task": "triage",
        "prompt": [user(f"Patient {n}: chest pain. Triage?")],
        "chosen": [bot(chosen)],
        "rejected": [bot(rejected)],
        "meta": {"esi": 2, "error_type": "under_triage"},
    }


def write_lines(path: Path, rows: list[dict | str], encoding: str = "utf-8", bom: bool = False) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    return path


def load(path: Path, kind: str, **spec) -> list[dict]:
    return load_rows(DatasetConfig(path=str(path), **spec), kind)


# ---- item 2: training reads exactly what validate reads ---------------------------------------------------------


def test_canonical_rows_keep_id_task_meta_and_extra_keys(tmp_path: Path) -> None:
    pair = pref_row(7, "ESI level: 2", "ESI level: 4") | {"scores": {"chosen": 1.0, "rejected": 0.0}}
    pair["chosen_source"] = "sample"  # the keys `align pairs generate` adds
    path = write_lines(tmp_path / "pairs.jsonl", [pair])
    assert load(path, "preference") == [pair]
    assert read_rows(path, "preference").rows == [pair]  # validate's path: no renumbered id, no meta.location


def test_bundled_files_load_exactly_as_written() -> None:
    for name, kind in (("sft_test.jsonl", "sft"), ("pref_eval.jsonl", "preference")):
        path = REPO / "data" / "clinical" / name
        written = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert load(path, kind) == written


def test_a_utf8_bom_is_read_by_training_as_by_validate(tmp_path: Path) -> None:
    rows = [sft_row(0, "Chest pain. Triage?"), sft_row(1, "Ankle sprain. Triage?")]
    path = write_lines(tmp_path / "bom.jsonl", rows, bom=True)
    assert load(path, "sft") == rows
    assert validate_path(path, "sft").n_rows == 2


def test_a_latin1_file_is_one_located_line_in_training(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "latin1.jsonl", [sft_row(0, "Chest pain"), sft_row(1, "Fièvre")], "latin-1")
    with pytest.raises(UserError) as err:
        load(path, "sft")
    assert str(err.value) == f"{path}:2: byte 0xe8 is not valid UTF-8; {ICONV}"


def test_canonical_looking_rows_are_checked_like_any_other(tmp_path: Path) -> None:
    text_chosen = pref_row(0, "ESI level: 2", "x") | {"chosen": "ESI level: 2"}  # a string, not messages
    path = write_lines(tmp_path / "text.jsonl", [text_chosen])
    assert load(path, "preference")[0]["chosen"] == [bot("ESI level: 2")]
    no_chosen = {k: v for k, v in pref_row(1, "a", "b").items() if k != "chosen"}
    path = write_lines(tmp_path / "missing.jsonl", [pref_row(0, "a", "b"), no_chosen])
    with pytest.raises(UserError) as err:
        load(path, "preference")
    assert str(err.value) == (
        f"{path}:2: missing column 'chosen', shape 'explicit' needs it; the columns are id, task, prompt, rejected, "
        "meta; fix the column mapping (--columns canonical=yours) or the file"
    )


def test_chosen_equal_to_rejected_is_dropped_by_training_too(tmp_path: Path) -> None:
    rows = [pref_row(0, "ESI level: 2", "ESI level: 4"), pref_row(1, "ESI level: 3", "ESI level: 3 ")]
    path = write_lines(tmp_path / "pairs.jsonl", rows)
    assert load(path, "preference") == rows[:1]
    report = validate_path(path, "preference")
    assert (report.n_rows, report.dropped) == (1, {"chosen_equals_rejected": 1})


def test_system_prompt_is_added_once(tmp_path: Path) -> None:
    has_system = sft_row(1, "q") | {"prompt": [{"role": "system", "content": "Own."}, user("q")]}
    path = write_lines(tmp_path / "s.jsonl", [sft_row(0, "p"), has_system])
    rows = load(path, "sft", system_prompt="Be safe.")
    assert [r["prompt"] for r in rows] == [[{"role": "system", "content": "Be safe."}, user("p")], has_system["prompt"]]
    assert rows[0]["meta"] == sft_row(0, "p")["meta"]


# ---- item 14: what the report's held-out files can be -----------------------------------------------------------


def test_report_inputs_csv_bom_and_a_malformed_line(tmp_path: Path) -> None:
    csv_path = tmp_path / "test.csv"
    csv_path.write_text("\ufefftask,prompt,completion\ntriage,Chest pain?,ESI level: 2\n", encoding="utf-8")
    assert load(csv_path, "sft") == [
        {
            "id": "triage-0",
            "task": "triage",
            "prompt": [user("Chest pain?")],
            "completion": [bot("ESI level: 2")],
            "meta": {"source": f"{csv_path}:2"},
        }
    ]
    bad = write_lines(tmp_path / "bad.jsonl", [sft_row(0, "p"), '{"id": "x", oops'])
    with pytest.raises(UserError) as err:
        load(bad, "sft")
    assert str(err.value) == (
        f"{bad}:2: malformed JSON (Expecting property name enclosed in double quotes at column 13); "
        "each line must be one complete JSON object"
    )


# ---- item 9: the shape comes from every row ---------------------------------------------------------------------

HH = {"chosen": "\n\nHuman: Cough?\n\nAssistant: See a doctor.", "rejected": "\n\nHuman: Cough?\n\nAssistant: No."}


def test_mixed_shapes_fail_naming_the_first_line_of_each(tmp_path: Path) -> None:
    explicit = [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(3)]
    path = write_lines(tmp_path / "mixed.jsonl", [HH, *explicit])
    expected = (
        f"{path}:2: rows of different shapes in one file: implicit (chosen, rejected) 1 row from line 1, "
        "explicit (prompt, chosen, rejected) 3 rows from line 2; give every row the same columns, "
        "or split the file into one file per shape"
    )
    for read in (lambda: load(path, "preference"), lambda: validate_path(path, "preference")):
        with pytest.raises(UserError) as err:
            read()
        assert str(err.value) == expected


def test_one_shape_in_every_row_is_read_whatever_the_first_row(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "hh.jsonl", [HH, HH | {"rejected": "\n\nHuman: Cough?\n\nAssistant: Ignore it."}])
    result = read_rows(path, "preference")
    assert (result.shape, result.shape_counts, len(result.rows)) == ("implicit", {"implicit": 2}, 2)


# ---- item 10: hub ids get the recipe's allow_network ------------------------------------------------------------


def test_load_rows_passes_allow_network_to_the_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []

    def fake_load_dataset(name: str, split: str) -> list[dict]:
        calls.append((name, split))
        return [{"prompt": "Chest pain?", "completion": "ESI level: 2"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    spec = DatasetConfig(path="someorg/triage")
    with pytest.raises(UserError) as err:
        load_rows(spec, "sft")
    assert str(err.value) == (
        "someorg/triage: not a local file; reading it as a Hugging Face Hub dataset needs network access; "
        "set model.allow_network: true in the recipe to download it, or give the path of a local file"
    )
    rows = load_rows(spec, "sft", allow_network=True)
    assert calls == [("someorg/triage", "train")]
    assert [r["completion"] for r in rows] == [[bot("ESI level: 2")]] and rows[0]["task"] == "triage"


# ---- item 11: PHI is located by path:line, the same in validate and training ------------------------------------


@pytest.fixture
def phi_file(tmp_path: Path) -> Path:
    rows = [
        {"prompt": "Chest pain. Triage?", "completion": "ESI level: 2"},
        {"prompt": "Dropped: the answer is empty", "completion": ""},
        {"prompt": "Ankle sprain. Triage?", "completion": "ESI level: 5"},
        {"prompt": "Rash; call me back at 617-555-0143", "completion": "ESI level: 4"},
    ]
    return write_lines(tmp_path / "phi.jsonl", rows)


def test_phi_locations_are_path_and_line_in_validate_and_training(phi_file: Path) -> None:
    report = validate_path(phi_file, "sft")
    assert report.phi.locations == {"phone": [f"{phi_file}:4 prompt"]}
    cfg = DataConfig(train=[DatasetConfig(path=str(phi_file))])
    train, _ = load_stage_data(cfg, "sft", seed=0)
    with pytest.raises(UserError) as err:
        check_phi(cfg, train, allow_phi=False)
    assert str(err.value) == (
        f"{phi_file}: possible protected health information: 1 phone (first in {phi_file}:4 prompt); run "
        "`align data validate` to list the rows; remove or de-identify it, or if the data is already de-identified "
        "set `allow_phi: true` in the recipe or pass --allow-phi"
    )


def test_the_location_never_reaches_the_rows_training_sees(phi_file: Path) -> None:
    train, _ = load_stage_data(DataConfig(train=[DatasetConfig(path=str(phi_file))]), "sft", seed=0)
    assert [json.loads(json.dumps(r)) for r in train] == [
        {
            "id": f"phi-{i}",
            "task": "phi",
            "prompt": [user(p)],
            "completion": [bot(c)],
            "meta": {"source": f"{phi_file}:{line}"},
        }
        for i, (line, p, c) in enumerate(
            [
                (1, "Chest pain. Triage?", "ESI level: 2"),
                (3, "Ankle sprain. Triage?", "ESI level: 5"),
                (4, "Rash; call me back at 617-555-0143", "ESI level: 4"),
            ]
        )
    ]


def test_inspect_prints_the_phi_scan_before_the_rows(
    phi_file: Path, tokenizer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import align.models
    import align.network
    from align.data.inspect import inspect_command

    monkeypatch.setattr(align.network, "apply_network_policy", lambda allow_network: None)
    monkeypatch.setattr(align.models, "resolve_model_path", lambda name, allow_network=False: name)
    monkeypatch.setattr(align.models, "load_tokenizer", lambda path: tokenizer)
    assert inspect_command(str(phi_file), 1, "sft") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == [
        "PHI scan: possible identifiers in 3 rows scanned: 1 phone",
        f"  phone: {phi_file}:4 prompt",
        "legend: '#' = token carries loss, '.' = context only; model smollm2-135m",
        "== phi-0 (task phi) ==",
    ]
    assert "617-555-0143" not in "\n".join(lines[:2])
