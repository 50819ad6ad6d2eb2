"""The report stage end to end on the tiny model: every variant, every task, saved generations reused on rerun."""

import json
import shutil

import align.report.run as report_run
from align.config import load_recipe
from align.train.dpo import run_dpo
from align.train.sft import run_sft
from tests.conftest import REPO


def _report_recipe(tmp_path, tiny_model_dir, *extra):
    out = tmp_path / "outputs" / "default"
    return load_recipe(
        REPO / "recipes" / "smollm2-135m" / "report.yaml",
        [
            f"output_root={tmp_path / 'outputs'}",
            f"model.name={tiny_model_dir}",
            f"report.sft={out / 'sft'}",
            f"report.dpo={out / 'dpo'}",
            "report.max_examples_per_task=2",
            "report.max_pairs_per_task=2",
            "report.n_boot=200",
            "report.extra_dpo={}",  # the recipe's relative paths would see the checkout's own outputs/
            "report.domain=",
            "report.max_new_tokens={triage: 4, provider_routing: 4, reasoning: 4, summarization: 6}",
            *extra,
        ],
    )


def test_report_compares_three_variants_and_reuses_generations(tmp_path, tiny_recipe, tiny_model_dir, monkeypatch):
    run_sft(tiny_recipe("sft"))
    sft_only = report_run.run_report(_report_recipe(tmp_path, tiny_model_dir))
    first = json.loads((sft_only.out_dir / "report.json").read_text())
    assert set(first["meta"]["variants"]) == {"base", "sft"}  # SFT-only report before DPO exists
    assert first["tasks"]["triage"]["deltas"] == {}
    run_dpo(tiny_recipe("dpo"))
    generated, scored = _count_generations(monkeypatch)
    result = report_run.run_report(_report_recipe(tmp_path, tiny_model_dir))
    assert {v for v, _ in generated} == {"sft_dpo"}  # base and SFT answers reused from the SFT-only report
    assert scored == [8]  # and SFT's pair log-probs: only SFT+DPO's 8 held-out pairs are computed
    report = json.loads((result.out_dir / "report.json").read_text())
    assert set(report["tasks"]) == {"triage", "provider_routing", "reasoning", "summarization"}
    tri = report["tasks"]["triage"]
    assert tri["n"] == 2 and tri["primary_metric"] == "accuracy"
    assert set(tri["variants"]) == {"base", "sft", "sft_dpo"}
    lo, hi = tri["deltas"]["accuracy"]["ci95"]
    assert lo <= tri["deltas"]["accuracy"]["value"] <= hi
    assert "p_mcnemar" in tri["deltas"]["accuracy"] and len(tri["confusion"]["sft"]) == 5
    pref = report["preference"]
    # SFT is the reference: no implicit reward of its own (it would read 0 against itself), only its own ranking
    assert "reward_accuracy" not in pref["sft"] and 0 <= pref["sft"]["logp_accuracy"] <= 1
    assert pref["sft_dpo"]["n"] == 8
    assert set(pref["sft_dpo"]) >= {"reward_accuracy · triage", "reward_accuracy · summarization"}
    assert "loss" in report["training"]["sft"] and "rewards/accuracies" in report["training"]["dpo"]
    gens = [json.loads(line) for line in (result.out_dir / "generations.jsonl").read_text().splitlines()]
    assert sum("text" in g for g in gens) == 3 * 4 * 2 and sum("logps" in g for g in gens) == 2 * 8
    html = (result.out_dir / "report.html").read_text()
    assert "<svg" in html and "http://" not in html and "https://" not in html
    domain = tmp_path / "domain"  # a finished `align domain` run, as the report sees it
    (domain / "final").mkdir(parents=True)
    (domain / "metrics.json").write_text(json.dumps({"perplexity": {"base": 9.5, "domain": 6.0, "n_docs": 3}}))
    extra = [f"report.extra_dpo={{sft_dpo_onpolicy: {tmp_path / 'outputs' / 'default' / 'dpo'}}}"]
    both = report_run.run_report(_report_recipe(tmp_path, tiny_model_dir, *extra, f"report.domain={domain}"))
    report = json.loads((both.out_dir / "report.json").read_text())
    tri = report["tasks"]["triage"]
    assert set(tri["variants"]) == {"base", "sft", "sft_dpo", "sft_dpo_onpolicy"}
    # the same DPO run under a second name: identical generations, so the same difference from SFT
    assert tri["deltas_vs_sft"]["sft_dpo_onpolicy"]["accuracy"] == tri["deltas"]["accuracy"]
    assert report["preference"]["sft_dpo_onpolicy"] == report["preference"]["sft_dpo"]
    assert report["domain"]["perplexity"]["domain"] == 6.0 and "dpo (sft_dpo_onpolicy)" in report["training"]
    generated.clear()
    scored.clear()
    again = report_run.run_report(_report_recipe(tmp_path, tiny_model_dir))
    assert generated == [] and scored == []  # scores recomputed from generations.jsonl, nothing regenerated
    assert json.loads((again.out_dir / "report.json").read_text())["preference"] == pref  # from the saved log-probs
    shutil.rmtree(tmp_path / "outputs" / "default" / "dpo")  # DPO retrained in the same folder (as with --force)
    run_dpo(tiny_recipe("dpo", "train.learning_rate=5e-4"))
    report_run.run_report(_report_recipe(tmp_path, tiny_model_dir))
    assert sorted({v for v, _ in generated}) == ["sft_dpo"]  # its old answers are not reused; the others are
    assert scored == [8]  # nor its old pair log-probs
    generated.clear()
    scored.clear()
    report_run.run_report(_report_recipe(tmp_path, tiny_model_dir, "model.precision=bf16"))
    assert sorted({v for v, _ in generated}) == ["base", "sft", "sft_dpo"]  # answers are tied to the dtype too
    assert scored == [8, 8]


