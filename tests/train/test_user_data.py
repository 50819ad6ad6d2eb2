"""Bring-your-own data through the stages: a mapped CSV trains with DPO; likely PHI stops training unless allowed."""

import csv
import json

import pytest

from align.data.load import load_stage_data
from align.data.phi import scan_phi
from align.errors import UserError
from align.train.dpo import run_dpo
from align.train.sft import run_sft
from tests.conftest import REPO


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "good_answer", "bad_answer"])
        w.writerows(rows)
    return path


def test_short_dpo_run_on_a_mapped_csv(tmp_path, tiny_recipe):
    run_sft(tiny_recipe("sft"))
    rows = [
        (f"Which clinic handles refill request {i}?", f"Pharmacist, because refill {i}.", f"Front desk {i}.")
        for i in range(10)
    ]
    data = _write_csv(tmp_path / "pairs.csv", rows)
    recipe = tiny_recipe("dpo", "data.eval=[]", "data.test_split_size=0.2")
    recipe.data.train[0].path = str(data)
    recipe.data.train[0].columns = {"prompt": "question", "chosen": "good_answer", "rejected": "bad_answer"}
    recipe.data.train[0].task = "refills"
    train, evals = load_stage_data(recipe.data, "preference", 0)
    assert len(train) == 8 and len(evals) == 2 and train[0]["task"] == "refills"
    assert train[0]["prompt"] == [{"role": "user", "content": train[0]["prompt"][0]["content"]}]
    result = run_dpo(recipe)
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    assert metrics["train_pairs"] == 8 and metrics["global_step"] == 3
    assert metrics["eval"]["eval_loss"] > 0


def test_phi_in_user_data_refuses_training_unless_allowed(tmp_path, tiny_recipe):
    rows = [(f"Mr. Johnson called from 555-123-4567 about refill {i}", "Pharmacist.", "Front desk.") for i in range(4)]
    data = _write_csv(tmp_path / "phi.csv", rows)
    recipe = tiny_recipe("sft")
    recipe.data.train[0].path = str(data)
    recipe.data.train[0].columns = {"prompt": "question", "completion": "good_answer"}
    recipe.data.eval = []
    with pytest.raises(UserError, match="allow_phi") as err:
        run_sft(recipe)
    assert "555-123-4567" not in str(err.value) and "Johnson" not in str(err.value)
    assert not recipe.output_dir.exists()
    assert run_sft(recipe, allow_phi=True).final_dir.is_dir()


def test_bundled_data_passes_the_phi_scan_clean():
    files = sorted((REPO / "data" / "clinical").glob("*.jsonl"))
    assert len(files) == 8  # six task files and the two domain-corpus notes files
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    report = scan_phi(rows)
    assert report.clean, report.format()
