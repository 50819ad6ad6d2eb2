"""Metric math as plain functions; the `evaluate` modules in the sub-folders and `align.eval.scoring` both call these.

Definitions (the report's numbers mean exactly this):
- Labels are already parsed (see `align.eval.parse`); `None` is an unparsed answer. It is wrong for accuracy,
  a false negative of its gold class for macro-F1, and neither under- nor over-triage.
- macro-F1: mean over the labels in gold ∪ predicted (None excluded) of F1 = 2TP / (2TP + FP + FN). A label that
  only the model predicts (never gold) therefore counts, with F1 = 0, which punishes inventing labels.
- under-triage: predicted ESI numerically greater than gold (less urgent); over-triage: smaller (more urgent). Both
  are shares of all examples, unparsed included in the denominator.
- ROUGE-L F1: longest common subsequence of lower-cased word tokens (runs of letters/digits; punctuation dropped).
  F1 = 2PR / (P + R) with P = LCS/len(prediction), R = LCS/len(reference); 0 when either side has no tokens.
- key-fact recall: share of key facts whose normalised text (lower case, whitespace collapsed) is a substring of
  the normalised summary; 1.0 when a row has no key facts (nothing could be missed).
- unsupported-fact rate: mentions in the summary (numbers with an optional unit, and lexicon drug names) that the
  source does not contain, divided by all such mentions in the summary; 0.0 when the summary has none.
Empty inputs give 0.0 for shares, so that callers never see NaN in JSON.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence

ESI_LEVELS = (1, 2, 3, 4, 5)

_WORD = re.compile(r"[^\W_]+")


def tokenize_words(text: str) -> list[str]:
    """Lower-cased runs of letters and digits: "Left-knee pain, 3 days." -> ['left', 'knee', 'pain', '3', 'days']."""
    return _WORD.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (O(len(a)*len(b)) time, O(len(b)) memory)."""
    previous = [0] * (len(b) + 1)
    for token_a in a:
        current = [0]
        for j, token_b in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token_a == token_b else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l_f1(prediction: str, reference: str) -> float:
    """ROUGE-L F1 of one prediction against one reference (see the module docstring)."""
    pred, ref = tokenize_words(prediction), tokenize_words(reference)
    lcs = lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


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


def under_triage_flags(predictions: Sequence[int | None], references: Sequence[int]) -> list[float]:
    """1.0 where the predicted ESI is less urgent (numerically greater) than gold; unparsed -> 0.0."""
    _check_lengths(predictions, references)
    return [1.0 if p is not None and p > g else 0.0 for p, g in zip(predictions, references, strict=True)]


def over_triage_flags(predictions: Sequence[int | None], references: Sequence[int]) -> list[float]:
    """1.0 where the predicted ESI is more urgent (numerically smaller) than gold; unparsed -> 0.0."""
    _check_lengths(predictions, references)
    return [1.0 if p is not None and p < g else 0.0 for p, g in zip(predictions, references, strict=True)]


def unparsed_flags(predictions: Sequence[Hashable | None]) -> list[float]:
    return [1.0 if p is None else 0.0 for p in predictions]


def triage_confusion(predictions: Sequence[int | None], references: Sequence[int]) -> list[list[int]]:
    """5 x 6 counts: row = gold ESI 1..5, column = predicted ESI 1..5, last column = unparsed."""
    _check_lengths(predictions, references)
    matrix = [[0] * (len(ESI_LEVELS) + 1) for _ in ESI_LEVELS]
    for p, g in zip(predictions, references, strict=True):
        if g not in ESI_LEVELS:
            raise ValueError(f"gold ESI must be one of {ESI_LEVELS}, got {g!r}")
        column = len(ESI_LEVELS) if p is None else ESI_LEVELS.index(p)
        matrix[ESI_LEVELS.index(g)][column] += 1
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
