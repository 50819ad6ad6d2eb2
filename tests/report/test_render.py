"""report.json -> report.md, self-contained report.html and plots/*.svg; partial reports; escaping of model text."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path

import pytest

from align.errors import UserError
from align.report import svg
from align.report.render import check_report, render_report
from align.report.tables import verdict

FIXTURE = Path(__file__).parent / "fixtures" / "report.json"
EXPECTED_PLOTS = {
    "triage_scores.svg",
    "triage_confusion_sft.svg",
    "triage_confusion_sft_dpo.svg",
    "summarization_scores.svg",
    "training_sft_loss.svg",
    "training_dpo_loss.svg",
    "training_dpo_rewards_accuracies.svg",
    "training_dpo_rewards_margins.svg",
}
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def report() -> dict:
    report = json.loads(FIXTURE.read_text(encoding="utf-8"))
    check_report(report, str(FIXTURE))
    return report


def _plots(out: Path) -> dict[str, ET.Element]:
    return {p.name: ET.parse(p).getroot() for p in (out / "plots").glob("*.svg")}  # parse = well-formed XML


def _count(root: ET.Element, tag: str, cls: str) -> int:
    return sum(1 for el in root.iter(SVG_NS + tag) if el.get("class") == cls)


def test_full_report_writes_every_plot(report: dict, tmp_path: Path) -> None:
    written = render_report(report, tmp_path)
    assert {p.name for p in written} == EXPECTED_PLOTS | {"report.md", "report.html"}
    plots = _plots(tmp_path)
    assert set(plots) == EXPECTED_PLOTS
    # triage: 5 share metrics x 3 variants = 15 bars; whiskers on SFT+DPO for the 3 metrics with a delta CI.
    assert _count(plots["triage_scores.svg"], "rect", "bar") == 15
    assert _count(plots["triage_scores.svg"], "g", "whisker") == 3
    # summarization: length_words (48.5 words) is not a share, so 3 metrics x 2 variants.
    assert _count(plots["summarization_scores.svg"], "rect", "bar") == 6
    # confusion: 5 gold rows x (5 predicted + unparsed) cells.
    assert _count(plots["triage_confusion_sft.svg"], "rect", "cell") == 30
    for name in (
        EXPECTED_PLOTS - {"triage_scores.svg", "summarization_scores.svg"} - {n for n in plots if "confusion" in n}
    ):
        assert _count(plots[name], "polyline", "line") == 1, name


def test_whisker_spans_the_given_interval() -> None:
    chart = svg.bar_chart("t", ["accuracy"], {"SFT": [0.6], "SFT+DPO": [0.7]}, {"SFT+DPO": [(0.62, 0.78)]})
    (whisker,) = [g for g in ET.fromstring(chart).iter("g") if g.get("class") == "whisker"]
    stem = next(iter(whisker))
    # y axis 0..1 maps to pixels 256..34 (HEIGHT - BOTTOM .. TOP): 0.62 -> 256 - 0.62*222 = 118.36, 0.78 -> 82.84.
    assert float(stem.get("y1")) == pytest.approx(118.36, abs=0.06)
    assert float(stem.get("y2")) == pytest.approx(82.84, abs=0.06)


def test_html_is_self_contained_and_escapes_model_text(report: dict, tmp_path: Path) -> None:
    render_report(report, tmp_path)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    for forbidden in ("http://", "https://", "src=", "<script", "<link"):
        assert forbidden not in html, forbidden
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "high risk &amp; needs an ECG &lt; 10 min." in html
    # every plot is inline as well, and each inline SVG is well-formed
    inline = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    assert len(inline) == len(EXPECTED_PLOTS)
    for chart in inline:
        ET.fromstring(chart)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    for name in EXPECTED_PLOTS:
        assert f"(plots/{name})" in md


def test_verdict_lines(report: dict) -> None:
    line = verdict("triage", report["tasks"]["triage"])
    assert line == (
        "triage: accuracy SFT 0.600 → SFT+DPO 0.700 (Δ +0.100, 95% CI [+0.020, +0.180], McNemar p = 0.0215): SFT+DPO better"
    )
    assert verdict("summarization", report["tasks"]["summarization"]).endswith("no significant difference")


def test_tables_read_lower_is_better_metrics(report: dict, tmp_path: Path) -> None:
    render_report(report, tmp_path)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    # under-triage fell (delta -0.2, CI below 0): that is an improvement; shorter summaries are "lower", not "worse".
    assert "| accuracy | 0.300 | 0.600 | 0.700 | +0.100 | [+0.020, +0.180] | 0.0215 | SFT+DPO better |" in md
    assert "| under_triage_rate | 0.400 | 0.300 | 0.100 | -0.200 | [-0.350, -0.050] | – | SFT+DPO better |" in md
    assert "| length_words | 48.500 | 44.000 | -4.500 | [-9.000, -0.500] | – | SFT+DPO significantly lower |" in md


def test_sft_only_report(report: dict, tmp_path: Path) -> None:
    sft_only = copy.deepcopy(report)
    for data in sft_only["tasks"].values():
        data["variants"].pop("sft_dpo")
        data.pop("deltas")
        data.pop("confusion", None)
        for example in data.get("examples", []):
            example.pop("sft_dpo")
    sft_only["training"].pop("dpo")
    sft_only["preference"].pop("sft_dpo")
    written = render_report(sft_only, tmp_path)
    assert {p.name for p in written} == {
        "triage_scores.svg",
        "summarization_scores.svg",
        "training_sft_loss.svg",
        "report.md",
        "report.html",
    }
    assert _count(_plots(tmp_path)["triage_scores.svg"], "g", "whisker") == 0
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "no SFT vs SFT+DPO comparison in this report" in html
    assert "SFT+DPO</th>" not in html  # no empty SFT+DPO column anywhere


def test_preference_only_custom_report(tmp_path: Path) -> None:
    custom = {
        "preference": {"sft": {"reward_accuracy": 0.5}, "sft_dpo": {"reward_accuracy": 0.875, "reward_margin": 1.25}},
        "meta": {"dataset": "my_pairs.jsonl"},
    }
    written = render_report(custom, tmp_path)
    assert {p.name for p in written} == {"report.md", "report.html"}
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<td>reward_accuracy</td><td>0.500</td><td>0.875</td>" in html
    assert "<td>reward_margin</td><td>–</td><td>1.250</td>" in html
    assert "my_pairs.jsonl" in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_a_malformed_report_is_a_user_error() -> None:
    with pytest.raises(UserError, match="'tasks' must be an object"):
        check_report({"tasks": []}, "report.json")


def test_delta_entry_can_state_its_own_direction(report: dict) -> None:
    data = copy.deepcopy(report["tasks"]["triage"])
    # A custom metric where lower is better: a CI entirely above 0 reads as worse.
    data["primary_metric"] = "error_rate"
    data["variants"]["sft"]["error_rate"], data["variants"]["sft_dpo"]["error_rate"] = 0.2, 0.4
    data["deltas"]["error_rate"] = {"value": 0.2, "ci95": [0.05, 0.35], "p_mcnemar": None, "higher_is_better": False}
    assert verdict("custom", data).endswith("SFT+DPO worse")


def test_extra_dpo_variant_and_domain_perplexity(report: dict, tmp_path: Path) -> None:
    both = copy.deepcopy(report)
    tri = both["tasks"]["triage"]
    tri["variants"]["sft_dpo_onpolicy"] = {**tri["variants"]["sft_dpo"], "accuracy": 0.55}
    tri["deltas_vs_sft"] = {
        "sft_dpo_onpolicy": {"accuracy": {"value": -0.05, "ci95": [-0.2, 0.1], "p_mcnemar": 0.5}},
    }
    for example in tri["examples"]:
        example["sft_dpo_onpolicy"] = "ESI level: 2 <onpolicy>"
    both["domain"] = {"stage": "outputs/default/domain", "perplexity": {"base": 12.5, "domain": 7.25, "n_docs": 24}}
    render_report(both, tmp_path)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    line = (
        "triage: accuracy SFT 0.600 → SFT+DPO (on-policy pairs) 0.550 (Δ -0.050, 95% CI [-0.200, +0.100], "
        "McNemar p = 0.5): no significant difference"
    )
    assert f"- {line}" in md and html.count(escape(line)) == 2  # summary list and the task section
    assert "SFT+DPO (on-policy pairs)</th>" in html and "ESI level: 2 &lt;onpolicy&gt;" in html
    assert "| perplexity | 12.500 | 7.250 |" in md and "Domain adapter: perplexity" in html
