"""Real-data loaders on the shared public samples (MedQA, PubMedQA, ACI-Bench, MTS-Dialog) and on bad input."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from align.data.realdata import load_dialogue_summaries, load_mcq_jsonl, load_pubmedqa
from align.errors import UserError

REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata"
MCQ = re.compile(r"^Answer: ([A-E])\nExplanation: \S.*$", re.S)


def test_medqa_rows():
    path = REALDATA / "medqa" / "test.jsonl"
    sft, pref = load_mcq_jsonl(path, seed=0)
    assert len(sft) == len(pref) == 1273
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert sft[0]["meta"]["answer"] == first["answer_idx"] == "B"
    assert "B. Tell the attending that he cannot fail to disclose this mistake" in sft[0]["prompt"][0]["content"]
    for s, p in zip(sft, pref, strict=True):
        assert s["task"] == p["task"] == "reasoning" and s["prompt"] == p["prompt"]
        assert MCQ.match(s["completion"][0]["content"]).group(1) == s["meta"]["answer"]
        assert MCQ.match(p["rejected"][0]["content"]).group(1) == p["meta"]["rejected_answer"] != s["meta"]["answer"]
    assert len({s["id"] for s in sft}) == 1273
    assert load_mcq_jsonl(path, seed=0)[1] == pref and load_mcq_jsonl(path, seed=1)[1] != pref


def test_pubmedqa_rows_never_show_long_answer():
    src = REALDATA / "pubmedqa" / "ori_pqal.json"
    data = json.loads(src.read_text(encoding="utf-8"))
    sft, pref = load_pubmedqa(src, REALDATA / "pubmedqa" / "test_ground_truth.json")
    assert len(sft) == len(pref) == 500
    assert len(load_pubmedqa(src)[0]) == 1000
    truth = json.loads((REALDATA / "pubmedqa" / "test_ground_truth.json").read_text(encoding="utf-8"))
    for s, p in zip(sft, pref, strict=True):
        pmid = s["meta"]["pmid"]
        assert s["completion"][0]["content"] == f"Answer: {truth[pmid]}"
        assert p["rejected"][0]["content"] in {"Answer: yes", "Answer: no", "Answer: maybe"} - {
            f"Answer: {truth[pmid]}"
        }
        prompt = s["prompt"][0]["content"]
        assert data[pmid]["QUESTION"] in prompt
        assert data[pmid]["LONG_ANSWER"][:60] not in prompt
    assert Counter(s["meta"]["answer"] for s in sft) == Counter(truth.values())


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("aci-bench/clef_taskC_test3.csv", 40),
        ("aci-bench/clinicalnlp_taskB_test1.csv", 40),
        ("aci-bench/clinicalnlp_taskC_test2.csv", 40),
        ("mts-dialog/MTS-Dialog-TestSet-1-MEDIQA-Chat-2023.csv", 200),
        ("mts-dialog/MTS-Dialog-TestSet-2-MEDIQA-Sum-2023.csv", 200),
    ],
)
def test_dialogue_summaries(name, count):
    rows = load_dialogue_summaries(REALDATA / name)
    assert len(rows) == count
    for r in rows:
        assert r["task"] == "summarization" and r["meta"]["key_facts"] == []
        assert r["meta"]["source"] in r["prompt"][0]["content"] and r["completion"][0]["content"]
        if "section_header" in r["meta"]:
            assert f"({r['meta']['section_header']})" in r["prompt"][0]["content"]
    assert len({r["id"] for r in rows}) == count


def test_bad_inputs_name_path_and_line(tmp_path):
    good = {"question": "Q?", "options": {"A": "x", "B": "y"}, "answer_idx": "A"}
    bad_json = tmp_path / "mcq.jsonl"
    bad_json.write_text(json.dumps(good) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"^{re.escape(str(bad_json))}:2: malformed JSON"):
        load_mcq_jsonl(bad_json)
    no_q = tmp_path / "noq.jsonl"
    no_q.write_text(json.dumps(good) + "\n" + json.dumps({**good, "question": None}) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"noq.jsonl:2: missing 'question'"):
        load_mcq_jsonl(no_q)
    bad_answer = tmp_path / "ans.jsonl"
    bad_answer.write_text(json.dumps({**good, "answer_idx": "E"}) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"ans.jsonl:1: answer_idx 'E'"):
        load_mcq_jsonl(bad_answer)
    csv_path = tmp_path / "notes.csv"
    csv_path.write_text("dialogue,summary\nhi,there\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"notes.csv:1: unrecognised columns"):
        load_dialogue_summaries(csv_path)
    pqa = tmp_path / "pqa.json"
    pqa.write_text(
        '{\n  "1": {"QUESTION": "q", "CONTEXTS": ["c"], "final_decision": "yes"},\n  "2": {"QUESTION": "q"}\n}'
    )
    with pytest.raises(UserError, match=r"pqa.json:3: entry 2 lacks CONTEXTS, final_decision"):
        load_pubmedqa(pqa)
    pqa.write_text('{\n  "1": {"QUESTION": "q",,}\n}')
    with pytest.raises(UserError, match=r"pqa.json:2: malformed JSON"):
        load_pubmedqa(pqa)
