"""Benchmark arithmetic and mechanics: FLOPs and MFU by hand, medians and spreads, the reference pass charged per pair,
ratios of medians against both TRL rows, the alternating plan, the time budget, token counting, the plot, and one
2-step run of every variant on the tiny model."""

import json

import pytest
import torch
from transformers import TrainerControl, TrainerState

from align.bench import run as bench_run
from align.bench import worker
from align.bench.flops import mfu, train_flops
from align.bench.plot import bench_svg
from align.bench.run import check_targets, derive, plan, spread, summarize
from align.errors import UserError
from tests.conftest import toy_rows, write_jsonl


def test_train_flops_by_hand():
    # LoRA: 4N per trained token + 2N per reference token: N=100, 10 trained, 10 ref -> 4000 + 2000
    assert train_flops(100, 10, 10, lora=True) == 6000
    # full fine-tuning: 6N per token, no reference
    assert train_flops(100, 10, 0, lora=False) == 6000
    assert mfu(6000, 2.0, 1000) == 3.0 and mfu(1, 0, 1) == 0.0


def test_spread_is_median_and_min_max():
    assert spread([4.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 4.0, "spread": 1.5}
    assert spread([1.0, 3.0])["median"] == 2.0  # even count: the mean of the middle two


def _run(stage, variant, rate, rss=1000.0, data_rows=64, ref_seconds=0.0, ref_pairs=0, scale=1):
    """A raw run whose rate (pairs/s for DPO, non-pad tokens/s for SFT) is `rate` when no reference pass is charged."""
    run = {
        "stage": stage,
        "variant": variant,
        "row": variant if scale == 1 else f"{variant}_x{scale}",
        "data_rows": data_rows * scale,
        "measured_seconds": 10.0,
        "measured_steps": 5,
        "epochs": 0.5,
        "data_tokens": int(rate * 10) if stage == "sft" else 1000,
        "real_tokens": 800,
        "processed_tokens": 1000,
        "ref_tokens": 0,
        "ref_seconds": ref_seconds,
        "ref_pairs": ref_pairs,
        "params": 10,
        "peak_rss_mb": rss,
    }
    if stage == "dpo":
        run["pairs"] = round(rate * 10)
    return run


def test_derive_charges_the_reference_pass_per_pair_trained():
    run = _run("dpo", "align", 0.4, ref_seconds=8.0, ref_pairs=16) | {"ref_tokens": 800}
    d = derive(run, peak=50.0)
    assert d["ref_seconds_charged"] == pytest.approx(2.0)  # 8 s over 16 pairs, 4 pairs trained
    assert d["seconds"] == pytest.approx(12.0)
    assert d["pairs_per_s"] == pytest.approx(4 / 12)
    assert d["ms_per_token"] == pytest.approx(12.0)  # 12 s over 1000 data tokens
    assert d["padding_fraction"] == pytest.approx(0.2)
    # 4N x 800 trained + 2N x 800 reference = 48000 FLOPs in 12 s against 50 FLOP/s
    assert d["mfu"] == pytest.approx(48000 / 12 / 50)


def test_ratios_are_of_medians_against_both_trl_rows():
    runs = [
        *(_run("dpo", "trl_default", r, rss=2000.0) for r in (0.2, 0.3, 1.0)),  # median 0.3 (mean 0.5)
        *(_run("dpo", "trl_best", r, rss=1000.0) for r in (0.6, 0.5, 0.7)),  # median 0.6
        *(_run("dpo", "align", r, rss=1500.0) for r in (1.2, 0.9, 1.5)),  # median 1.2
        *(_run("dpo", "align", 1.2, scale=2) | {"data_tokens": 800} for _ in range(3)),  # 12.5 ms/token
        _run("sft", "trl_default", 100.0),
        _run("sft", "trl_best", 200.0),
        _run("sft", "align", 300.0),
    ]
    table = summarize(runs, peak=1e9)
    dpo = table["dpo"]["rows"]
    assert list(dpo) == ["trl_default", "trl_best", "align", "align_x2"]
    assert dpo["align"]["rate"] == pytest.approx({"median": 1.2, "min": 0.9, "max": 1.5, "spread": 0.5})
    assert dpo["align"]["vs_trl_default"] == pytest.approx(4.0)
    assert dpo["align"]["vs_trl_best"] == pytest.approx(2.0)
    assert dpo["trl_default"]["vs_trl_default"] == pytest.approx(1.0)
    assert dpo["align"]["rss_vs_trl_default"] == pytest.approx(0.75)
    assert dpo["align"]["rss_vs_trl_best"] == pytest.approx(1.5)
    assert dpo["align_x2"]["vs_trl_default"] is None  # no TRL row at 128 pairs to compare with
    assert dpo["align_x2"]["ms_per_token_vs_x1"] == pytest.approx(12.5 / 10.0)  # x1: 10 s over 1000 tokens
    assert table["sft"]["rows"]["align"]["vs_trl_best"] == pytest.approx(1.5)
    assert table["sft"]["rows"]["trl_default"]["padding_fraction"] == pytest.approx(0.2)

    met = {t["target"]: t["met"] for t in check_targets(table)}
    assert met["sft align >= 1.1x trl_best"] and met["dpo align >= 2.5x trl_default"]
    assert met["dpo align >= 1.5x trl_best"]
    assert not met["dpo align padding <= 2 %"]  # 20 % padding in these runs
    assert met["dpo align peak RSS <= trl_default's"] and not met["dpo align peak RSS <= trl_best's"]


def test_a_missing_row_misses_its_target():
    table = summarize([_run("dpo", "trl_default", 0.3), _run("dpo", "align", 0.6)], peak=1e9)
    met = {t["target"]: (t["met"], t["value"]) for t in check_targets(table)}
    assert met["dpo align >= 2.5x trl_default"] == (False, pytest.approx(2.0))
    assert met["dpo align >= 1.5x trl_best"] == (False, None)


def test_plan_alternates_the_rows_of_each_stage():
    runs = plan(quick=False)
    sft = ["trl_default", "trl_best", "align", "align_x2"]
    dpo = ["trl_default", "trl_best", "align", "align_unshared", "align_x2"]
    assert [r["row"] for r in runs] == sft + sft + dpo + dpo
    assert [r["alternation"] for r in runs[:8]] == [0] * 4 + [1] * 4
    assert {r["row"]: r["data_rows"] for r in runs if r["stage"] == "dpo"} == {
        "trl_default": 64,
        "trl_best": 64,
        "align": 64,
        "align_unshared": 64,
        "align_x2": 128,
    }
    assert {r["budget_s"] for r in runs} == {60.0}
    quick = plan(quick=True)
    assert [r["row"] for r in quick] == sft + dpo and {r["budget_s"] for r in quick} == {0.0}


def _step(budget, step, control):
    state = TrainerState()
    state.global_step = step
    return budget.on_step_end(None, state, control)


def test_time_budget_stops_at_the_first_step_past_the_budget_after_warm_up():
    times = iter([100.0, 130.0, 159.0, 161.0])  # step 1 (warm-up) ends at 100 s, however long it took
    counts = iter([{"real": 7}, {"real": 10}, {"real": 20}, {"real": 31}])
    budget = worker.TimeBudget(60.0, warmup_steps=1, probe=lambda: next(counts), clock=lambda: next(times))
    control = TrainerControl()
    for step in (1, 2, 3):
        assert not _step(budget, step, control).should_training_stop
    assert _step(budget, 4, control).should_training_stop  # 61 s measured
    assert (budget.measured_steps, budget.measured_seconds) == (3, 61.0)
    assert budget.delta() == {"real": 24}  # the warm-up step's 7 tokens are not measured


def test_zero_budget_is_warm_up_then_one_step():
    times = iter([1.0, 2.0])
    budget = worker.TimeBudget(0.0, clock=lambda: next(times))
    control = TrainerControl()
    assert not _step(budget, 1, control).should_training_stop
    assert _step(budget, 2, control).should_training_stop and budget.measured_steps == 1


def test_batch_counts_padded_and_padding_free():
    padded = {
        "input_ids": torch.zeros(2, 4, dtype=torch.long),
        "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]),
    }
    assert worker.batch_counts(padded) == worker.Batch(real=5, processed=8, sequences=2)
    packed = {"input_ids": torch.zeros(1, 6, dtype=torch.long), "position_ids": torch.tensor([[0, 1, 2, 0, 1, 0]])}
    assert worker.batch_counts(packed) == worker.Batch(real=6, processed=6, sequences=3)


def test_bench_svg_draws_a_bar_and_whisker_per_row():
    runs = [_run("dpo", v, r) for v, r in (("trl_default", 0.3), ("align", 1.2))] + [_run("dpo", "align", 1.1, scale=2)]
    runs += [_run("sft", "trl_default", 100.0), _run("sft", "align", 300.0)]
    svg = bench_svg(summarize(runs, peak=1e9))
    assert svg.startswith("<?xml") and 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert svg.count('class="bar"') == 5 and svg.count('class="whisker"') == 5
    assert "dpo_align 128 pairs" not in svg and "align 128 pairs: 1.1" in svg


RATES = {"trl_default": 0.2, "trl_best": 0.4, "align": 1.0, "align_unshared": 0.8}


def test_run_bench_writes_json_svg_and_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / bench_run.DATA["sft"], toy_rows(32, "sft"))
    write_jsonl(tmp_path / bench_run.DATA["dpo"], toy_rows(16, "pref"))
    seen = []

    def fake_worker(cfg):  # a run at the variant's rate (x 100 tokens/s for SFT), twice the rows for align_x2
        seen.append(cfg)
        rate = RATES[cfg["variant"]] * (100 if cfg["stage"] == "sft" else 1)
        return cfg | _run(cfg["stage"], cfg["variant"], rate, data_rows=cfg["data_rows"]) | {"row": cfg["row"]}

    monkeypatch.setattr(bench_run, "run_worker", fake_worker)
    monkeypatch.setattr(bench_run, "matmul_flops_per_s", lambda dtype: 1e9)
    bench = bench_run.run_bench(tmp_path / "out", quick=True)
    assert len({c["cache_dir"] for c in seen}) == len(seen) == 9  # a cold reference cache for every run
    saved = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert (
        saved["dpo"]["rows"]["align"]["vs_trl_default"]
        == pytest.approx(5.0)
        == bench["dpo"]["rows"]["align"]["vs_trl_default"]
    )
    assert saved["precision"] in ("bf16", "fp32") and len(saved["raw"]) == 9
    assert (tmp_path / "out" / "bench.svg").read_text().count('class="bar"') == 9
    table = capsys.readouterr().out
    assert "met    dpo align >= 1.5x trl_best: 2.50x" in table and "MISSED dpo align padding <= 2 %: 20.0 %" in table
    assert table.count("%") >= 9 * 3  # spread, padding and MFU on every row


