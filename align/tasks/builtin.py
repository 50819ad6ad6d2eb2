"""The tasks align knows by name: the bundled clinical tasks and the real benchmarks `align data import` writes.

Each is one definition below — its instruction (the bundled builders and the importer write it into every prompt),
its gold field, parser and answer prefix, its metrics by type, and for the real benchmarks the published results of
other models that the report shows beside this run's (labelled as such, with their source).
"""

from __future__ import annotations

from align.tasks.base import Anchor
from align.tasks.closed import ChoiceTask, LabelTask
from align.tasks.parse import ROUTE_SYNONYMS, parse_esi, parse_route, parse_yes_no_maybe
from align.tasks.text import TextTask

MMEDLM = "Qiu et al., Nature Communications 2024 (s41467-024-52417-z), table 3"


def _anchors(split: str, results: dict[str, float]) -> tuple[Anchor, ...]:
    return tuple(Anchor(model, value, MMEDLM, split) for model, value in results.items())


TRIAGE = LabelTask(
    "triage",
    labels=(1, 2, 3, 4, 5),
    gold="esi",
    parser=parse_esi,
    answer_prefix="ESI level: ",
    ordinal=True,  # ESI 1 (most urgent) .. 5: a later level than gold is under-triage
    call_names=("under_triage", "over_triage"),
    normalise=lambda v: int(v) if isinstance(v, int | str) and str(v).strip().isdigit() else v,
    max_new_tokens=112,  # the walk through the decision points: up to 104 tokens in the bundled answers
    description="ESI v4 level of an emergency department patient (bundled synthetic vignettes)",
    instruction=(
        "You are an emergency department triage nurse. Assign an Emergency Severity Index (ESI v4) level: walk the "
        "decision points A-D one per line up to the one that decides, then give 'ESI level: N' on the last line."
    ),
)
ROUTING = LabelTask(
    "provider_routing",
    labels=("physician", "nurse", "pharmacist", "front_desk"),
    gold="label",
    parser=parse_route,
    synonyms=ROUTE_SYNONYMS,
    answer_prefix="Route to: ",
    max_new_tokens=32,
    description="who should handle a patient-portal message (bundled synthetic messages)",
    instruction=(
        "You sort messages sent to a clinic through its patient portal. Choose who should handle this message: "
        "physician, nurse, pharmacist or front_desk. Answer with 'Route to: X' on the first line, then 'Reason: ...'."
    ),
)
REASONING = ChoiceTask(
    "reasoning",
    max_new_tokens=48,
    description="clinical multiple-choice questions (bundled synthetic vignettes)",
    instruction=(
        "Answer the multiple-choice question. Reply with 'Answer: X' (the option letter) on the first line, then "
        "'Explanation: ...' in one or two sentences."
    ),
)
SUMMARIZATION = TextTask(
    "summarization",
    facts="key_facts",
    source="source",
    max_new_tokens=160,
    description="summary of a clinical note (bundled synthetic notes with key facts)",
    instruction=(
        "Summarize this clinical note for a colleague in 3-5 sentences. Keep the assessment (with side), every "
        "medication with its dose and frequency, allergies, the key lab result and the follow-up plan. Add nothing "
        "that is not in the note."
    ),
)

MCQ_INSTRUCTION = "Answer the multiple-choice question. Reply with 'Answer: X' (the option letter) on the first line."
MEDQA = ChoiceTask(
    "medqa",
    instruction=MCQ_INSTRUCTION,
    max_new_tokens=24,
    description="MedQA (USMLE, 4 options; Jin et al. 2021)",
    anchors=_anchors(
        "MedQA 4-option official test set (1,273 questions)",
        {"Llama-3-8B": 0.609, "Mistral-7B": 0.508, "MEDITRON-7B": 0.572, "MMed-Llama3-8B": 0.654},
    ),
)
MEDMCQA = ChoiceTask(
    "medmcqa",
    instruction=MCQ_INSTRUCTION,
    max_new_tokens=24,
    description="MedMCQA (Indian medical entrance exams; Pal et al. 2022)",
)
PUBMEDQA = LabelTask(
    "pubmedqa",
    labels=("yes", "no", "maybe"),
    gold="answer",
    parser=parse_yes_no_maybe,
    answer_prefix="Answer: ",
    normalise=lambda v: str(v).strip().lower(),
    max_new_tokens=16,
    description="PubMedQA PQA-L (yes/no/maybe from abstracts; Jin et al. 2019)",
    anchors=_anchors(
        "PubMedQA PQA-L official test set (500 questions)",
        {"Llama-3-8B": 0.730, "Mistral-7B": 0.754, "MEDITRON-7B": 0.744, "MMed-Llama3-8B": 0.801},
    ),
    instruction=(
        "Answer the research question using the abstract excerpts. Reply with 'Answer: yes', 'Answer: no' or "
        "'Answer: maybe' on the first line."
    ),
)
MTS_DIALOG = TextTask(
    "mts_dialog",
    source="source",
    max_new_tokens=160,
    description="MTS-Dialog: one note section from a doctor-patient dialogue (Ben Abacha et al., EACL 2023)",
)
ACI_BENCH = TextTask(
    "aci_bench",
    source="source",
    max_new_tokens=512,
    description="ACI-Bench: a full visit note from a doctor-patient dialogue (Yim et al., Sci Data 2023)",
)

BUILTIN = {
    t.name: t for t in (TRIAGE, ROUTING, REASONING, SUMMARIZATION, MEDQA, MEDMCQA, PUBMEDQA, MTS_DIALOG, ACI_BENCH)
}
