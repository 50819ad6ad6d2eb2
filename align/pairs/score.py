"""Score one answer against its canonical SFT row with the task's metric: a number to rank by and an error type.

Scores only need to order the answers to one prompt, so each task uses the metric the report judges it by:
- triage: 1.0 when the ESI level is right; a wrong level costs per level off, under-triage (less urgent than gold)
  twice as much as over-triage: -1.0 x levels over, -2.0 x levels under; unparseable -8.0 (the worst: 4 levels under).
- provider_routing, reasoning, pubmedqa: 1.0 right, 0.0 wrong or unparseable.
- summarization: key-fact recall minus unsupported-fact rate, in [-1, 1] (align.eval.metrics definitions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from align.errors import UserError
from align.eval import metrics as m
from align.eval.parse import parse_choice, parse_esi, parse_route, parse_yes_no_maybe

OVER_TRIAGE_COST = 1.0  # per ESI level more urgent than gold
UNDER_TRIAGE_COST = 2.0  # per ESI level less urgent than gold: sending a sick patient to wait is the worse error
UNPARSEABLE_TRIAGE = -UNDER_TRIAGE_COST * (len(m.ESI_LEVELS) - 1)  # -8.0, as bad as ESI 5 for an ESI 1 patient


@dataclass(frozen=True)
class Scored:
    """score: higher is better; error_type: what went wrong (or `correct`); prediction: the parsed label, if any."""

    score: float
    error_type: str
    prediction: Any = None


def _meta(row: dict, key: str, task: str) -> Any:
    meta = row.get("meta") or {}
    if key not in meta:
        raise UserError(
            f"prompt row '{row.get('id', '?')}' of task '{task}' has no meta.{key}",
            f"add the gold answer as meta.{key} (canonical SFT rows, see data/clinical/sft_train.jsonl)",
        )
    return meta[key]


def score_triage(text: str, row: dict) -> Scored:
    gold = _meta(row, "esi", "triage")
    if gold not in m.ESI_LEVELS:
        raise UserError(f"prompt row '{row.get('id', '?')}' has meta.esi={gold!r}", "use an ESI level 1..5")
    level = parse_esi(text)
    if level is None:
        return Scored(UNPARSEABLE_TRIAGE, "unparseable")
    if level == gold:
        return Scored(1.0, "correct", level)
    if level > gold:  # numerically greater = less urgent
        return Scored(-UNDER_TRIAGE_COST * (level - gold), "under_triage", level)
    return Scored(-OVER_TRIAGE_COST * (gold - level), "over_triage", level)


def _label(prediction: Any, gold: Any) -> Scored:
    if prediction is None:
        return Scored(0.0, "unparseable")
    return Scored(1.0, "correct", prediction) if prediction == gold else Scored(0.0, "wrong", prediction)


def score_routing(text: str, row: dict) -> Scored:
    return _label(parse_route(text), _meta(row, "label", "provider_routing"))


def score_reasoning(text: str, row: dict) -> Scored:
    options = _meta(row, "options", "reasoning")
    return _label(parse_choice(text, options), str(_meta(row, "answer", "reasoning")).upper())


def score_pubmedqa(text: str, row: dict) -> Scored:
    meta = row.get("meta") or {}
    key = next((k for k in ("answer", "final_decision", "label") if k in meta), "answer")
    return _label(parse_yes_no_maybe(text), str(_meta(row, key, "pubmedqa")).strip().lower())


def _drug_lexicon() -> tuple[str, ...]:
    from align.data.tasks.summarization import DRUGS

    return tuple(DRUGS)


def score_summary(text: str, row: dict) -> Scored:
    facts = list(_meta(row, "key_facts", "summarization"))
    meta = row.get("meta") or {}
    source = str(meta["source"]) if "source" in meta else str(row["prompt"][-1]["content"])  # the note is the prompt
    recall = m.key_fact_recall(text, facts)
    unsupported = m.unsupported_fact_rate(text, source, _drug_lexicon())
    missed, invented = recall < 1.0, unsupported > 0.0
    kind = {
        (False, False): "complete",
        (True, False): "missed_facts",
        (False, True): "unsupported_facts",
        (True, True): "missed_and_unsupported",
    }[(missed, invented)]
    return Scored(recall - unsupported, kind)


AnswerScorer = Callable[[str, dict], Scored]
PAIR_SCORERS: dict[str, AnswerScorer] = {
    "triage": score_triage,
    "provider_routing": score_routing,
    "reasoning": score_reasoning,
    "pubmedqa": score_pubmedqa,
    "summarization": score_summary,
}


def check_scorable(tasks: set[str]) -> None:
    """Fail, before any model loads, when a task has no scorer."""
    missing = sorted(tasks - set(PAIR_SCORERS))
    if missing:
        raise UserError(
            f"no pair scorer for task '{missing[0]}'",
            f"on-policy pairs need a task metric; tasks with one: {', '.join(PAIR_SCORERS)} (filter with data.tasks)",
        )


def score_answer(task: str, text: str, row: dict) -> Scored:
    """Score `text` as an answer to `row` (a canonical SFT row of `task` with its gold in meta)."""
    check_scorable({task})
    return PAIR_SCORERS[task](text, row)
