"""Free-text tasks scored against a reference: ROUGE-1/2/L/Lsum F1 (`rouge_score`, stemmed: the published ACI-Bench
and MTS-Dialog convention), plus key-fact recall when rows list their key facts and the unsupported-fact rate when
the task names the source the answer must stay within (numbers with units, drug names from `DRUG_LEXICON`).

A task nobody declared is a `TextTask` against the gold answer itself (an SFT row's completion, a preference row's
chosen answer): the report still says whether SFT+DPO answered closer to the chosen answers than SFT did.
"""

from __future__ import annotations

from typing import Any

import align.tasks.metrics as m
from align.tasks.base import Scored, Task, TaskScores, from_flags, reference_text, required, row_error

# Drug names the unsupported-fact rate looks for (lower case; multi-word names are matched as phrases): a summary
# that names a drug its source does not contain has invented it. Every drug the bundled generator writes is here.
DRUG_LEXICON: tuple[str, ...] = tuple(sorted({
    "acetaminophen", "albuterol", "allopurinol", "alprazolam", "amiodarone", "amitriptyline", "amlodipine", "amoxicillin",
    "ampicillin", "apixaban", "aspirin", "atenolol", "atorvastatin", "azithromycin", "baclofen", "budesonide",
    "bupropion", "buspirone", "carvedilol", "cefazolin", "ceftriaxone", "cephalexin", "cetirizine", "ciprofloxacin",
    "citalopram", "clonazepam", "clopidogrel", "codeine", "cyclobenzaprine", "dexamethasone", "diazepam", "diclofenac",
    "digoxin", "diltiazem", "diphenhydramine", "doxycycline", "duloxetine", "enalapril", "enoxaparin", "escitalopram",
    "esomeprazole", "famotidine", "fluconazole", "fluoxetine", "fluticasone", "furosemide", "gabapentin", "glipizide",
    "heparin", "hydrochlorothiazide", "hydrocodone", "hydroxychloroquine", "ibuprofen", "insulin", "insulin glargine",
    "ipratropium", "lamotrigine", "levetiracetam", "levofloxacin", "levothyroxine", "lisinopril", "loratadine",
    "lorazepam", "losartan", "meloxicam", "metformin", "methotrexate", "methylprednisolone", "metoprolol",
    "metoprolol succinate", "metronidazole", "montelukast", "morphine", "naproxen", "nitrofurantoin", "nitroglycerin",
    "omeprazole", "ondansetron", "oxycodone", "pantoprazole", "paroxetine", "penicillin", "pravastatin", "prednisone",
    "pregabalin", "propranolol", "quetiapine", "ranitidine", "rivaroxaban", "rosuvastatin", "sertraline", "simvastatin",
    "spironolactone", "sulfamethoxazole", "sumatriptan", "tamsulosin", "tiotropium", "topiramate", "tramadol",
    "trazodone", "valsartan", "vancomycin", "venlafaxine", "warfarin", "zolpidem",
}))  # fmt: skip
TEXT_DIRECTIONS = {name: True for name in m.ROUGE_TYPES} | {
    "key_fact_recall": True,
    "unsupported_fact_rate": False,
    "length_words": None,
}


class TextTask(Task):
    """Free text against a reference; `facts` names the row field listing key facts, `source` the field holding the
    text the answer must be supported by (e.g. the note or dialogue), `reference` the field holding the reference."""

    kind = "text"

    def __init__(
        self,
        name: str,
        reference: str = "",
        facts: str = "",
        source: str = "",
        **common: Any,
    ) -> None:
        super().__init__(name, **({"max_new_tokens": 160} | common))
        self.reference_field, self.facts_field, self.source_field = reference, facts, source

    def reference(self, row: dict) -> str:
        if not self.reference_field:
            return reference_text(row)
        fix = f"add it, or set tasks.{self.name}.reference"
        return str(required(row, self.reference_field, self.name, "its reference text", fix))

    def facts(self, row: dict) -> list[str] | None:
        if not self.facts_field:
            return None
        fix = f"add a list of facts, or drop tasks.{self.name}.facts"
        value = required(row, self.facts_field, self.name, "its key facts", fix)
        if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
            raise row_error(
                row, f"of task '{self.name}' lists its key facts as {type(value).__name__}", "give a list of strings"
            )
        return value

    def source(self, row: dict) -> str | None:
        if not self.source_field:
            return None
        fix = f"add it, or drop tasks.{self.name}.source"
        return str(required(row, self.source_field, self.name, "the text it must stay within", fix))

    def check_row(self, row: dict) -> None:
        self.reference(row), self.facts(row), self.source(row)

    def parse(self, text: str, row: dict) -> str:
        return text

    def score(self, texts: list[str], rows: list[dict]) -> TaskScores:
        self.check_scores(texts, rows)
        rouge = [m.rouge_f1(t, self.reference(r)) for t, r in zip(texts, rows, strict=True)]
        per_example = {name: [s[name] for s in rouge] for name in m.ROUGE_TYPES}
        facts = [self.facts(r) for r in rows]
        if any(f for f in facts):  # rows with key facts listed (real dialogue sets list none)
            per_example["key_fact_recall"] = [m.key_fact_recall(t, f or []) for t, f in zip(texts, facts, strict=True)]
        sources = [self.source(r) for r in rows]
        if self.source_field:
            per_example["unsupported_fact_rate"] = [
                m.unsupported_fact_rate(t, s or "", DRUG_LEXICON) for t, s in zip(texts, sources, strict=True)
            ]
        per_example["length_words"] = [float(m.length_words(t)) for t in texts]
        return from_flags(per_example, "rougeL", {k: TEXT_DIRECTIONS[k] for k in per_example})

    def pair_score(self, text: str, row: dict) -> Scored:
        """Key-fact recall (or ROUGE-L against the reference, when no facts are listed) minus the unsupported rate."""
        facts, source = self.facts(row), self.source(row)
        covered = m.key_fact_recall(text, facts) if facts else m.rouge_f1(text, self.reference(row))["rougeL"]
        unsupported = m.unsupported_fact_rate(text, source, DRUG_LEXICON) if source is not None else 0.0
        kind = {
            (False, False): "complete",
            (True, False): "missed_facts",
            (False, True): "unsupported_facts",
            (True, True): "missed_and_unsupported",
        }[(covered < 1.0, unsupported > 0.0)]
        return Scored(covered - unsupported, kind)
