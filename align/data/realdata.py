"""Readers for real public clinical benchmarks in their upstream formats -> `Example`s, one per labelled record.

`FORMATS` names, for each format, its task, the files it takes from a folder, its reader, the error type of its
rejected answers, and the dataset's license and citation. A reader turns one file into Examples (prompt, reference
completion, meta, and for closed-answer tasks the answer line of every option); `align/data/importer.py` splits
them, writes the rejected answers and the canonical files.

- medqa: MedQA USMLE JSONL (question, options {A..D} or a list, answer_idx letter or index, meta_info).
- medmcqa: MedMCQA JSON lines (question, opa..opd, cop, exp, subject_name, topic_name, id, choice_type). `cop` is
  1-based in the GitHub release and 0-based in the Hugging Face export: detected per file. Rows without a gold
  (cop missing, null or -1, as in the unlabelled test.json) are skipped and counted.
- pubmedqa: PQA-L ori_pqal.json keyed by PMID; test_ground_truth.json holds the official test PMIDs. LONG_ANSWER
  states the conclusion, so it is never put in a prompt.
- mts-dialog (ID, section_header, section_text, dialogue) and aci-bench (dataset, encounter_id, dialogue, note):
  conversation -> note section / visit note, with the MTS-Dialog section named in the instruction.
Bad input raises UserError naming the file and line (CSV: the row's first physical line; JSON dict: the key's line).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from align.data.readers import Record, _decoded_lines, read_records
from align.errors import UserError
from align.tasks.builtin import MEDQA, PUBMEDQA

MCQ_INSTRUCTION = MEDQA.instruction  # the tasks own their instructions: align/tasks/builtin.py
PUBMEDQA_INSTRUCTION = PUBMEDQA.instruction
PUBMEDQA_DECISIONS = ("yes", "no", "maybe")
DIALOGUE_RULE = "Use only what was said."
MTS_SECTIONS = {
    "GENHX": "history of present illness", "CC": "chief complaint", "ROS": "review of systems",
    "PASTMEDICALHX": "past medical history", "PASTSURGICAL": "past surgical history", "FAM/SOCHX": "family and social history",
    "MEDICATIONS": "medications", "ALLERGY": "allergies", "ASSESSMENT": "assessment", "PLAN": "plan",
    "EXAM": "physical examination", "DIAGNOSIS": "diagnosis", "DISPOSITION": "disposition", "EDCOURSE": "emergency department course",
    "IMAGING": "imaging", "LABS": "laboratory results", "PROCEDURES": "procedures", "GYNHX": "gynecologic history",
    "IMMUNIZATIONS": "immunizations", "OTHER_HISTORY": "other history",
}  # fmt: skip
MTS_COLUMNS = ("ID", "section_header", "section_text", "dialogue")
ACI_COLUMNS = ("dataset", "encounter_id", "dialogue", "note")
MEDMCQA_OPTIONS = ("opa", "opb", "opc", "opd")


@dataclass(frozen=True)
class Example:
    """One upstream record as align will write it, before its split decides the rejected answer."""

    id: str
    prompt: str  # the user message
    completion: str  # the reference answer (the SFT completion and the preference row's chosen)
    meta: dict
    where: str  # "path:line", for messages about this record
    answers: dict[str, str] = field(default_factory=dict)  # closed tasks: label -> that label's answer line
    group: str = ""  # open tasks: another encounter of the same group is preferred as the rejected answer


@dataclass
class FileRead:
    """What a reader got from one file: the labelled Examples, the records read, skips by reason, notes."""

    examples: list[Example]
    rows: int
    skipped: Counter = field(default_factory=Counter)
    notes: dict = field(default_factory=dict)  # e.g. the MedMCQA cop convention of this file


@dataclass(frozen=True)
class FormatSpec:
    task: str
    patterns: tuple[str, ...]  # the files of this format in a folder
    read: Callable[[Path], FileRead]
    error_type: str  # meta.error_type of the rejected answers
    license: str
    citation: str


# ---- shared pieces -------------------------------------------------------------------------------------------------


def _records(path: Path) -> Iterator[Record]:
    """The records of a JSONL/JSON/CSV file; an empty file is an error at line 1."""
    if path.stat().st_size == 0:
        raise UserError("file is empty", "check the download; it must hold at least one row", str(path), 1)
    yield from read_records(path)


def _text_field(rec: Record, key: str) -> str:
    value = rec.data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise rec.error(f"missing or empty '{key}' (a string)", "every row needs it; fix or remove this row")
    return value.strip()


def _option_text(text: str) -> str:
    """One line per option: whitespace runs become one space, and a dangling quote (MedQA has five options ending
    in a stray newline + '"') is dropped."""
    text = " ".join(text.split())
    if text.count('"') % 2 and text.endswith('"'):
        text = text[:-1].rstrip()
    elif text.count('"') % 2 and text.startswith('"'):
        text = text[1:].lstrip()
    return text


def _mcq_example(rid: str, question: str, meta: dict, where: str, explanation: str = "") -> Example:
    """Prompt: instruction, question, `A. text` lines. Completion: `Answer: B. <text>` (+ explanation if any)."""
    options, answer = meta["options"], meta["answer"]
    listing = "\n".join(f"{k}. {v}" for k, v in options.items())
    answers = {k: f"Answer: {k}. {v}".rstrip() for k, v in options.items()}
    completion = answers[answer] + (f"\nExplanation: {explanation}" if explanation else "")
    return Example(rid, f"{MCQ_INSTRUCTION}\n\n{question}\n{listing}", completion, meta, where, answers)


def _row_id(path: Path, value: Any, rec: Record) -> str:
    return f"{path.stem}-{value if value not in (None, '') else rec.line}"


# ---- MedQA ---------------------------------------------------------------------------------------------------------


def _medqa_options(rec: Record) -> tuple[dict[str, str], str]:
    options, answer = rec.data.get("options"), rec.data.get("answer_idx")
    if isinstance(options, list):  # some exports list the options; letter them A, B, ...
        options = {chr(65 + i): o for i, o in enumerate(options)}
    if not (
        isinstance(options, dict)
        and len(options) >= 2
        and all(isinstance(k, str) and re.fullmatch(r"[A-Z]", k) and isinstance(v, str) for k, v in options.items())
    ):
        raise rec.error("'options' must map letters to option texts", 'write options as {"A": "...", "B": "..."}')
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(options):
        answer = chr(65 + answer)
    if answer not in options:
        raise rec.error(f"answer_idx {answer!r} is not one of the options {sorted(options)}", "fix answer_idx")
    return {k: _option_text(options[k]) for k in sorted(options)}, answer


def read_medqa(path: Path) -> FileRead:
    examples, n = [], 0
    for rec in _records(path):
        n += 1
        question = _text_field(rec, "question")
        options, answer = _medqa_options(rec)
        meta = {"answer": answer, "options": options, "source": f"medqa/{path.name}"}
        if "meta_info" in rec.data:
            meta["meta_info"] = rec.data["meta_info"]
        rid = _row_id(path, rec.data.get("realidx", rec.data.get("id")), rec)
        examples.append(_mcq_example(rid, question, meta, rec.source))
    return FileRead(examples, n)


# ---- MedMCQA -------------------------------------------------------------------------------------------------------


def _cop(rec: Record) -> int | None:
    """The raw correct-option index, or None for an unlabelled row (missing, null or -1)."""
    value = rec.data.get("cop")
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value)
    if value is None or value == -1:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise rec.error(f"cop {value!r} is not an option index", "use 1..4 (GitHub release) or 0..3 (Hugging Face)")
    return value


def _cop_base(records: list[Record]) -> tuple[int, str]:
    """0 or 1, and why: any cop 0 -> 0-based, any cop 4 -> 1-based, neither -> assume 1-based; both is an error."""
    zero = next((r for r in records if _cop(r) == 0), None)
    four = next((r for r in records if _cop(r) == 4), None)
    if zero and four:
        later = max(zero, four, key=lambda r: r.line or 0)
        raise later.error(
            f"cop is 0 on line {zero.line} (0-based) and 4 on line {four.line} (1-based) in the same file",
            "use one convention per file: 1..4 (GitHub release) or 0..3 (Hugging Face export)",
        )
    if zero:
        return 0, f"0-based (cop 0 on line {zero.line}, as in the Hugging Face export)"
    if four:
        return 1, f"1-based (cop 4 on line {four.line}, as in the GitHub release)"
    return 1, "1-based, assumed: no cop is 0 or 4, so the file does not show its convention"


def read_medmcqa(path: Path) -> FileRead:
    records = list(_records(path))
    base, convention = _cop_base(records)
    examples, skipped = [], Counter(no_gold=0)
    for rec in records:
        question = _text_field(rec, "question")
        texts = [rec.data.get(k) for k in MEDMCQA_OPTIONS]
        if not all(isinstance(t, str) for t in texts):
            missing = [k for k, t in zip(MEDMCQA_OPTIONS, texts, strict=True) if not isinstance(t, str)]
            raise rec.error(f"missing option {', '.join(missing)} (a string)", "each row needs opa, opb, opc, opd")
        cop = _cop(rec)
        if cop is None:
            skipped["no_gold"] += 1
            continue
        if not 0 <= cop - base < len(texts):
            raise rec.error(
                f"cop {cop} is not among the options ({base}..{base + 3} in this {base}-based file)", "fix cop"
            )
        options = {chr(65 + i): _option_text(t) for i, t in enumerate(texts)}
        meta = {"answer": chr(65 + cop - base), "options": options, "source": f"medmcqa/{path.name}"}
        meta.update({k: rec.data[k] for k in ("subject_name", "topic_name", "choice_type") if k in rec.data})
        exp = rec.data.get("exp")
        rid = _row_id(path, rec.data.get("id"), rec)
        examples.append(_mcq_example(rid, question, meta, rec.source, exp.strip() if isinstance(exp, str) else ""))
    if not examples:
        raise UserError(
            "no labelled row: every cop is missing, null or -1",
            "import a labelled file (MedMCQA's test.json has no answers; use train.json or dev.json)",
            str(path),
            1,
        )
    return FileRead(examples, len(records), skipped, {"cop": convention})


# ---- PubMedQA ------------------------------------------------------------------------------------------------------


def read_json_dict(path: Path, fix: str) -> tuple[dict, dict[str, int]]:
    """A JSON object and the line of each top-level key (searched in order, so nested text cannot shift it)."""
    text = "".join(t for _, t in _decoded_lines(path))
    if not text.strip():
        raise UserError("file is empty", fix, str(path), 1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(
            f"malformed JSON ({err.msg})", "fix the file or download it again", str(path), err.lineno
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"expected a JSON object keyed by PMID, got {type(data).__name__}", fix, str(path), 1)
    lines, pos, line = {}, 0, 1
    for key in data:
        found = re.compile(rf'"{re.escape(key)}"\s*:').search(text, pos)
        if found is None:  # a key written with escapes; fall back to the first line
            lines[key] = 1
            continue
        line += text.count("\n", pos, found.start())
        lines[key], pos = line, found.start()
    return data, lines


def _pubmedqa_problem(pmid: str, rec: Any) -> str:
    """What is wrong with one ori_pqal.json entry, or "" when nothing is."""
    if not isinstance(rec, dict):
        return f"entry {pmid} is not an object"
    missing = [k for k in ("QUESTION", "CONTEXTS", "final_decision") if k not in rec]
    if missing:
        return f"entry {pmid} lacks {', '.join(missing)}"
    if not isinstance(rec["QUESTION"], str):
        return f"entry {pmid}: QUESTION is not a text"
    contexts = rec["CONTEXTS"]
    if not (isinstance(contexts, list) and contexts and all(isinstance(c, str) for c in contexts)):
        return f"entry {pmid}: CONTEXTS is not a list of texts"
    if rec["final_decision"] not in PUBMEDQA_DECISIONS:
        return f"entry {pmid}: final_decision {rec['final_decision']!r} is not one of yes, no, maybe"
    return ""


def _pubmedqa_example(path: Path, pmid: str, rec: Any, line: int) -> Example:
    problem = _pubmedqa_problem(pmid, rec)
    if problem:
        need = "each entry needs QUESTION (text), CONTEXTS (list of texts) and final_decision (yes, no or maybe)"
        raise UserError(problem, need, str(path), line)
    contexts, answer = rec["CONTEXTS"], rec["final_decision"]
    labels = rec.get("LABELS") if isinstance(rec.get("LABELS"), list) else []
    labels = [*labels, *[""] * len(contexts)][: len(contexts)]
    context = "\n".join(f"{lab}: {c}" if lab else c for lab, c in zip(labels, contexts, strict=True))
    prompt = f"{PUBMEDQA_INSTRUCTION}\n\nContext:\n{context}\n\nQuestion: {rec['QUESTION'].strip()}"
    answers = {d: f"Answer: {d}" for d in PUBMEDQA_DECISIONS}
    meta = {"answer": answer, "pmid": pmid}
    return Example(f"pubmedqa-{pmid}", prompt, answers[answer], meta, f"{path}:{line}", answers)


def read_pubmedqa(path: Path) -> FileRead:
    data, lines = read_json_dict(path, "use PubMedQA's ori_pqal.json (an object keyed by PMID)")
    examples = [_pubmedqa_example(path, pmid, rec, lines[pmid]) for pmid, rec in data.items()]
    if not examples:
        raise UserError("no entries", "use PubMedQA's ori_pqal.json (an object keyed by PMID)", str(path), 1)
    return FileRead(examples, len(examples))


def read_pubmedqa_test_ids(path: Path) -> dict[str, tuple[str | None, int]]:
    """test_ground_truth.json ({PMID: label}) or a JSON list of PMIDs -> {PMID: (label or None, line)}."""
    text = "".join(t for _, t in _decoded_lines(path))
    if text.lstrip().startswith("["):
        try:
            ids = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"malformed JSON ({err.msg})", "fix the file", str(path), err.lineno) from None
        if not all(isinstance(i, str | int) for i in ids):
            raise UserError("expected a list of PMIDs", 'write e.g. ["12377809", ...]', str(path), 1)
        return {str(i): (None, 1) for i in ids}
    data, lines = read_json_dict(path, "use test_ground_truth.json ({PMID: yes/no/maybe}) or a list of PMIDs")
    return {k: (v if isinstance(v, str) else None, lines[k]) for k, v in data.items()}


# ---- dialogue -> note ----------------------------------------------------------------------------------------------


def _dialogue_records(path: Path, columns: tuple[str, ...], fmt: str) -> Iterator[Record]:
    for i, rec in enumerate(_records(path)):
        if i == 0 and not set(columns) <= set(rec.data):
            raise UserError(
                f"columns are {', '.join(rec.data)}; {fmt} expects {', '.join(columns)}",
                "check FORMAT, or rename the header row to the upstream column names",
                str(path),
                1,
            )
        yield rec


def _dialogue_example(rid: str, instruction: str, rec: Record, target: str, meta: dict, group: str) -> Example:
    dialogue = _text_field(rec, "dialogue")
    prompt = f"{instruction} {DIALOGUE_RULE}\n\nConversation:\n{dialogue}"
    meta = {"source": dialogue, **meta, "key_facts": []}
    return Example(rid, prompt, _text_field(rec, target), meta, rec.source, group=group)


def read_mts_dialog(path: Path) -> FileRead:
    examples, n = [], 0
    for rec in _dialogue_records(path, MTS_COLUMNS, "mts-dialog"):
        n += 1
        header = _text_field(rec, "section_header")
        section = MTS_SECTIONS.get(header.upper(), header.lower())
        instruction = (
            f"Write the {section} section ({header}) of the clinical note for this doctor-patient conversation."
        )
        rid = f"{path.stem}-{_text_field(rec, 'ID')}"
        examples.append(_dialogue_example(rid, instruction, rec, "section_text", {"section_header": header}, header))
    return FileRead(examples, n)


def read_aci_bench(path: Path) -> FileRead:
    examples, n = [], 0
    for rec in _dialogue_records(path, ACI_COLUMNS, "aci-bench"):
        n += 1
        dataset, encounter = rec.data["dataset"].strip(), _text_field(rec, "encounter_id")
        instruction = "Write the clinical visit note for this doctor-patient conversation."
        meta = {"dataset": dataset, "encounter_id": encounter}
        examples.append(_dialogue_example(f"{path.stem}-{encounter}", instruction, rec, "note", meta, dataset))
    return FileRead(examples, n)


FORMATS: dict[str, FormatSpec] = {
    "medqa": FormatSpec(
        "medqa", ("*.jsonl",), read_medqa, "distractor", "MIT",
        "Jin et al. 2021, What Disease does this Patient Have? A Large-scale Open Domain Question Answering Dataset "
        "from Medical Exams (Applied Sciences); github.com/jind11/MedQA",
    ),
    "medmcqa": FormatSpec(
        "medmcqa", ("*.json", "*.jsonl"), read_medmcqa, "distractor", "MIT",
        "Pal, Umapathi and Sankarasubbu, MedMCQA: A Large-scale Multi-Subject Multi-Choice Dataset for Medical "
        "domain Question Answering, CHIL 2022 (PMLR 174); github.com/medmcqa/medmcqa",
    ),
    "pubmedqa": FormatSpec(
        "pubmedqa", ("ori_pqal.json",), read_pubmedqa, "wrong_answer", "MIT",
        "Jin et al. 2019, PubMedQA: A Dataset for Biomedical Research Question Answering (EMNLP-IJCNLP 2019); "
        "github.com/pubmedqa/pubmedqa",
    ),
    "mts-dialog": FormatSpec(
        "mts_dialog", ("*.csv",), read_mts_dialog, "other_encounter", "CC BY 4.0",
        "Ben Abacha et al., An Empirical Study of Clinical Note Generation from Doctor-Patient Encounters, EACL 2023; "
        "github.com/abachaa/MTS-Dialog",
    ),
    "aci-bench": FormatSpec(
        "aci_bench", ("*.csv",), read_aci_bench, "other_encounter", "CC BY 4.0",
        "Yim et al., ACI-BENCH: a Novel Ambient Clinical Intelligence Dataset for Benchmarking Automatic Visit Note "
        "Generation, Scientific Data 2023; github.com/wyim/aci-bench",
    ),
}  # fmt: skip
