"""`align pairs generate`: counts from hand-made answers, then end to end with a tiny random LLaMA as the SFT model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import align.pairs.run as pairs_run
from align.cli import build_parser, main
from align.config import PairsSection, load_recipe
from align.data.collate import render_pair
from align.data.load import load_stage_data
from align.tasks import registry
from tests.conftest import REPO, write_jsonl

PAIRS_RECIPE = REPO / "recipes" / "smollm2-135m" / "pairs.yaml"
BUNDLED = REPO / "data" / "clinical" / "sft_train.jsonl"


def _sft_row(task: str, i: int, gold: str, meta: dict) -> dict:
    return {
        "id": f"{task}-{i}",
        "task": task,
        "prompt": [{"role": "user", "content": f"{task} question {i}"}],
        "completion": [{"role": "assistant", "content": gold}],
        "meta": meta,
    }


def test_build_pairs_counts_by_hand() -> None:
    options = {"A": "aspirin", "B": "heparin", "C": "insulin", "D": "oxygen"}
    rows = [
        _sft_row("triage", 1, "ESI level: 2\nRationale: a", {"esi": 2}),
        _sft_row("triage", 2, "ESI level: 3\nRationale: b", {"esi": 3}),
        _sft_row("triage", 3, "ESI level: 4\nRationale: c", {"esi": 4}),
        _sft_row("triage", 4, "ESI level: 1\nRationale: d", {"esi": 1}),
        _sft_row("reasoning", 5, "Answer: C\nExplanation: e", {"answer": "C", "options": options}),
        _sft_row("provider_routing", 6, "Route to: nurse", {"label": "nurse"}),
    ]
    answers = [
        ["ESI level: 2", "ESI level: 1"],  # correct 1.0, over -1.0: gold (tie) vs over, gap 2.0 -> kept
        ["ESI level: 5", "ESI level: 4"],  # under -4.0, under -2.0: gold vs ESI 5, gap 5.0 -> kept
        ["ESI level: 2", "ESI level: 3"],  # over -2.0, over -1.0: gold vs ESI 2, gap 3.0 -> kept
        ["ESI level: 1", "ESI level: 1"],  # both correct: gold vs sample, gap 0.0 < 0.5 -> dropped for gap
        ["Answer: A", "Answer: C"],  # wrong 0.0, correct 1.0: gold (tie) vs A, gap 1.0 -> kept
        ["Route to: nurse", "Route to: physician"],  # the sample equal to gold is chosen as a sample, gap 1.0
    ]
    cfg = PairsSection(k=2, min_gap=0.5, include_reference=True, balance=True)
    pairs, stats = pairs_run.build_pairs(rows, answers, cfg, seed=0, tasks=registry())
    # triage rejected errors before balance: over (1), under (2), over (3) -> one of the two over pairs dropped
    assert stats["triage"] == {
        "prompts": 4,
        "kept": 2,
        "dropped_gap": 1,
        "dropped_identical": 0,
        "dropped_balance": 1,
        "sample_errors": {"correct": 3, "over_triage": 3, "under_triage": 2},
        "rejected_errors_before_balance": {"over_triage": 2, "under_triage": 1},
        "rejected_errors": {"under_triage": 1, "over_triage": 1},
        "chosen_source": {"reference": 2},
    }
    assert stats["reasoning"]["kept"] == 1 and stats["reasoning"]["chosen_source"] == {"reference": 1}
    assert stats["provider_routing"]["chosen_source"] == {"sample": 1}
    by_id = {p["id"]: p for p in pairs}
    assert by_id["triage-2"]["scores"] == {"chosen": 1.0, "rejected": -4.0}
    assert by_id["triage-2"]["rejected"] == [{"role": "assistant", "content": "ESI level: 5"}]
    assert by_id["triage-2"]["meta"] == {
        "esi": 3,
        "error_type": "under_triage",
        "chosen_error_type": "correct",
        "predicted": {"chosen": 3, "rejected": 5},
    }
    routed = by_id["provider_routing-6"]
    assert routed["chosen_source"] == "sample" and routed["meta"]["predicted"] == {
        "chosen": "nurse",
        "rejected": "physician",
    }


def _fake_sft(root: Path, tiny_model_dir: Path) -> Path:
    """A finished SFT stage whose final/ is the tiny random LLaMA (full weights, as after full fine-tuning)."""
    sft = root / "outputs" / "default" / "sft"
    shutil.copytree(tiny_model_dir, sft / "final")
    (sft / "metrics.json").write_text("{}\n")
    return sft


def _few_prompts(path: Path, per_task: int) -> Path:
    rows, seen = [], {}
    for line in BUNDLED.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        seen[row["task"]] = seen.get(row["task"], 0) + 1
        if seen[row["task"]] <= per_task:
            rows.append(row)
    return write_jsonl(path, rows)


def _args(tmp_path: Path, sft: Path, prompts: Path, *extra: str) -> list[str]:
    return [
        "pairs",
        "generate",
        str(PAIRS_RECIPE),
        f"pairs.sft={sft}",
        f"pairs.prompts={prompts}",
        f"pairs.out={tmp_path / 'onpolicy' / 'pref_train.jsonl'}",
        "pairs.k=2",
        "pairs.min_gap=0",
        "pairs.include_reference=true",
        "pairs.batch_size=4",
        "pairs.max_new_tokens={triage: 6, provider_routing: 6, reasoning: 6, summarization: 8}",
        *extra,
    ]


def test_generate_end_to_end_writes_pairs_dpo_can_train_on(tmp_path, tiny_model_dir, tokenizer, capsys, monkeypatch):
    sft = _fake_sft(tmp_path, tiny_model_dir)
    prompts = _few_prompts(tmp_path / "prompts.jsonl", per_task=2)
    assert main(_args(tmp_path, sft, prompts)) == 0
    out = tmp_path / "onpolicy" / "pref_train.jsonl"
    assert f"wrote {out}" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    manifest = json.loads((tmp_path / "onpolicy" / "pref_train.jsonl.manifest.json").read_text())
    tasks = manifest["tasks"]
    assert manifest["prompts"] == 8 and manifest["pairs"] == len(rows) and manifest["seed"] == 0
    assert manifest["sft_model"] == str(sft) and manifest["recipe"]["pairs"]["k"] == 2
    assert set(tasks) == {"triage", "provider_routing", "reasoning", "summarization"}
    for stats in tasks.values():  # min_gap 0 with the gold answer competing: only balance can drop a prompt
        assert stats["prompts"] == 2 and stats["dropped_gap"] == stats["dropped_identical"] == 0
        assert stats["kept"] == 2 - stats["dropped_balance"] and sum(stats["sample_errors"].values()) == 4
        assert stats["sample_seconds"] >= 0
    assert len(rows) >= 6
    for row in rows:
        assert set(row) == {"id", "task", "prompt", "chosen", "rejected", "meta", "scores", "chosen_source"}
        for side in ("chosen", "rejected"):
            assert [m["role"] for m in row[side]] == ["assistant"] and isinstance(row[side][0]["content"], str)
        assert row["chosen"] != row["rejected"] and row["chosen_source"] in ("sample", "reference")
        assert row["scores"]["chosen"] >= row["scores"]["rejected"] + 0.0
        assert row["meta"]["error_type"] and "chosen_error_type" in row["meta"]
    # the DPO stage's loader reads the file as is, and DPO's rendering accepts every pair
    dpo = load_recipe(REPO / "recipes" / "smollm2-135m" / "dpo-onpolicy.yaml", [f"data.train={out}"])
    train, evals = load_stage_data(dpo.data, "preference", dpo.seed)
    assert [r["id"] for r in train] == [r["id"] for r in rows] and evals == []
    for row in train:
        rendered = render_pair(tokenizer, row, dpo.data.max_length)
        assert rendered["chosen_ids"] and rendered["rejected_ids"]
    # the same recipe again: nothing regenerated
    monkeypatch.setattr(pairs_run, "sample_answers", lambda *a, **k: pytest.fail("regenerated"))
    assert main(_args(tmp_path, sft, prompts)) == 0
    assert "already written" in capsys.readouterr().out


def test_without_finished_sft_says_run_make_sft(tmp_path, capsys):
    prompts = _few_prompts(tmp_path / "prompts.jsonl", per_task=1)
    assert main(_args(tmp_path, tmp_path / "no-sft", prompts)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no finished SFT run" in err[0] and "run `make sft` first" in err[0]
    assert not (tmp_path / "onpolicy").exists()


def test_a_declared_task_missing_its_gold_fails_before_loading_the_model(tmp_path, capsys):
    sft = tmp_path / "sft"
    (sft / "final").mkdir(parents=True)  # finished on paper; loading it would fail, so nothing may load it
    (sft / "metrics.json").write_text("{}\n")
    (sft / "recipe.yaml").write_text("tasks:\n  wound_care: {type: label, labels: [clinic, ed], gold: where}\n")
    row = _sft_row("wound_care", 0, "Answer: clinic", {})  # the SFT run declared the task: its gold must be there
    prompts = write_jsonl(tmp_path / "custom.jsonl", [row])
    assert main(_args(tmp_path, sft, prompts, "data.tasks=[]")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "of task 'wound_care' has no 'where' (its gold label)" in err[0]


def test_a_task_nobody_declared_is_paired_by_closeness_to_the_gold_answer():
    row = _sft_row("wound_care", 0, "Clean the wound and apply a dressing.", {})
    answers = [["Clean the wound and apply a dressing today.", "Take aspirin."]]
    cfg = PairsSection(k=2, min_gap=0.1, include_reference=False, balance=True)
    pairs, _ = pairs_run.build_pairs([row], answers, cfg, seed=0, tasks=registry())
    assert (
        pairs[0]["chosen"][0]["content"].startswith("Clean the wound")
        and pairs[0]["rejected"][0]["content"] == "Take aspirin."
    )
    assert pairs[0]["scores"]["chosen"] > pairs[0]["scores"]["rejected"]


def test_help_describes_pairs_generate(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["pairs", "generate", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "usage: align pairs generate" in text and "min_gap" in text and "--force" in text