@pytest.mark.parametrize(
    ("stage", "variant"),
    [("sft", v) for v in worker.SFT_VARIANTS] + [("dpo", v) for v in worker.DPO_VARIANTS],
)
def test_every_variant_runs_two_steps_on_the_tiny_model(tmp_path, tiny_model_dir, stage, variant):
    data = write_jsonl(tmp_path / "rows.jsonl", toy_rows(24, "sft" if stage == "sft" else "pref"))
    cfg = {
        "stage": stage,
        "variant": variant,
        "data": str(data),
        "data_rows": 24,
        "budget_s": 0.0,
        "warmup_steps": 1,
        "model": str(tiny_model_dir),
        "precision": "fp32",
        "out": str(tmp_path / "run"),
        "cache_dir": str(tmp_path / "refcache"),
    }
    r = worker.main(cfg)
    json.dumps(r)  # what the worker prints for the parent
    assert r["measured_steps"] == 1 and r["measured_seconds"] > 0
    assert 0 < r["real_tokens"] <= r["processed_tokens"] and r["peak_rss_mb"] > 0
    assert r["attention"] == ("sdpa_blocks" if variant.startswith("align") else "sdpa")  # CPU: align's own choice
    padded = variant == "trl_default" or (stage == "dpo" and variant == "trl_best")
    assert (r["real_tokens"] < r["processed_tokens"]) == padded  # toy rows differ in length
    if stage == "sft":
        assert r["sequences"] == 8 if variant == "trl_default" else 1 < r["sequences"] < 24  # rows in one bin
        assert r["real_tokens"] == r["data_tokens"] and r["ref_tokens"] == 0
        return
    assert r["pairs"] == 4 and r["trl_padding_free"] is False
    assert (r["ref_pairs"] == 24) == (r["ref_seconds"] > 0) == (variant != "trl_default")
    assert r["share_prompt"] == (variant == "align")
    if variant == "align":  # the shared prompt is computed once: fewer tokens than the data's two full rows per pair
        assert r["real_tokens"] < r["data_tokens"]
    if variant == "align_unshared":
        assert r["real_tokens"] == r["data_tokens"]


def test_a_stage_filter_plans_and_checks_that_stage_only(tmp_path, monkeypatch):
    runs = plan(quick=False, stages=("dpo",))
    assert {r["stage"] for r in runs} == {"dpo"} and len(runs) == 2 * len(bench_run.PLAN["dpo"])
    table = summarize([_run("dpo", "trl_default", 0.3), _run("dpo", "align", 0.9)], peak=1e9)
    assert {t["target"].split()[0] for t in check_targets(table)} == {"dpo"}  # no SFT target missed for lack of rows
    monkeypatch.chdir(tmp_path)  # no data at all: a wrong stage name fails before anything else
    with pytest.raises(UserError, match="no bench stage ppo.*choose from sft, dpo"):
        bench_run.run_bench(tmp_path / "out", stages=("ppo",))
