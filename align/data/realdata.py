"""Loaders for real public clinical datasets in their upstream formats -> canonical SFT and preference rows.

- MedQA / MedMCQA-style MCQ JSONL (`question`, `options` {letter: text}, `answer_idx`) -> task "reasoning".
- PubMedQA PQA-L (`ori_pqal.json`, optional `test_ground_truth.json` id filter) -> task "pubmedqa". LONG_ANSWER
  states the conclusion, so it is never put in a prompt.
- Dialogue -> note CSVs (ACI-Bench: dialogue,note; MTS-Dialog: section_header,section_text,dialogue) -> task
  "summarization" SFT rows, with the MTS-Dialog section named in the instruction.
Bad input (missing column or key, malformed JSON) raises UserError naming the file and line.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from align.data.tasks.reasoning import INSTRUCTION as MCQ_INSTRUCTION
from align.errors import UserError

PUBMEDQA_INSTRUCTION = (
    "Answer the research question using the abstract excerpts. Reply with 'Answer: yes', 'Answer: no' or "
    "'Answer: maybe' on the first line."
)
PUBMEDQA_DECISIONS = ("yes", "no", "maybe")
MTS_SECTIONS = {
    "GENHX": "history of present illness", "CC": "chief complaint", "ROS": "review of systems",
    "PASTMEDICALHX": "past medical history", "PASTSURGICAL": "past surgical history", "FAM/SOCHX": "family and social history",
    "MEDICATIONS": "medications", "ALLERGY": "allergies", "ASSESSMENT": "assessment", "PLAN": "plan",
    "EXAM": "physical examination", "DIAGNOSIS": "diagnosis", "DISPOSITION": "disposition", "EDCOURSE": "emergency department course",
    "IMAGING": "imaging", "LABS": "laboratory results", "PROCEDURES": "procedures", "GYNHX": "gynecologic history",
    "IMMUNIZATIONS": "immunizations", "OTHER_HISTORY": "other history",
}  # fmt: skip


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def _pair(sft: dict, rejected: str, extra_meta: dict) -> dict:
    return {
        "id": sft["id"],
        "task": sft["task"],
        "prompt": sft["prompt"],
        "chosen": sft["completion"],
        "rejected": _assistant(rejected),
        "meta": {**sft["meta"], **extra_meta},
    }


# ---- MCQ (MedQA / MedMCQA style) -------------------------------------------------------------------------------


def _mcq_options(rec: dict, path: Path, line: int) -> tuple[dict[str, str], str]:
    options, answer = rec.get("options"), rec.get("answer_idx")
    if isinstance(options, list):  # some exports list the options; letter them A, B, ...
        options = {chr(65 + i): o for i, o in enumerate(options)}
    if isinstance(answer, int) and not isinstance(answer, bool):
        answer = chr(65 + answer)
    if not isinstance(options, dict) or len(options) < 2 or not all(isinstance(v, str) for v in options.values()):
        raise UserError("'options' must map letters to option texts", "write options as {\"A\": ..., \"B\": ...}",
                        str(path), line)  # fmt: skip
    if answer not in options:
        raise UserError(f"answer_idx {answer!r} is not one of the options {sorted(options)}", "fix answer_idx",
                        str(path), line)  # fmt: skip
    return {k: options[k].strip() for k in sorted(options)}, answer


def load_mcq_jsonl(path: Path, seed: int = 0, source: str | None = None) -> tuple[list[dict], list[dict]]:
    """MedQA/MedMCQA-style JSONL -> (sft rows, preference rows) of task "reasoning". The rejected answer is a wrong
    option chosen deterministically from `seed`. There is no reference explanation, so the answer text stands in."""
    path = Path(path)
    rng = random.Random(f"{seed}-mcq")
    source = source or path.parent.name or path.stem
    sft, pref = [], []
    for line, rec in _read_jsonl(path):
        if not isinstance(rec.get("question"), str):
            raise UserError("missing 'question' (a string)", "each line needs question, options, answer_idx",
                            str(path), line)  # fmt: skip
        options, answer = _mcq_options(rec, path, line)
        listing = "\n".join(f"{k}. {v}" for k, v in options.items())
        row_id = f"{source}-{rec.get('realidx', rec.get('id', line - 1))}"
        meta = {"answer": answer, "options": options, "question_type": "unknown", "source": source}
        if "meta_info" in rec:
            meta["meta_info"] = rec["meta_info"]
        row = {
            "id": str(row_id),
            "task": "reasoning",
            "prompt": _user(f"{MCQ_INSTRUCTION}\n\n{rec['question'].strip()}\n{listing}"),
            "completion": _assistant(f"Answer: {answer}\nExplanation: {options[answer].rstrip('.')}."),
            "meta": meta,
        }
        wrong = rng.choice([k for k in options if k != answer])
        sft.append(row)
        pref.append(_pair(row, f"Answer: {wrong}\nExplanation: {options[wrong].rstrip('.')}.",
                          {"rejected_answer": wrong, "error_type": "distractor"}))  # fmt: skip
    return sft, pref


def _read_jsonl(path: Path):
    with open(path, encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as err:
                raise UserError(f"malformed JSON ({err.msg})", "fix this line or remove it", str(path), line) from err
            if not isinstance(rec, dict):
                raise UserError("line is not a JSON object", "write one {...} object per line", str(path), line)
            yield line, rec


# ---- PubMedQA ------------------------------------------------------------------------------------------------------


def _load_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(
            f"malformed JSON ({err.msg})", "fix the file or download it again", str(path), err.lineno
        ) from err


def _line_of(text: str, needle: str) -> int | None:
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else None


def load_pubmedqa(path: Path, ids_path: Path | None = None, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """PubMedQA `ori_pqal.json` -> (sft rows, preference rows) of task "pubmedqa", restricted to the ids in
    `ids_path` (e.g. test_ground_truth.json) when given. Prompt = labelled CONTEXTS + QUESTION, never LONG_ANSWER."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise UserError("expected a JSON object keyed by PMID", "use PubMedQA's ori_pqal.json", str(path), 1)
    keep = None
    if ids_path is not None:
        ids = _load_json(Path(ids_path))
        keep = set(ids) if isinstance(ids, dict | list) else None
        if keep is None:
            raise UserError("expected a JSON object or list of PMIDs", "use test_ground_truth.json", str(ids_path), 1)
    rng = random.Random(f"{seed}-pubmedqa")
    text = path.read_text(encoding="utf-8")
    sft, pref = [], []
    for pmid, rec in data.items():
        if keep is not None and pmid not in keep:
            continue
        missing = [k for k in ("QUESTION", "CONTEXTS", "final_decision") if k not in rec]
        if missing or rec["final_decision"] not in PUBMEDQA_DECISIONS or not isinstance(rec["CONTEXTS"], list):
            what = (
                f"entry {pmid} lacks {', '.join(missing)}"
                if missing
                else f"entry {pmid} has a bad CONTEXTS/final_decision"
            )
            raise UserError(what, "each entry needs QUESTION, CONTEXTS (list), final_decision (yes/no/maybe)",
                            str(path), _line_of(text, f'"{pmid}"'))  # fmt: skip
        labels = rec.get("LABELS") or [""] * len(rec["CONTEXTS"])
        context = "\n".join(f"{lab}: {c}" if lab else c for lab, c in zip(labels, rec["CONTEXTS"], strict=False))
        answer = rec["final_decision"]
        row = {
            "id": f"pubmedqa-{pmid}",
            "task": "pubmedqa",
            "prompt": _user(f"{PUBMEDQA_INSTRUCTION}\n\nContext:\n{context}\n\nQuestion: {rec['QUESTION']}"),
            "completion": _assistant(f"Answer: {answer}"),
            "meta": {"answer": answer, "pmid": pmid},
        }
        wrong = rng.choice([d for d in PUBMEDQA_DECISIONS if d != answer])
        sft.append(row)
        pref.append(_pair(row, f"Answer: {wrong}", {"rejected_answer": wrong, "error_type": "wrong_answer"}))
    return sft, pref


