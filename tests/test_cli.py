"""The command line as a user meets it: --help that tells the truth, one-line errors with exit code 2."""

import subprocess
import sys

import pytest

from align.cli import build_parser, main


@pytest.mark.parametrize(
    "cmd", [[], ["domain"], ["sft"], ["dpo"], ["report"], ["data", "validate"], ["data", "inspect"], ["bench"]]
)
def test_help_exits_zero_and_describes(cmd, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*cmd, "--help"])
    assert exit_.value.code == 0
    assert "usage: align" in capsys.readouterr().out


def test_dpo_without_sft_says_run_make_sft(tmp_path, tiny_recipe, capsys):
    recipe = tmp_path / "dpo.yaml"
    recipe.write_text(
        f"stage: dpo\noutput_root: {tmp_path}/outputs\ndpo:\n  init_from: {tmp_path}/outputs/default/sft\n"
    )
    assert main(["dpo", str(recipe)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no finished SFT run" in err[0] and "run `make sft` first" in err[0]
    assert not (tmp_path / "outputs" / "default" / "dpo").exists()


def test_misspelled_recipe_key_is_one_line_exit_2(tmp_path, capsys):
    recipe = tmp_path / "sft.yaml"
    recipe.write_text("stage: sft\ntrain:\n  learning_rat: 1\n")
    assert main(["sft", str(recipe)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"{recipe}:3: unknown key 'train.learning_rat'; did you mean 'learning_rate'? valid keys are SFTConfig's: "
        "https://huggingface.co/docs/trl/sft_trainer#trl.SFTConfig"
    ]
    assert not (tmp_path / "outputs").exists()


def test_bad_training_data_is_one_line_and_writes_nothing(tmp_path, tiny_model_dir):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a", oops\n')
    recipe = tmp_path / "dpo.yaml"
    recipe.write_text(
        f"stage: sft\noutput_root: {tmp_path}/outputs\nmodel:\n  name: {tiny_model_dir}\ndata:\n  train: {bad}\n"
    )
    proc = subprocess.run([sys.executable, "-m", "align.cli", "sft", str(recipe)], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(f"{bad}:2: ") and "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()
