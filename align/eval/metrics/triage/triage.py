"""`evaluate` metric for ED triage: accuracy, macro-F1, under/over-triage rates and the ESI confusion matrix.

Predictions are parsed ESI levels (`align.eval.parse.parse_esi`), with None for an unparsed answer.
"""

from __future__ import annotations

import datasets
import evaluate

from align.eval.metrics import (
    accuracy,
    macro_f1,
    mean,
    over_triage_flags,
    triage_confusion,
    under_triage_flags,
    unparsed_flags,
)

_DESCRIPTION = "ESI triage: accuracy, macro-F1, under-/over-triage rate, unparsed rate, 5x6 confusion."
_INPUTS = """
Args:
    predictions: parsed ESI levels 1..5, or None where the answer could not be parsed.
    references: gold ESI levels 1..5.
Returns:
    accuracy, macro_f1 (over gold ∪ predicted levels), under_triage_rate (predicted less urgent, i.e. numerically
    greater, than gold), over_triage_rate, unparsed_rate, confusion (rows gold 1..5; columns predicted 1..5 then
    unparsed). Unparsed answers are wrong but neither under- nor over-triage.
"""


class Triage(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Gilboy et al., Emergency Severity Index (ESI) Implementation Handbook.",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions: list[int | None], references: list[int]) -> dict[str, object]:
        return {
            "accuracy": accuracy(predictions, references),
            "macro_f1": macro_f1(predictions, references),
            "under_triage_rate": mean(under_triage_flags(predictions, references)),
            "over_triage_rate": mean(over_triage_flags(predictions, references)),
            "unparsed_rate": mean(unparsed_flags(predictions)),
            "confusion": triage_confusion(predictions, references),
        }
