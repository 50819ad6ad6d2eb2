"""`evaluate` metric for summaries: key-fact recall and unsupported-fact rate, each averaged over examples."""

from __future__ import annotations

import datasets
import evaluate

from align.eval.metrics import key_fact_recall, mean, unsupported_fact_rate

_DESCRIPTION = "Faithfulness of clinical summaries: key-fact recall and unsupported-fact (number/drug) rate."
_INPUTS = """
Args:
    predictions: generated summaries.
    references: for each summary, the list of key facts it should contain verbatim (case-insensitive).
    sources: for each summary, the source note it summarises.
    drug_lexicon: optional list of drug names; a drug in the summary but not in the source is unsupported.
Returns:
    key_fact_recall: mean share of key facts present (1.0 for an example with no key facts).
    unsupported_fact_rate: mean share of number/drug mentions absent from the source (0.0 for none).
"""


class KeyFacts(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
            ),
        )

    def _compute(
        self,
        predictions: list[str],
        references: list[list[str]],
        sources: list[str] | None = None,
        drug_lexicon: list[str] | tuple[str, ...] = (),
    ) -> dict[str, float]:
        if sources is None or len(sources) != len(predictions):
            raise ValueError("key_facts needs sources=[source note per prediction], one per prediction")
        recall = [key_fact_recall(p, facts) for p, facts in zip(predictions, references, strict=True)]
        unsupported = [unsupported_fact_rate(p, s, drug_lexicon) for p, s in zip(predictions, sources, strict=True)]
        return {"key_fact_recall": mean(recall), "unsupported_fact_rate": mean(unsupported)}