def _count_generations(monkeypatch) -> tuple[list[tuple[str, str]], list[int]]:
    """Record (variant, task) of every generate() call the report makes, and the number of pairs of every pair
    log-prob call, still computing for real."""
    calls: list[tuple[str, str]] = []
    pairs: list[int] = []
    real, real_pairs = report_run.generate, report_run.pair_logps

    def counting(model, tok, prompts, max_new, batch_size, desc, first_line_done=None):
        calls.append(tuple(desc.split("/")))
        return real(model, tok, prompts, max_new, batch_size, desc, first_line_done)

    def counting_pairs(model, tok, rows, max_length):
        pairs.append(len(rows))
        return real_pairs(model, tok, rows, max_length)

    monkeypatch.setattr(report_run, "generate", counting)
    monkeypatch.setattr(report_run, "pair_logps", counting_pairs)
    return calls, pairs


def test_declared_test_data_with_likely_phi_is_refused_before_any_model_loads(tmp_path, tiny_recipe, tiny_model_dir):
    """The report puts prompts into pages meant to be shared: a user's test file is PHI-scanned like training data."""
    import pytest

    from align.errors import UserError

    run_sft(tiny_recipe("sft"))
    test = tmp_path / "mine.jsonl"
    row = {
        "task": "callbacks",  # a task nobody declared: scored against its completion
        "prompt": [{"role": "user", "content": "Call Mr. Alan Smith back at 617-555-0142 about his chest pain."}],
        "completion": [{"role": "assistant", "content": "Called back; advised the ED."}],
    }
    test.write_text(json.dumps(row) + "\n")
    recipe = _report_recipe(tmp_path, tiny_model_dir, f"report.test_data={test}", "report.pref_data=[]")
    with pytest.raises(UserError, match=r"^.*mine.jsonl: possible protected health information: 1 phone"):
        report_run.run_report(recipe)
    assert not (recipe.output_dir / "report.json").exists()
    allowed = _report_recipe(tmp_path, tiny_model_dir, f"report.test_data={test}", "report.pref_data=[]")
    result = report_run.run_report(allowed, allow_phi=True)  # `align report ... --allow-phi` (or report.allow_phi)
    assert json.loads((result.out_dir / "report.json").read_text())["tasks"]["callbacks"]["n"] == 1
