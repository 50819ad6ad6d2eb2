"""`align data validate`: counts, drops, lengths, duplicates, eval overlap, PHI, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from align.data.validate import WORDS_NOTE, validate_command, validate_path
from align.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def pair(prompt: str, chosen: str, rejected: str) -> dict:
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def word_tokenizer():
    """A tiny whitespace tokenizer whose chat template adds one `<role>` token per message."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    fast.chat_template = "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
    return fast


@pytest.fixture
def train_file(tmp_path: Path) -> Path:
    rows = [
        pair("one two three", "a b", "c"),  # words 3 + max(2, 1) = 5
        pair("one two three", "a b", "c"),  # exact duplicate of the first row
        pair("four", "x y z w v u", "q"),  # 1 + 6 = 7
        pair("five six", "same", "same"),  # chosen == rejected: dropped
        pair("seven", "", "r"),  # empty chosen: dropped
    ]
    return write_jsonl(tmp_path / "train.jsonl", rows)


def test_counts_drops_duplicates_and_word_lengths(train_file: Path) -> None:
    report = validate_path(train_file, "preference", max_length=6)
    assert (report.n_read, report.n_rows, report.shape) == (5, 3, "explicit")
    assert report.dropped == {"chosen_equals_rejected": 1, "empty_field": 1}
    assert report.duplicates == 1
    assert report.lengths.unit == WORDS_NOTE and report.lengths.lengths == [5, 5, 7]
    assert report.lengths.truncated == 1
    assert report.ok  # duplicates, drops and truncation are warnings
    text = report.format()
    assert "length (whitespace words; no tokenizer given" in text
    assert "min 5, mean 5.7, p50 5, p95 7, max 7" in text
    assert "1 rows longer than max_length 6 would be truncated" in text
    assert "warning: 2 rows dropped (chosen_equals_rejected: 1, empty_field: 1)" in text
    assert text.endswith("OK")


def test_token_lengths_use_the_chat_template(train_file: Path) -> None:
    report = validate_path(train_file, "preference", tokenizer=word_tokenizer(), max_length=8)
    # each message adds one <role> token: 3 + 1 + 2 + 1 = 7, then 1 + 1 + 6 + 1 = 9
    assert report.lengths.unit == "tokens" and report.lengths.lengths == [7, 7, 9]
    assert report.lengths.truncated == 1


def test_eval_overlap_is_a_problem(tmp_path: Path, train_file: Path) -> None:
    eval_file = write_jsonl(
        tmp_path / "eval.jsonl", [pair("four", "a", "b"), pair("four", "c", "d"), pair("new", "e", "f")]
    )
    report = validate_path(train_file, "preference", eval_path=eval_file)
    assert (report.eval_rows, report.overlap_prompts, report.overlap_eval_rows) == (3, 1, 2)
    assert not report.ok
    assert "problem: 1 prompts appear in both train and eval (2 eval rows)" in report.format()


def test_phi_is_a_problem_unless_allowed(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "phi.jsonl", [{"prompt": "MRN: 1234567 chest pain", "completion": "ESI level: 2"}])
    assert not validate_path(path, "sft").ok
    allowed = validate_path(path, "sft", allow_phi=True)
    assert allowed.ok and allowed.phi.counts == {"mrn": 1}
    assert "1234567" not in allowed.format()


def test_nothing_left_raises(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "same.jsonl", [pair("p", "x", "x"), pair("q", "y", "y")])
    with pytest.raises(UserError, match="no usable rows: all 2 were dropped \\(chosen_equals_rejected: 2\\)"):
        validate_path(path, "preference")


def test_column_string_for_the_cli() -> None:
    report = validate_path(
        FIXTURES / "mapped.csv", "preference", "prompt=question,chosen=good_answer,rejected=bad_answer"
    )
    assert report.n_rows == 2 and report.shape == "explicit"


def test_validate_command_exit_codes(tmp_path: Path, train_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_command(str(train_file), "preference") == 0
    assert capsys.readouterr().out.startswith(f"{train_file}: 3 preference rows (shape: explicit) from 5 read")
    eval_file = write_jsonl(tmp_path / "eval.jsonl", [pair("four", "a", "b")])
    assert validate_command(str(train_file), "preference", eval_path=str(eval_file)) == 1
    capsys.readouterr()
    assert validate_command(str(FIXTURES / "malformed.jsonl"), "sft") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{FIXTURES / 'malformed.jsonl'}:3: malformed JSON") and err.count("\n") == 1