# ---- dialogue -> note summarization -------------------------------------------------------------------------------


def load_dialogue_summaries(path: Path) -> list[dict]:
    """ACI-Bench (dialogue,note) or MTS-Dialog (section_header,section_text,dialogue) CSV -> SFT rows of task
    "summarization" with meta source = the dialogue and empty key_facts."""
    path = Path(path)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or [])
        mts = {"section_header", "section_text", "dialogue"} <= columns
        if not mts and not {"dialogue", "note"} <= columns:
            raise UserError(f"unrecognised columns {sorted(columns)}",
                            "expected dialogue,note (ACI-Bench) or section_header,section_text,dialogue (MTS-Dialog)",
                            str(path), 1)  # fmt: skip
        rows = []
        for i, rec in enumerate(reader):
            if None in rec or any(v is None for v in rec.values()):
                raise UserError(
                    "row has the wrong number of fields", "check quoting in this row", str(path), reader.line_num
                )
            rows.append(_dialogue_row(path, i, rec, mts))
    return rows


def _dialogue_row(path: Path, i: int, rec: dict, mts: bool) -> dict:
    dialogue = rec["dialogue"].strip()
    if mts:
        header = rec["section_header"].strip()
        section = MTS_SECTIONS.get(header.upper(), header.lower())
        instruction = (
            f"Write the {section} section ({header}) of the clinical note for this doctor-patient conversation. "
            "Use only what was said."
        )
        target, rid, extra = rec["section_text"].strip(), rec.get("ID") or str(i), {"section_header": header}
    else:
        instruction = "Write the clinical visit note for this doctor-patient conversation. Use only what was said."
        target, rid, extra = rec["note"].strip(), rec.get("encounter_id") or str(i), {"dataset": rec.get("dataset", "")}
    return {
        "id": f"{path.stem}-{rid}",
        "task": "summarization",
        "prompt": _user(f"{instruction}\n\nConversation:\n{dialogue}"),
        "completion": _assistant(target),
        "meta": {"source": dialogue, "key_facts": [], **extra},
    }
