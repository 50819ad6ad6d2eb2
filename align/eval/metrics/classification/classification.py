"""`evaluate` metric for single-label answers (routing, MCQ letter, yes/no/maybe): accuracy, macro-F1, unparsed rate.

Predictions are parsed labels (`align.eval.parse`), with None for an unparsed answer, which counts as wrong.
"""

from __future__ import annotations

import datasets
import evaluate

from align.eval.metrics import accuracy, macro_f1, mean, unparsed_flags

_DESCRIPTION = "Single-label classification: accuracy, macro-F1 over gold ∪ predicted labels, unparsed rate."
_INPUTS = """
Args:
    predictions: parsed labels (str), or None where the answer could not be parsed.
    references: gold labels (str).
Returns:
    accuracy, macro_f1, unparsed_rate.
"""


class Classification(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions: list[str | None], references: list[str]) -> dict[str, float]:
        return {
            "accuracy": accuracy(predictions, references),
            "macro_f1": macro_f1(predictions, references),
            "unparsed_rate": mean(unparsed_flags(predictions)),
        }
