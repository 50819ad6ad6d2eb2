"""A user's own tasks through sft -> dpo -> report on the tiny model: a multiple-choice preference CSV and a labelled
CSV with their own column names, declared in the SFT recipe; the report scores them with their own metrics and
paired CIs beside a bundled task, by generation and by log-likelihood."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from align.config import load_recipe
from align.report.run import run_report
from align.train.dpo import run_dpo
from align.train.sft import run_sft
from tests.conftest import REPO

QUIZ = [  # (stem, options, correct)
    (f"Patient {i}: which drug treats condition {i}?", ["aspirin", "heparin", "insulin", "oxygen"], "ABCD"[i % 4])
    for i in range(16)
]
FLAGS = ["critical", "abnormal", "normal"]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _quiz_csv(path: Path) -> Path:
    rows = []
    for stem, options, correct in QUIZ:
        wrong = "ABCD"[("ABCD".index(correct) + 1) % 4]
        rows.append([stem, json.dumps(options), correct, f"Answer: {correct}", f"Answer: {wrong}"])
    return _write_csv(path, ["stem", "choices", "correct", "good", "bad"], rows)


def _labs_csv(path: Path) -> Path:
    rows = []
    for i in range(16):
        flag = FLAGS[i % 3]
        rows.append(
            [
                f"Potassium {3 + i * 0.3:.1f} mmol/L in patient {i}.",
                flag,
                f"Flag: {flag}",
                f"Flag: {FLAGS[(i + 1) % 3]}",
            ]
        )
    return _write_csv(path, ["finding", "result_flag", "good_note", "bad_note"], rows)


TASKS = """tasks:
  quiz: {type: choice, options: choices, gold: correct}
  labs: {type: label, labels: [critical, abnormal, normal], gold: result_flag, ordinal: true, answer_prefix: "Flag: "}
