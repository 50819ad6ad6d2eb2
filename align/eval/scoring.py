"""Score one task's generations against its canonical SFT test rows: aggregate metrics plus per-example values.

Invariant (tested): every key of `per_example` is also a key of `metrics`, and `metrics[k] == mean(per_example[k])`,
so the paired bootstrap on `per_example[k]` is a confidence interval for the reported `metrics[k]`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from align.errors import UserError
from align.eval import metrics as m
from align.eval.parse import parse_choice, parse_esi, parse_route, parse_yes_no_maybe

ROUTES = ("physician", "nurse", "pharmacist", "front_desk")
YES_NO_MAYBE = ("yes", "no", "maybe")

# Metrics where a smaller value is better; the report's verdict flips its sign for these.
LOWER_IS_BETTER = frozenset({"under_triage_rate", "over_triage_rate", "unparsed_rate", "unsupported_fact_rate"})
# Metrics with no better direction (shown, never called better or worse).
NO_DIRECTION = frozenset({"length_words"})


@dataclass
class TaskScores:
    """metrics: aggregate values; per_example: value per example for every mean-type metric; extra: the rest."""

    metrics: dict[str, float]
    per_example: dict[str, list[float]]
    primary_metric: str
    extra: dict[str, Any] = field(default_factory=dict)


def higher_is_better(metric: str) -> bool | None:
    """True/False for a direction, None for metrics such as summary length that have none."""
    return None if metric in NO_DIRECTION else metric not in LOWER_IS_BETTER


def _gold(row: dict, key: str, task: str, allowed: Sequence[Any] | None = None) -> Any:
    meta = row.get("meta") or {}
    if key not in meta:
        raise UserError(
            f"test row '{row.get('id', '?')}' of task '{task}' has no meta.{key}",
            f"add the gold answer as meta.{key} (see the canonical row contract)",
        )
    value = meta[key]
    if allowed is not None and value not in allowed:
        raise UserError(
            f"test row '{row.get('id', '?')}' of task '{task}' has meta.{key}={value!r}",
            f"use one of: {', '.join(map(str, allowed))}",
        )
    return value


def _from_flags(per_example: dict[str, list[float]], primary: str, extra: dict[str, Any] | None = None) -> TaskScores:
    metrics = {name: m.mean(values) for name, values in per_example.items()}
    return TaskScores(metrics=metrics, per_example=per_example, primary_metric=primary, extra=extra or {})


def _label_scores(predictions: list[Any], golds: list[Any], primary: str = "accuracy") -> TaskScores:
    """accuracy + unparsed_rate per example, macro_f1 as an aggregate only (it is not a mean over examples)."""
    scores = _from_flags(
        {"accuracy": m.correct_flags(predictions, golds), "unparsed_rate": m.unparsed_flags(predictions)},
        primary,
        {"n_unparsed": sum(p is None for p in predictions), "predictions": predictions},
    )
    scores.metrics["macro_f1"] = m.macro_f1(predictions, golds)
    return scores


def score_triage(generations: list[str], rows: list[dict], drug_lexicon: tuple[str, ...] = ()) -> TaskScores:
    golds = [_gold(row, "esi", "triage", m.ESI_LEVELS) for row in rows]
    predictions = [parse_esi(text) for text in generations]
    scores = _label_scores(predictions, golds)
    scores.per_example["under_triage_rate"] = m.under_triage_flags(predictions, golds)
    scores.per_example["over_triage_rate"] = m.over_triage_flags(predictions, golds)
    for name in ("under_triage_rate", "over_triage_rate"):
        scores.metrics[name] = m.mean(scores.per_example[name])
    scores.extra["confusion"] = m.triage_confusion(predictions, golds)
    return scores


def score_provider_routing(generations: list[str], rows: list[dict], drug_lexicon: tuple[str, ...] = ()) -> TaskScores:
    golds = [_gold(row, "label", "provider_routing", ROUTES) for row in rows]
    return _label_scores([parse_route(text) for text in generations], golds)


def score_reasoning(generations: list[str], rows: list[dict], drug_lexicon: tuple[str, ...] = ()) -> TaskScores:
    golds = [str(_gold(row, "answer", "reasoning")).upper() for row in rows]
    options = [_gold(row, "options", "reasoning") for row in rows]
    predictions = [parse_choice(text, opts) for text, opts in zip(generations, options, strict=True)]
    return _label_scores(predictions, golds)


def _pubmedqa_gold(row: dict) -> str:
    # PubMedQA calls it final_decision; converted rows may use answer or label. Accept the first one present.
    meta = row.get("meta") or {}
    key = next((k for k in ("answer", "final_decision", "label") if k in meta), "answer")
    return str(_gold(row, key, "pubmedqa")).strip().lower()


def score_pubmedqa(generations: list[str], rows: list[dict], drug_lexicon: tuple[str, ...] = ()) -> TaskScores:
    golds = [_pubmedqa_gold(row) for row in rows]
    for row, gold in zip(rows, golds, strict=True):
        if gold not in YES_NO_MAYBE:
            raise UserError(
                f"test row '{row.get('id', '?')}' of task 'pubmedqa' has gold {gold!r}", "use yes, no or maybe"
            )
    return _label_scores([parse_yes_no_maybe(text) for text in generations], golds)


def _reference_text(row: dict) -> str:
    completion = row.get("completion") or []
    if not completion or not isinstance(completion[-1], dict) or "content" not in completion[-1]:
        raise UserError(
            f"test row '{row.get('id', '?')}' of task 'summarization' has no completion text",
            'give it "completion": [{"role": "assistant", "content": "<reference summary>"}]',
        )
    return str(completion[-1]["content"])


def score_summarization(generations: list[str], rows: list[dict], drug_lexicon: tuple[str, ...] = ()) -> TaskScores:
    sources = [str(_gold(row, "source", "summarization")) for row in rows]
    key_facts = [list(_gold(row, "key_facts", "summarization")) for row in rows]
    references = [_reference_text(row) for row in rows]
    triples = list(zip(generations, references, sources, strict=True))
    per_example = {
        "rouge_l": [m.rouge_l_f1(text, ref) for text, ref, _ in triples],
        "key_fact_recall": [m.key_fact_recall(text, facts) for text, facts in zip(generations, key_facts, strict=True)],
        "unsupported_fact_rate": [m.unsupported_fact_rate(text, src, drug_lexicon) for text, _, src in triples],
        "length_words": [float(m.length_words(text)) for text in generations],
    }
    return _from_flags(per_example, "rouge_l")


Scorer = Callable[[list[str], list[dict], tuple[str, ...]], TaskScores]
SCORERS: dict[str, Scorer] = {
    "triage": score_triage,
    "provider_routing": score_provider_routing,
    "reasoning": score_reasoning,
    "pubmedqa": score_pubmedqa,
    "summarization": score_summarization,
}


def score_task(task: str, generations: list[str], rows: list[dict], drug_lexicon: tuple[str, ...] = ()) -> TaskScores:
    """Parse and score `generations[i]` against `rows[i]` (canonical SFT test rows of `task`, gold in meta)."""
    if task not in SCORERS:
        raise UserError(f"no scorer for task '{task}'", f"use one of: {', '.join(SCORERS)}")
    if len(generations) != len(rows):
        raise ValueError(f"task '{task}': {len(generations)} generations for {len(rows)} rows; they must pair up")
    if not rows:
        raise ValueError(f"task '{task}': no test rows to score")
    return SCORERS[task](list(generations), list(rows), tuple(drug_lexicon))
