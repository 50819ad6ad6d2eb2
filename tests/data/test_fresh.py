"""The fresh test set: N new prompts per task from another seed, none near-identical to any bundled prompt."""

import json

import pytest

from align.cli import main
from align.data.fresh import bundled_prompts, fresh_rows, prompt_text, write_fresh_test
from align.data.tasks.common import NEAR_DUP_JACCARD, jaccard, token_set
from align.errors import UserError
from tests.conftest import REPO

BUNDLED = REPO / "data" / "clinical"


@pytest.mark.parametrize("task", ["triage", "reasoning"])
def test_fresh_prompts_are_new_and_paired(task):
    against = bundled_prompts(BUNDLED, task)
    assert len(against) == 80 + 24 + 240  # test + eval + train prompts of the task
    rows = fresh_rows(task, 12, seed=7, against=against)
    assert [r["id"] for r in rows["sft"]] == [f"{task}-fresh7-{i:04d}" for i in range(12)]
    assert [r["prompt"] for r in rows["pref"]] == [r["prompt"] for r in rows["sft"]]
    for row in rows["sft"]:
        assert max(jaccard(token_set(prompt_text(row)), seen) for seen in against) < NEAR_DUP_JACCARD
    assert fresh_rows(task, 12, seed=7, against=against) == rows  # deterministic


def test_a_seed_that_only_repeats_the_bundled_data_is_refused():
    # seed 0 is the bundled seed: it regenerates the bundled test items, all near-duplicates
    with pytest.raises(UserError, match=r"only 0 of \d+ generated prompts are new"):
        fresh_rows("triage", 5, seed=0, against=bundled_prompts(BUNDLED, "triage"))
    with pytest.raises(UserError, match="at least one prompt"):
        fresh_rows("triage", 0, seed=7, against=[])
    with pytest.raises(UserError, match="seed 0 is the seed the bundled data was built with"):
        write_fresh_test(BUNDLED, REPO / "unused", ["triage"], 5, seed=0)


def test_cli_writes_sft_and_pref_test_files(tmp_path, capsys):
    out = tmp_path / "fresh"
    args = ["data", "fresh-test", "--n", "6", "--tasks", "triage", "reasoning", "--against", str(BUNDLED)]
    assert main([*args, "--out", str(out)]) == 0
    sft = [json.loads(x) for x in (out / "sft_test.jsonl").read_text().splitlines()]
    pref = [json.loads(x) for x in (out / "pref_test.jsonl").read_text().splitlines()]
    assert [r["task"] for r in sft] == ["triage"] * 6 + ["reasoning"] * 6
    assert all("completion" in r for r in sft) and all(r["chosen"] != r["rejected"] for r in pref)
    assert json.loads((out / "manifest.json").read_text())["seed"] == 7
    assert "6 prompts per task" in capsys.readouterr().out
    assert main(["data", "fresh-test", "--against", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