"""


def _recipes(tmp_path: Path, tiny_model_dir: Path) -> dict[str, Path]:
    quiz, labs = _quiz_csv(tmp_path / "quiz.csv"), _labs_csv(tmp_path / "labs.csv")
    out = tmp_path / "outputs"
    common = f"run_name: mine\noutput_root: {out}\nmodel:\n  name: {tiny_model_dir}\n  precision: fp32\n"
    data = (
        "data:\n  train:\n"
        f"    - {{path: {quiz}, task: quiz, columns: {{prompt: stem, chosen: good, rejected: bad}}}}\n"
        f"    - {{path: {labs}, task: labs, columns: {{prompt: finding, chosen: good_note, rejected: bad_note}}}}\n"
        "  test_split_size: 0.25\n  max_length: 128\n"
    )
    train = "train:\n  max_steps: 2\n  per_device_train_batch_size: 2\n  logging_steps: 1\n  save_steps: 100\n"
    paths = {
        "sft": common + "stage: sft\n" + data + train + TASKS,
        "dpo": common + "stage: dpo\n" + data + train + f"dpo:\n  init_from: {out}/mine/sft\n",
        "report": common
        + "stage: report\nreport:\n"
        + f"  sft: {out}/mine/sft\n  dpo: {out}/mine/dpo\n  n_boot: 200\n  max_new_tokens: {{quiz: 4, labs: 4, triage: 4}}\n"
        + "  max_examples_per_task: 4\n",
    }
    for stage, text in paths.items():
        (tmp_path / f"{stage}.yaml").write_text(text)
    return {stage: tmp_path / f"{stage}.yaml" for stage in paths}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    tmp_path = tmp_path_factory.mktemp("custom")
    recipes = _recipes(tmp_path, tiny_model_dir)
    run_sft(load_recipe(recipes["sft"]))
    run_dpo(load_recipe(recipes["dpo"]))
    return tmp_path, recipes


def test_declared_tasks_are_scored_on_what_training_held_out(trained):
    tmp_path, recipes = trained
    sft = tmp_path / "outputs" / "mine" / "sft"
    held = [json.loads(line) for line in (sft / "heldout.jsonl").read_text().splitlines()]
    assert {r["task"] for r in held} == {"quiz", "labs"} and len(held) == 8  # 25% of 16 prompts per file
    assert all("correct" in r["meta"] or "result_flag" in r["meta"] for r in held)  # the CSVs' own columns
    report = json.loads((run_report(load_recipe(recipes["report"])).out_dir / "report.json").read_text())
    assert report["meta"]["dropped_trained_prompts"] == 0 and report["meta"]["test_data"].endswith("sft/heldout.jsonl")
    quiz, labs = report["tasks"]["quiz"], report["tasks"]["labs"]
    assert (quiz["type"], quiz["scoring"], quiz["n"], quiz["chance"]) == ("choice", "generate", 4, {"accuracy": 0.25})
    assert set(quiz["variants"]) == {"base", "sft", "sft_dpo"}
    for section in (quiz, labs):
        for metric in ("accuracy", "unparsed_rate"):
            lo, hi = section["deltas"][metric]["ci95"]
            assert lo <= section["deltas"][metric]["value"] <= hi
    assert {"under_call_rate", "over_call_rate", "error_cost"} <= set(labs["variants"]["sft"])
    assert labs["labels"] == FLAGS and len(labs["confusion"]["sft"]) == 3
    assert set(report["preference"]["sft_dpo"]) >= {"reward_accuracy · quiz", "reward_accuracy · labs"}
    md = (tmp_path / "outputs" / "mine" / "report" / "report.md").read_text()
    assert "## quiz" in md and "## labs" in md and "Chance level (accuracy): a uniform guess 0.250" in md
    html = (tmp_path / "outputs" / "mine" / "report" / "report.html").read_text()
    assert "<h2>quiz</h2>" in html and "<h2>labs</h2>" in html and "95% CI" in html


def test_beside_a_bundled_task_and_by_log_likelihood(trained, monkeypatch):
    tmp_path, recipes = trained
    monkeypatch.chdir(REPO)  # the bundled test file
    sft = tmp_path / "outputs" / "mine" / "sft"
    extra = [
        f"report.test_data=[{{path: data/clinical/sft_test.jsonl}}, {{path: {sft}/heldout.jsonl}}]",
        "report.max_examples_per_task=3",
        "tasks={quiz: {scoring: loglik}}",
        "run_name=loglik",
    ]
    recipe = load_recipe(recipes["report"], extra)
    report = json.loads((run_report(recipe).out_dir / "report.json").read_text())
    assert {"triage", "provider_routing", "reasoning", "summarization", "quiz", "labs"} <= set(report["tasks"])
    quiz = report["tasks"]["quiz"]
    assert quiz["scoring"] == "loglik" and quiz["variants"]["sft"]["unparsed_rate"] == 0.0  # a candidate every time
    answers = [e["sft"] for e in quiz["examples"]]
    assert set(answers) <= {"Answer: A", "Answer: B", "Answer: C", "Answer: D"}
    assert report["tasks"]["triage"]["scoring"] == "generate"


def test_a_declared_gold_missing_on_a_row_fails_before_any_model_loads(tmp_path, tiny_model_dir):
    recipes = _recipes(tmp_path, tiny_model_dir)
    rows = list(csv.reader(open(tmp_path / "labs.csv", encoding="utf-8")))
    rows[5][1] = "borderline"  # line 6 of the file: a label outside the declared set
    _write_csv(tmp_path / "labs.csv", rows[0], rows[1:])
    with pytest.raises(Exception) as err:
        run_sft(load_recipe(recipes["sft"]))
    assert str(err.value).startswith(f"{tmp_path / 'labs.csv'}:6: of task 'labs' has gold label 'borderline'")
    assert not (tmp_path / "outputs").exists()


def test_validate_reports_the_same_task_problems(tmp_path, tiny_model_dir, capsys):
    from align.cli import main

    recipes = _recipes(tmp_path, tiny_model_dir)
    assert main(["data", "validate", str(recipes["sft"])]) == 0
    rows = list(csv.reader(open(tmp_path / "quiz.csv", encoding="utf-8")))
    rows[3][2] = "E"  # line 4: an answer that is not one of the four options
    _write_csv(tmp_path / "quiz.csv", rows[0], rows[1:])
    capsys.readouterr()
    assert main(["data", "validate", str(recipes["sft"])]) == 1
    out = capsys.readouterr().out
    assert f"task check: {tmp_path / 'quiz.csv'}:4: of task 'quiz' has gold answer 'E', neither an option letter" in out
