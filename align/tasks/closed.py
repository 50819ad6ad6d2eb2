"""Closed-answer tasks: a label from a fixed set (`LabelTask`, optionally an ordinal scale with error costs) or an
option letter (`ChoiceTask`). Both score accuracy, unparsed rate and macro-F1; an ordinal label task also under- and
over-calls and the mean error cost, and shows a confusion matrix.

An answer is read by the task's parser (the bundled ones: align/tasks/parse.py; a declared label set: the first
label or synonym after an answer cue, else anywhere). For log-likelihood scoring, the candidates are
`answer_prefix + label` (e.g. "ESI level: 3", "Answer: B"); each candidate parses back to its own label (tested).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import align.tasks.metrics as m
from align.tasks.base import Scored, Task, TaskScores, field_of, from_flags, required, row_error
from align.tasks.parse import parse_choice

LETTERS = "ABCDEFGHIJ"
LABEL_DIRECTIONS = {"accuracy": True, "unparsed_rate": False, "macro_f1": True}


def closed_scores(predictions: list[Any], golds: list[Any], extra: dict | None = None) -> TaskScores:
    """accuracy + unparsed_rate per example; macro_f1 as an aggregate only (it is not a mean over examples)."""
    per_example = {"accuracy": m.correct_flags(predictions, golds), "unparsed_rate": m.unparsed_flags(predictions)}
    extra = {"n_unparsed": sum(p is None for p in predictions), "predictions": predictions, **(extra or {})}
    scores = from_flags(per_example, "accuracy", LABEL_DIRECTIONS, extra)
    scores.metrics["macro_f1"] = m.macro_f1(predictions, golds)
    return scores


def label_parser(labels: Sequence[Any], synonyms: dict[Any, Sequence[str]], prefix: str) -> Callable[[str], Any]:
    """A parser for a declared label set: the first label (or synonym) in the text after the answer prefix or an
    `Answer:`/`Label:` cue, else the first one anywhere; whole words, case-insensitive, longest match first."""
    words = {str(label).lower(): label for label in labels}
    words |= {str(s).lower(): label for label, syns in synonyms.items() for s in syns}
    alternation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    any_label = re.compile(rf"(?<![\w-])({alternation})(?![\w-])", re.IGNORECASE)
    cues = [re.escape(prefix.strip())] if prefix.strip() else []
    cue = re.compile(rf"(?:{'|'.join(cues + [r'answer', r'label', r'category'])})\s*(?:is)?\s*[:=-]?\s*", re.IGNORECASE)

    def parse(text: str) -> Any:
        for match in cue.finditer(text):
            found = any_label.match(text, match.end())
            if found:
                return words[found.group(1).lower()]
        found = any_label.search(text)
        return words[found.group(1).lower()] if found else None

    return parse


class LabelTask(Task):
    """A closed label set; `ordinal` labels run from most to least severe (ESI 1..5), so a later label than gold is an
    under-call; `costs[gold][predicted]` (default: 1 per step over, 2 per step under) weighs the errors."""

    kind = "label"

    def __init__(
        self,
        name: str,
        labels: Sequence[Any],
        gold: str = "label",
        parser: Callable[[str], Any] | None = None,
        synonyms: dict[Any, Sequence[str]] | None = None,
        answer_prefix: str = "Answer: ",
        ordinal: bool = False,
        costs: Sequence[Sequence[float]] | None = None,
        call_names: tuple[str, str] = ("under_call", "over_call"),
        normalise: Callable[[Any], Any] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(name, **({"max_new_tokens": 32} | common))
        self.labels, self.gold_field, self.answer_prefix = tuple(labels), gold, answer_prefix
        self.ordinal, self.call_names = ordinal, call_names
        self.parser = parser or label_parser(self.labels, synonyms or {}, answer_prefix)
        self.costs = [list(r) for r in costs] if costs else (m.ordinal_costs(len(self.labels)) if ordinal else None)
        self.normalise = normalise or (lambda v: v)

    def gold(self, row: dict) -> Any:
        fix = f"add it to the row (a column or meta field), or set tasks.{self.name}.gold"
        value = self.normalise(required(row, self.gold_field, self.name, "its gold label", fix))
        if value not in self.labels:
            raise row_error(
                row,
                f"of task '{self.name}' has gold label {value!r}, not one of the declared labels",
                f"use one of {', '.join(map(str, self.labels))}, or add it to tasks.{self.name}.labels",
            )
        return value

    def check_row(self, row: dict) -> None:
        self.gold(row)

    def parse(self, text: str, row: dict) -> Any:
        return self.parser(text)

    def candidates(self, row: dict) -> list[str]:
        return [f"{self.answer_prefix}{label}" for label in self.labels]

    def chance(self, rows: list[dict]) -> dict[str, float]:
        """Uniform guessing, and always answering the most common gold label of these rows."""
        golds = Counter(self.gold(r) for r in rows)
        return {"accuracy": 1 / len(self.labels), "majority_accuracy": max(golds.values()) / len(rows)}

    def score(self, texts: list[str], rows: list[dict]) -> TaskScores:
        self.check_scores(texts, rows)
        predictions = [self.parse(t, r) for t, r in zip(texts, rows, strict=True)]
        golds = [self.gold(r) for r in rows]
        scores = closed_scores(predictions, golds)
        if self.ordinal:
            under, over = self.call_names
            scores.per_example[f"{under}_rate"] = m.under_call_flags(predictions, golds, self.labels)
            scores.per_example[f"{over}_rate"] = m.over_call_flags(predictions, golds, self.labels)
            scores.directions |= {f"{under}_rate": False, f"{over}_rate": False}
        if self.costs is not None:
            scores.per_example["error_cost"] = m.error_costs(predictions, golds, self.labels, self.costs)
            scores.directions["error_cost"] = False
        for name, values in scores.per_example.items():
            scores.metrics[name] = m.mean(values)
        if self.ordinal or len(self.labels) <= 10:
            scores.extra["confusion"] = m.confusion(predictions, golds, self.labels)
            scores.extra["labels"] = [str(label) for label in self.labels]
        return scores

    def pair_score(self, text: str, row: dict) -> Scored:
        """1 right; with costs minus the error's cost (an unreadable answer costs the worst); else 0 wrong."""
        gold, predicted = self.gold(row), self.parse(text, row)
        if predicted == gold:
            return Scored(1.0, "correct", predicted)
        if self.costs is None:
            return Scored(0.0, "unparseable" if predicted is None else "wrong", predicted)
        (cost,) = m.error_costs([predicted], [gold], self.labels, self.costs)
        if predicted is None:
            return Scored(-cost, "unparseable")
        if not self.ordinal:
            return Scored(-cost, "wrong", predicted)
        later = self.labels.index(predicted) > self.labels.index(gold)
        return Scored(-cost, self.call_names[0] if later else self.call_names[1], predicted)


