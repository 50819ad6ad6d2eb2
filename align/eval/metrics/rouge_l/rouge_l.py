"""`evaluate` metric: mean ROUGE-L F1 over (prediction, reference) pairs; load with `align.eval.load.load_metric`."""

from __future__ import annotations

import datasets
import evaluate

from align.eval.metrics import mean, rouge_l_f1

_DESCRIPTION = "ROUGE-L F1 on lower-cased word tokens (punctuation dropped), averaged over examples."
_INPUTS = """
Args:
    predictions: list of generated texts.
    references: list of reference texts, one per prediction.
Returns:
    rouge_l: mean F1 of the longest common subsequence of word tokens, in [0, 1].
"""


class RougeL(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Lin, 2004. ROUGE: A Package for Automatic Evaluation of Summaries.",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        return {"rouge_l": mean([rouge_l_f1(p, r) for p, r in zip(predictions, references, strict=True)])}
