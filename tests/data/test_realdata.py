"""Upstream-format readers (align/data/realdata.py) on the shared real benchmarks, the MedMCQA fixtures, and bad input.

Real files are read from REALDATA (../shared/realdata); those tests skip only when that folder is absent.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from align.data.realdata import (
    FORMATS,
    MCQ_INSTRUCTION,
    PUBMEDQA_INSTRUCTION,
    read_aci_bench,
    read_medmcqa,
    read_medqa,
    read_mts_dialog,
    read_pubmedqa,
    read_pubmedqa_test_ids,
)
from align.errors import UserError
from tests.conftest import REALDATA

FIXTURES = Path(__file__).parent / "fixtures" / "medmcqa"
needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"{REALDATA} is absent")


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


# ---- MedQA ---------------------------------------------------------------------------------------------------------


@needs_realdata
def test_medqa_reader_on_the_official_test_split():
    got = read_medqa(REALDATA / "medqa" / "test.jsonl")
    assert got.rows == len(got.examples) == 1273
    first = got.examples[0]
    assert first.id == "test-0" and first.where.endswith("test.jsonl:1")
    assert first.meta == {
        "answer": "B",
        "options": {
            "A": "Disclose the error to the patient and put it in the operative report",
            "B": "Tell the attending that he cannot fail to disclose this mistake",
            "C": "Report the physician to the ethics committee",
            "D": "Refuse to dictate the operative report",
        },
        "source": "medqa/test.jsonl",
        "meta_info": "step1",
    }
    assert first.completion == "Answer: B. Tell the attending that he cannot fail to disclose this mistake"
    assert first.answers["D"] == "Answer: D. Refuse to dictate the operative report"
    assert first.prompt.startswith(MCQ_INSTRUCTION + "\n\nA junior orthopaedic surgery resident")
    assert first.prompt.endswith(
        "\nC. Report the physician to the ethics committee\nD. Refuse to dictate the operative report"
    )
    assert Counter(e.meta["answer"] for e in got.examples) == {"A": 353, "C": 346, "B": 309, "D": 265}
    assert all(re.fullmatch(r"Answer: [A-D]\. [^\n]+", e.completion) for e in got.examples)  # no invented explanation
    assert len({e.id for e in got.examples}) == 1273
    stray = next(e for e in got.examples if e.id == "test-19")  # upstream option text ends in '\n"'
    assert stray.meta["options"]["D"] == "Benzodiazepine intoxication" and stray.prompt.endswith(
        "\nD. Benzodiazepine intoxication"
    )


def test_medqa_accepts_option_lists_and_integer_answers(tmp_path):
    path = _write(tmp_path / "q.jsonl", _jsonl([{"question": " Q? ", "options": ["x", "y", "z"], "answer_idx": 2}]))
    (ex,) = read_medqa(path).examples
    assert ex.meta["answer"] == "C" and ex.meta["options"] == {"A": "x", "B": "y", "C": "z"}
    assert ex.prompt == f"{MCQ_INSTRUCTION}\n\nQ?\nA. x\nB. y\nC. z" and ex.completion == "Answer: C. z"
    assert ex.id == "q-1"  # no realidx/id: the line number


# ---- MedMCQA -------------------------------------------------------------------------------------------------------


def test_medmcqa_release_layout_is_one_based_with_explanations():
    got = read_medmcqa(FIXTURES / "release" / "train.json")
    assert got.rows == 10 and got.skipped == {"no_gold": 0}
    assert got.notes == {"cop": "1-based (cop 4 on line 4, as in the GitHub release)"}
    by_id = {e.id: e for e in got.examples}
    scurvy = by_id["train-syn-0000"]
    assert scurvy.completion == "Answer: C. Vitamin C\nExplanation: Vitamin C is needed for collagen synthesis."
    assert scurvy.answers["A"] == "Answer: A. Vitamin A"  # a rejected answer keeps only the answer line
    assert scurvy.meta == {
        "answer": "C",
        "options": {"A": "Vitamin A", "B": "Vitamin B1", "C": "Vitamin C", "D": "Vitamin D"},
        "source": "medmcqa/train.json",
        "subject_name": "Biochemistry",
        "topic_name": "Vitamins",
        "choice_type": "single",
    }
    assert by_id["train-syn-0002"].completion == "Answer: A. Adrenaline"  # exp ""
    assert by_id["train-syn-0004"].completion == "Answer: B. 60-100/min"  # exp null
    assert by_id["train-syn-0003"].meta["answer"] == "D"  # cop 4


def test_medmcqa_hf_layout_is_zero_based_and_gives_the_same_letters():
    hf = read_medmcqa(FIXTURES / "hf" / "train.jsonl")
    release = read_medmcqa(FIXTURES / "release" / "train.json")
    assert hf.rows == 12 and hf.skipped == {"no_gold": 2}  # the two cop -1 rows
    assert hf.notes == {"cop": "0-based (cop 0 on line 3, as in the Hugging Face export)"}
    assert [(e.id, e.meta["answer"], e.completion) for e in hf.examples] == [
        (e.id, e.meta["answer"], e.completion) for e in release.examples
    ]
    assert [e.meta["answer"] for e in hf.examples] == list("CBADBADBCD")


def test_medmcqa_convention_assumed_when_the_file_does_not_show_it():
    got = read_medmcqa(FIXTURES / "release" / "dev.json")
    assert got.notes["cop"] == "1-based, assumed: no cop is 0 or 4, so the file does not show its convention"
    assert [e.meta["answer"] for e in got.examples] == ["A", "B", "C"]


def test_medmcqa_bad_files(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "release" / "train.json").read_text().splitlines()]
    unlabelled = FIXTURES / "unlabelled" / "test.json"
    with pytest.raises(UserError, match=rf"^{re.escape(str(unlabelled))}:1: no labelled row: every cop is missing"):
        read_medmcqa(unlabelled)
    mixed = _write(tmp_path / "mixed.json", _jsonl([{**rows[0], "cop": 0}, rows[1], {**rows[2], "cop": 4}]))
    with pytest.raises(UserError, match=r"mixed.json:3: cop is 0 on line 1 \(0-based\) and 4 on line 3 \(1-based\)"):
        read_medmcqa(mixed)
    out_of_range = _write(tmp_path / "range.json", _jsonl([rows[3], {**rows[1], "cop": 7}]))
    with pytest.raises(UserError, match=r"range.json:2: cop 7 is not among the options \(1..4 in this 1-based file\)"):
        read_medmcqa(out_of_range)
    no_opd = _write(tmp_path / "opd.json", _jsonl([rows[0], {k: v for k, v in rows[1].items() if k != "opd"}]))
    with pytest.raises(UserError, match=r"opd.json:2: missing option opd"):
        read_medmcqa(no_opd)


# ---- PubMedQA ------------------------------------------------------------------------------------------------------


@needs_realdata
def test_pubmedqa_reader_never_shows_long_answer():
    src = REALDATA / "pubmedqa" / "ori_pqal.json"
    data, text = json.loads(src.read_text(encoding="utf-8")), src.read_text(encoding="utf-8").split("\n")
    got = read_pubmedqa(src)
    assert got.rows == len(got.examples) == 1000
    assert Counter(e.meta["answer"] for e in got.examples) == {"yes": 552, "no": 338, "maybe": 110}
    first = got.examples[0]
    assert first.id == "pubmedqa-21645374" and first.completion == "Answer: yes"
    assert first.meta == {"answer": "yes", "pmid": "21645374"}
    assert "\n\nContext:\nBACKGROUND: Programmed cell death (PCD) is the regulated death" in first.prompt
    assert first.prompt.endswith("\n\nQuestion: " + data["21645374"]["QUESTION"])
    for e in got.examples:
        pmid, line = e.meta["pmid"], int(e.where.rsplit(":", 1)[1])
        assert text[line - 1].strip() == f'"{pmid}": {{'  # the key's own line
        rec = data[pmid]
        context = "\n".join(f"{lab}: {c}" for lab, c in zip(rec["LABELS"], rec["CONTEXTS"], strict=True))
        assert e.prompt == f"{PUBMEDQA_INSTRUCTION}\n\nContext:\n{context}\n\nQuestion: {rec['QUESTION']}"
        assert rec["LONG_ANSWER"] not in e.prompt  # (2 abstracts repeat its first sentence in RESULTS, upstream)
        assert e.answers == {"yes": "Answer: yes", "no": "Answer: no", "maybe": "Answer: maybe"}


@needs_realdata
def test_pubmedqa_test_ids_with_lines():
    ids = read_pubmedqa_test_ids(REALDATA / "pubmedqa" / "test_ground_truth.json")
    assert len(ids) == 500 and ids["12377809"] == ("yes", 2) and ids["26134053"] == ("maybe", 501)
    assert Counter(label for label, _ in ids.values()) == {"yes": 276, "no": 169, "maybe": 55}


def test_pubmedqa_bad_entries(tmp_path):
    pqa = tmp_path / "pqa.json"
    _write(pqa, '{\n  "1": {"QUESTION": "q", "CONTEXTS": ["c"], "final_decision": "yes"},\n  "2": {"QUESTION": "q"}\n}')
    with pytest.raises(UserError, match=r"pqa.json:3: entry 2 lacks CONTEXTS, final_decision; each entry needs"):
        read_pubmedqa(pqa)
    _write(pqa, '{\n\n  "7": {"QUESTION": "q", "CONTEXTS": ["c"], "final_decision": "probably"}\n}')
    with pytest.raises(UserError, match=r"pqa.json:3: entry 7: final_decision 'probably' is not one of yes, no, maybe"):
        read_pubmedqa(pqa)
    _write(pqa, '{\n  "1": {"QUESTION": "q",,}\n}')
    with pytest.raises(UserError, match=r"pqa.json:2: malformed JSON"):
        read_pubmedqa(pqa)
    _write(pqa, '[{"QUESTION": "q"}]')
    with pytest.raises(UserError, match=r"pqa.json:1: expected a JSON object keyed by PMID, got list"):
        read_pubmedqa(pqa)


# ---- dialogue -> note ----------------------------------------------------------------------------------------------


@needs_realdata
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
def test_dialogue_readers(name, count):
    path = REALDATA / name
    got = (read_mts_dialog if name.startswith("mts") else read_aci_bench)(path)
    assert got.rows == len(got.examples) == count and len({e.id for e in got.examples}) == count
    for e in got.examples:
        assert e.id.startswith(path.stem + "-") and e.meta["key_facts"] == [] and e.completion
        assert e.prompt.endswith("Use only what was said.\n\nConversation:\n" + e.meta["source"])
        assert not e.answers and e.group == e.meta.get("section_header", e.meta.get("dataset"))


@needs_realdata
def test_mts_dialog_names_the_section_and_aci_bench_the_encounter():
    mts = read_mts_dialog(REALDATA / "mts-dialog" / "MTS-Dialog-TestSet-1-MEDIQA-Chat-2023.csv").examples[0]
    assert mts.id == "MTS-Dialog-TestSet-1-MEDIQA-Chat-2023-0" and mts.meta["section_header"] == "GENHX"
    assert mts.prompt.startswith(
        "Write the history of present illness section (GENHX) of the clinical note for this doctor-patient "
        "conversation. Use only what was said.\n\nConversation:\nDoctor: Good afternoon, sir."
    )
    assert mts.completion.startswith("The patient is a 55-year-old African-American male that was last seen")
    aci = read_aci_bench(REALDATA / "aci-bench" / "clef_taskC_test3.csv").examples[0]
    assert aci.id == "clef_taskC_test3-D2N168" and aci.where.endswith("clef_taskC_test3.csv:2")
    assert {k: aci.meta[k] for k in ("dataset", "encounter_id")} == {"dataset": "virtassist", "encounter_id": "D2N168"}
    assert aci.meta["source"].startswith("[doctor] hi diane , how are you ?")


# ---- bad input: one UserError naming file and line -----------------------------------------------------------------

GOOD = {"question": "Q?", "options": {"A": "x", "B": "y"}, "answer_idx": "A"}


def test_bad_json_lines_name_their_line(tmp_path):
    bad = _write(tmp_path / "mcq.jsonl", json.dumps(GOOD) + "\n{not json\n")
    with pytest.raises(UserError, match=rf"^{re.escape(str(bad))}:2: malformed JSON"):
        read_medqa(bad)
    no_q = _write(tmp_path / "noq.jsonl", _jsonl([GOOD, {**GOOD, "question": None}]))
    with pytest.raises(UserError, match=r"noq.jsonl:2: missing or empty 'question'"):
        read_medqa(no_q)
    no_opts = _write(tmp_path / "noopt.jsonl", _jsonl([GOOD, GOOD, {"question": "Q", "answer_idx": "A"}]))
    with pytest.raises(UserError, match=r"noopt.jsonl:3: 'options' must map letters to option texts"):
        read_medqa(no_opts)
    answer = _write(tmp_path / "ans.jsonl", _jsonl([{**GOOD, "answer_idx": "E"}]))
    with pytest.raises(UserError, match=r"ans.jsonl:1: answer_idx 'E' is not one of the options \['A', 'B'\]"):
        read_medqa(answer)


def test_bad_csv_names_columns_and_physical_lines(tmp_path):
    wrong = _write(tmp_path / "notes.csv", "dialogue,summary\nhi,there\n")
    with pytest.raises(
        UserError,
        match=r"notes.csv:1: columns are dialogue, summary; aci-bench expects dataset, encounter_id, dialogue",
    ):
        read_aci_bench(wrong)
    with pytest.raises(
        UserError, match=r"notes.csv:1: .*mts-dialog expects ID, section_header, section_text, dialogue"
    ):
        read_mts_dialog(wrong)
    header = "ID,section_header,section_text,dialogue\n"
    multi = '0,CC,Cough.,"Doctor: Why are you here?\nPatient: Cough."\n'
    fields = _write(tmp_path / "fields.csv", header + multi + "1,CC,Fever.\n")
    with pytest.raises(UserError, match=r"fields.csv:4: row has 3 fields but the header has 4"):
        read_mts_dialog(fields)
    empty_cell = _write(tmp_path / "cell.csv", header + multi + multi.replace("0,CC,Cough.", "1,CC,"))
    with pytest.raises(UserError, match=r"cell.csv:4: missing or empty 'section_text'"):
        read_mts_dialog(empty_cell)


def test_non_utf8_and_empty_files(tmp_path):
    latin = _write(tmp_path / "latin.csv", b"dataset,encounter_id,dialogue,note\naci,D1,caf\xe9,note\n")
    with pytest.raises(UserError, match=r"latin.csv:2: byte 0xe9 is not valid UTF-8; .*iconv -f latin1 -t utf-8"):
        read_aci_bench(latin)
    pqa = _write(tmp_path / "ori_pqal.json", b'{\n  "1": {"QUESTION": "\xff"}\n}')
    with pytest.raises(UserError, match=r"ori_pqal.json:2: byte 0xff is not valid UTF-8"):
        read_pubmedqa(pqa)
    for name, spec in FORMATS.items():
        empty = _write(tmp_path / f"empty-{name}{spec.patterns[0].removeprefix('*')}", b"")
        with pytest.raises(UserError, match=rf"empty-{name}.*:1: file is empty"):
            spec.read(empty)
