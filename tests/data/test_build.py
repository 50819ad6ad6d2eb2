"""Bundled data: byte-for-byte determinism, manifest hashes, split hygiene (exact and near-duplicate), stats table."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from align.data.build import FILES, build_bundled, build_rows, dataset_stats, parse_error_mix
from align.data.tasks import DEFAULT_SIZES
from align.data.tasks import notes as notes_corpus
from align.errors import UserError
from align.runinfo import read_jsonl

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "clinical"


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _item_text(row: dict) -> str:
    """The prompt without the task instruction that every item of a task shares."""
    return row["prompt"][0]["content"].split("\n\n", 1)[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundled")
    build_bundled(out, seed=0)
    return out


def test_same_seed_same_bytes_and_bundled_files_are_current(built, tmp_path):
    build_bundled(tmp_path / "again", seed=0)
    for name in FILES + notes_corpus.FILES:
        assert (built / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
        assert (built / name).read_bytes() == (BUNDLED / name).read_bytes(), f"regenerate {BUNDLED}"
    build_bundled(tmp_path / "other", seed=1)
    assert (built / "sft_train.jsonl").read_bytes() != (tmp_path / "other" / "sft_train.jsonl").read_bytes()
    assert not list(built.glob(".*.tmp"))


def test_manifest_counts_and_hashes(built):
    manifest = json.loads((built / "manifest.json").read_text(encoding="utf-8"))
    for name in FILES:
        data = (built / name).read_bytes()
        assert manifest["files"][name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert manifest["files"][name]["rows"] == data.count(b"\n")
    for task, sizes in DEFAULT_SIZES.items():
        for split, n in sizes.items():
            assert manifest["counts"][split][task] == {"sft": n, "pref": n}


def test_splits_disjoint_exact_and_near_duplicate(built):
    by_split: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for split in ("train", "eval", "test"):
        for row in read_jsonl(built / f"sft_{split}.jsonl"):
            by_split[row["task"]][split].append(_item_text(row))
    for task, splits in by_split.items():
        seen: dict[str, str] = {}
        for split, texts in splits.items():
            for t in texts:
                assert seen.setdefault(t, split) == split, f"{task}: prompt in {seen[t]} and {split}"
        pairs = [("train", "eval"), ("train", "test"), ("eval", "test")]
        for a, b in pairs:
            tb = [_tokens(t) for t in splits[b]]
            for t in splits[a]:
                ta = _tokens(t)
                worst = max(len(ta & o) / len(ta | o) for o in tb)
                assert worst < 0.9, f"{task}: near-duplicate across {a}/{b} (Jaccard {worst:.2f})"


def test_sft_and_pref_rows_share_prompts(built):
    for split in ("train", "eval", "test"):
        sft = {r["id"]: r for r in read_jsonl(built / f"sft_{split}.jsonl")}
        pref = read_jsonl(built / f"pref_{split}.jsonl")
        assert len(sft) == len(pref)
        for p in pref:
            assert sft[p["id"]]["prompt"] == p["prompt"]
            assert sft[p["id"]]["completion"] == p["chosen"] != p["rejected"]
            assert p["meta"]["error_type"]


def test_notes_are_the_task_texts_of_their_split(built):
    manifest = json.loads((built / "manifest.json").read_text(encoding="utf-8"))
    docs = {split: read_jsonl(built / f"notes_{split}.jsonl") for split in ("train", "test")}
    for split, rows in docs.items():
        assert manifest["files"][f"notes_{split}.jsonl"]["rows"] == len(rows)
        assert all(set(r) == {"id", "text"} and f"-{split}-" in r["id"] for r in rows)
        by_id = {r["id"]: r for r in read_jsonl(built / f"sft_{split}.jsonl")}
        for doc in rows:
            row = by_id[doc["id"]]
            assert doc["text"] == row["meta"].get("source") or row["prompt"][0]["content"].endswith(doc["text"])
        tasks = {r["id"].split("-")[0] for r in rows}
        assert tasks == {"summarization", "triage"}
        assert len(rows) == sum(DEFAULT_SIZES[t][split] for t in tasks)
    train_tokens = [_tokens(d["text"]) for d in docs["train"]]
    for doc in docs["test"]:
        toks = _tokens(doc["text"])
        assert max(len(toks & t) / len(toks | t) for t in train_tokens) < 0.9, doc["id"]


def test_scale_changes_train_only():
    base, half = build_rows(seed=0), build_rows(seed=0, scale=0.5)
    assert half["sft_test.jsonl"] == base["sft_test.jsonl"] and half["pref_eval.jsonl"] == base["pref_eval.jsonl"]
    assert len(half["sft_train.jsonl"]) == sum(round(s["train"] * 0.5) for s in DEFAULT_SIZES.values())


def test_bad_options_raise_user_errors():
    with pytest.raises(UserError, match="unknown error type 'under_triag'"):
        build_rows(error_mix={"under_triag": 1.0})
    with pytest.raises(UserError, match="scale must be positive"):
        build_rows(scale=0)


def test_error_mix_from_the_command_line():
    assert parse_error_mix("under_triage=0.6, over_triage=0.2,wrong_reason=0") == {
        "under_triage": 0.6,
        "over_triage": 0.2,
        "wrong_reason": 0.0,
    }
    with pytest.raises(UserError, match="'under_triage' is not TYPE=WEIGHT"):
        parse_error_mix("under_triage")
    with pytest.raises(UserError, match="'over_triage=lots' is not TYPE=WEIGHT"):
        parse_error_mix("over_triage=lots")
    with pytest.raises(UserError, match="is not a non-negative number"):
        parse_error_mix("over_triage=-1")
    with pytest.raises(UserError, match="unknown error type 'overtriage'"):
        parse_error_mix("overtriage=1")


def test_build_command_writes_the_mix_it_was_given(tmp_path):
    from align.cli import main

    assert main(["data", "build", "--out", str(tmp_path), "--scale", "0.25", "--error-mix", "under_triage=1"]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["error_mix"] == {"under_triage": 1.0}
    pref = [r for r in read_jsonl(tmp_path / "pref_train.jsonl") if r["task"] == "triage"]
    assert pref and all(r["meta"]["error_type"] == "under_triage" for r in pref if r["meta"]["esi"] < 5)


class WordTokenizer:
    """Stands in for a HF tokenizer: one id per character pair, no chat template."""

    chat_template = None

    def __call__(self, text: str) -> dict:
        return {"input_ids": list(range((len(text) + 1) // 2))}


def test_dataset_stats_table(built):
    table = dataset_stats(built)
    assert re.search(r"^train\s+triage\s+240\s+240$", table, re.M)
    assert re.search(r"^test\s+provider_routing\s+48\s+48$", table, re.M)
    assert "triage:esi (sft): 1: 69, 2: 69, 3: 69, 4: 69, 5: 68" in table
    assert "whitespace tokens" in table and "reasoning:answer (sft): A:" in table
    assert "tokenizer tokens" in dataset_stats(built, tokenizer=WordTokenizer())
