"""Metric math as plain functions, the one scoring path of every task (align/tasks/).

Definitions (the report's numbers mean exactly this):
- Labels are already parsed (see `align.tasks.parse`); `None` is an unparsed answer. It is wrong for accuracy,
  a false negative of its gold class for macro-F1, and neither an under- nor an over-call.
- macro-F1: mean over the labels in gold ∪ predicted (None excluded) of F1 = 2TP / (2TP + FP + FN). A label that
  only the model predicts (never gold) therefore counts, with F1 = 0, which punishes inventing labels.
- under-call / over-call on an ordinal scale listed from most to least severe (ESI 1..5): a prediction later in the
  list than gold is an under-call (under-triage: less urgent), earlier an over-call. Both are shares of all
  examples, unparsed included in the denominator. Error cost: cost[gold][predicted], 0 when right; an unparsed
  answer costs the worst cost of the matrix (an unreadable answer is as bad as the worst error).
- ROUGE-1/2/L/Lsum F1: Google's `rouge_score` with the Porter stemmer, as the published ACI-Bench and MTS-Dialog
  numbers are computed (Lsum splits sentences on newlines); 0 when either side has no tokens.
- key-fact recall: share of key facts whose normalised text (lower case, whitespace collapsed) is a substring of
  the normalised summary; 1.0 when a row has no key facts (nothing could be missed).
- unsupported-fact rate: mentions in the summary (numbers with an optional unit, and lexicon drug names) that the
  source does not contain, divided by all such mentions in the summary; 0.0 when the summary has none.
Empty inputs give 0.0 for shares, so that callers never see NaN in JSON.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Hashable, Sequence

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@functools.cache
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge_f1(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1, -2, -L and -Lsum F1 of one prediction against one reference (stemmed, as published numbers are)."""
    scores = _rouge_scorer().score(reference, prediction)  # rouge_score takes (target, prediction)
    return {name: float(scores[name].fmeasure) for name in ROUGE_TYPES}


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean; 0.0 for an empty sequence."""
    return float(sum(values) / len(values)) if values else 0.0


def correct_flags(predictions: Sequence[Hashable | None], references: Sequence[Hashable]) -> list[float]:
    """1.0 where the parsed prediction equals gold, else 0.0 (unparsed is wrong)."""
    _check_lengths(predictions, references)
    return [1.0 if p is not None and p == g else 0.0 for p, g in zip(predictions, references, strict=True)]


def accuracy(predictions: Sequence[Hashable | None], references: Sequence[Hashable]) -> float:
    return mean(correct_flags(predictions, references))


def macro_f1(predictions: Sequence[Hashable | None], references: Sequence[Hashable]) -> float:
    """Mean per-label F1 over gold ∪ predicted labels (None excluded), F1 = 2TP / (2TP + FP + FN)."""
    _check_lengths(predictions, references)
    labels = set(references) | {p for p in predictions if p is not None}
    scores = []
    for label in labels:
        tp = sum(1 for p, g in zip(predictions, references, strict=True) if p == label and g == label)
        fp = sum(1 for p, g in zip(predictions, references, strict=True) if p == label and g != label)
        fn = sum(1 for p, g in zip(predictions, references, strict=True) if p != label and g == label)
        scores.append(2 * tp / (2 * tp + fp + fn))
    return mean(scores)


def under_call_flags(
    predictions: Sequence[Hashable | None], references: Sequence[Hashable], scale: Sequence
) -> list[float]:
    """1.0 where the prediction comes later on the scale (most severe first) than gold: under-triage; unparsed 0.0."""
    _check_lengths(predictions, references)
    rank = {label: i for i, label in enumerate(scale)}
    return [1.0 if p is not None and rank[p] > rank[g] else 0.0 for p, g in zip(predictions, references, strict=True)]


def over_call_flags(
    predictions: Sequence[Hashable | None], references: Sequence[Hashable], scale: Sequence
) -> list[float]:
    """1.0 where the prediction comes earlier on the scale than gold: over-triage; unparsed 0.0."""
    _check_lengths(predictions, references)
    rank = {label: i for i, label in enumerate(scale)}
    return [1.0 if p is not None and rank[p] < rank[g] else 0.0 for p, g in zip(predictions, references, strict=True)]


def error_costs(
    predictions: Sequence[Hashable | None],
    references: Sequence[Hashable],
    labels: Sequence,
    costs: Sequence[Sequence[float]],
) -> list[float]:
    """cost[gold][predicted] per example (rows and columns in `labels` order); unparsed: the worst cost there is."""
    _check_lengths(predictions, references)
    index = {label: i for i, label in enumerate(labels)}
    worst = float(max(max(row) for row in costs))
    return [
        worst if p is None else float(costs[index[g]][index[p]]) for p, g in zip(predictions, references, strict=True)
    ]


def ordinal_costs(n: int, under: float = 2.0, over: float = 1.0) -> list[list[float]]:
    """The default cost of an ordinal scale: `over` per step toward more severe, `under` per step toward less severe
    (an under-call, e.g. sending a sick patient to wait, costs twice as much). 3 levels -> [[0,2,4],[1,0,2],[2,1,0]]."""
    return [[(under * (j - i) if j > i else over * (i - j)) for j in range(n)] for i in range(n)]


def unparsed_flags(predictions: Sequence[Hashable | None]) -> list[float]:
    return [1.0 if p is None else 0.0 for p in predictions]


def confusion(
    predictions: Sequence[Hashable | None], references: Sequence[Hashable], labels: Sequence
) -> list[list[int]]:
    """len(labels) x (len(labels) + 1) counts: row = gold, column = predicted, last column = unparsed."""
    _check_lengths(predictions, references)
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * (len(labels) + 1) for _ in labels]
    for p, g in zip(predictions, references, strict=True):
        if g not in index:
            raise ValueError(f"gold must be one of {list(labels)}, got {g!r}")
        matrix[index[g]][len(labels) if p is None else index[p]] += 1
    return matrix


def normalise_fact(text: str) -> str:
    """Lower case, whitespace runs collapsed to one space, ends stripped."""
    return " ".join(text.lower().split())


def key_fact_recall(summary: str, key_facts: Sequence[str]) -> float:
    """Share of key facts found verbatim (after normalisation) in the summary; 1.0 with no key facts."""
    if not key_facts:
        return 1.0
    text = normalise_fact(summary)
    return sum(1 for fact in key_facts if normalise_fact(fact) in text) / len(key_facts)


# Units longest-first inside the alternation so "mcg" is not read as "m" + "cg" and "mmol" not as "mm".
_UNITS = ("units", "unit", "mmol", "mcg", "meq", "µg", "ug", "mg", "ml", "kg", "iu", "g", "l", "%")
_NUMBER = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)(?:\s*(" + "|".join(re.escape(u) for u in _UNITS) + r")(?![a-zµ]))?", re.IGNORECASE
)


def number_mentions(text: str) -> list[tuple[str, str]]:
    """(number, lower-cased unit or '') for each number in the text: "500 mg bid, 2 tabs" -> [('500','mg'), ('2','')]."""
    return [(m.group(1), (m.group(2) or "").lower()) for m in _NUMBER.finditer(text)]


def drug_mentions(text: str, drug_lexicon: Sequence[str]) -> list[str]:
    """Lexicon drug names found in the text (whole words, case-insensitive), one entry per occurrence."""
    found = []
    for drug in dict.fromkeys(d.lower() for d in drug_lexicon if d.strip()):  # dedupe, keep order
        pattern = r"(?<!\w)" + re.escape(drug) + r"(?!\w)"
        found.extend([drug] * len(re.findall(pattern, text.lower())))
    return found


def unsupported_fact_rate(summary: str, source: str, drug_lexicon: Sequence[str] = ()) -> float:
    """Unsupported mentions / all mentions in the summary (numbers with units, lexicon drugs); 0.0 when none.

    A number with a unit is supported when the source has the same number with the same unit ("500 mcg" is not
    supported by "500 mg": a wrong unit is a dosing error); a bare number is supported by the same number in the
    source with or without a unit.
    """
    source_numbers = set(number_mentions(source))
    source_bare = {number for number, _ in source_numbers}
    source_drugs = set(drug_mentions(source, drug_lexicon))
    supported, total = 0, 0
    for number, unit in number_mentions(summary):
        total += 1
        supported += (number, unit) in source_numbers if unit else number in source_bare
    for drug in drug_mentions(summary, drug_lexicon):
        total += 1
        supported += drug in source_drugs
    return (total - supported) / total if total else 0.0


def length_words(text: str) -> int:
    """Whitespace-separated words."""
    return len(text.split())


def _check_lengths(predictions: Sequence[object], references: Sequence[object]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references; they must pair up")