class ChoiceTask(Task):
    """Multiple choice with lettered options: the options are a {letter: text} mapping or a list (lettered A, B, ...)
    in a row field; the gold is a letter or an option's text."""

    kind = "choice"

    def __init__(
        self,
        name: str,
        options: str = "options",
        gold: str = "answer",
        answer_prefix: str = "Answer: ",
        **common: Any,
    ) -> None:
        super().__init__(name, **({"max_new_tokens": 32} | common))
        self.options_field, self.gold_field, self.answer_prefix = options, gold, answer_prefix

    def options(self, row: dict) -> dict[str, str]:
        try:
            value = field_of(row, self.options_field)
        except KeyError:
            value = None
        if isinstance(value, str):
            value = _json_or(value)
        if isinstance(value, list):
            value = {LETTERS[i]: v for i, v in enumerate(value[: len(LETTERS)])}
        if not isinstance(value, dict) or len(value) < 2:
            raise row_error(
                row,
                f"of task '{self.name}' has no options in '{self.options_field}'",
                f'give {{"A": "...", "B": "..."}} or a list of at least two options, or set tasks.{self.name}.options',
            )
        return {str(k).strip().upper(): str(v) for k, v in value.items()}

    def gold(self, row: dict) -> str:
        options = self.options(row)
        fix = f"add the answer letter or text, or set tasks.{self.name}.gold"
        value = str(required(row, self.gold_field, self.name, "its gold answer", fix)).strip()
        if value.upper() in options:
            return value.upper()
        by_text = [k for k, v in options.items() if v.strip().lower() == value.lower()]
        if len(by_text) == 1:
            return by_text[0]
        raise row_error(
            row,
            f"of task '{self.name}' has gold answer {value!r}, neither an option letter nor an option's text",
            f"use one of {', '.join(options)}",
        )

    def check_row(self, row: dict) -> None:
        self.gold(row)

    def parse(self, text: str, row: dict) -> str | None:
        return parse_choice(text, self.options(row))

    def candidates(self, row: dict) -> list[str]:
        return [f"{self.answer_prefix}{letter}" for letter in self.options(row)]

    def chance(self, rows: list[dict]) -> dict[str, float]:
        return {"accuracy": m.mean([1 / len(self.options(r)) for r in rows])}

    def score(self, texts: list[str], rows: list[dict]) -> TaskScores:
        self.check_scores(texts, rows)
        predictions = [self.parse(t, r) for t, r in zip(texts, rows, strict=True)]
        return closed_scores(predictions, [self.gold(r) for r in rows])

    def pair_score(self, text: str, row: dict) -> Scored:
        predicted = self.parse(text, row)
        if predicted is None:
            return Scored(0.0, "unparseable")
        return Scored(1.0, "correct", predicted) if predicted == self.gold(row) else Scored(0.0, "wrong", predicted)


def _json_or(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
