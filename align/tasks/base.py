"""What every task is: the one object that owns a task's answer format, gold answers, parsing, per-example metrics
(with their direction and the primary one), the on-policy pair score and, for closed answers, the candidates that
log-likelihood scoring compares.

Consumers never keep a table of their own: data loading asks `check_row`, the report `score` / `candidates` /
`chance`, `align pairs generate` `pair_score`, the decisions diagnostic `candidates` and `gold_index`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import align.tasks.metrics as m
from align.errors import UserError

Scoring = Literal["generate", "loglik"]


@dataclass(frozen=True)
class Anchor:
    """A published result of another model on a benchmark, shown beside this run's numbers, labelled as such."""

    model: str
    value: float  # on the task's primary metric, as a share (0.609, not 60.9)
    source: str  # where it was published
    split: str = ""  # what it was measured on (e.g. the full official test set)


@dataclass
class TaskScores:
    """metrics: aggregate values; per_example: a value per example for every mean-type metric (the paired bootstrap
    runs on these: metrics[k] == mean(per_example[k])); directions: True/False/None = higher better / lower better /
    no direction, for every metric; extra: the rest (predictions, confusion matrix)."""

    metrics: dict[str, float]
    per_example: dict[str, list[float]]
    primary_metric: str
    directions: dict[str, bool | None]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scored:
    """One answer's pair score: higher is better; error_type says what went wrong (or `correct`)."""

    score: float
    error_type: str
    prediction: Any = None


def from_flags(
    per_example: dict[str, list[float]], primary: str, directions: dict[str, bool | None], extra: dict | None = None
) -> TaskScores:
    """Aggregate metrics as the means of per-example values."""
    metrics = {name: m.mean(values) for name, values in per_example.items()}
    return TaskScores(metrics, per_example, primary, dict(directions), extra or {})


def where(row: dict) -> tuple[str | None, int | None]:
    """(path, line) a row came from, when the data reader recorded it (align.data.formats.Row)."""
    source = getattr(row, "source", None) or ""
    path, _, line = str(source).rpartition(":")
    return (path, int(line)) if path and line.isdigit() else (None, None)


def row_error(row: dict, what: str, fix: str) -> UserError:
    """A one-line error located at the row's `path:line` when known, else naming its id."""
    path, line = where(row)
    if path is None:
        what = f"row '{row.get('id', '?')}' {what}"
    return UserError(what, fix, path, line)


def field_of(row: dict, name: str) -> Any:
    """A row's value for a declared field: `completion`/`chosen`/`rejected` are its answers' text, `prompt` its last
    user message, anything else (`meta.x` or `x`) a meta field. Missing -> KeyError."""
    name = name.removeprefix("meta.")
    if name in ("completion", "chosen", "rejected", "prompt"):
        messages = row.get(name) or []
        if not messages:
            raise KeyError(name)
        return str(messages[-1]["content"])
    meta = row.get("meta") or {}
    if name not in meta:
        raise KeyError(name)
    return meta[name]


def required(row: dict, name: str, task: str, what: str, fix: str) -> Any:
    """`field_of(row, name)`, or one located line: `<row> of task '<task>' has no '<name>' (<what>); <fix>`."""
    try:
        return field_of(row, name)
    except KeyError:
        raise row_error(row, f"of task '{task}' has no '{name}' ({what})", fix) from None


def reference_text(row: dict) -> str:
    """The gold answer's text: an SFT row's completion, or a preference row's chosen answer."""
    for name in ("completion", "chosen"):
        if row.get(name):
            return str(row[name][-1]["content"])
    raise row_error(row, "has no completion or chosen answer", "give the reference answer the row is scored against")


class Task:
    """Base class: a name, a scoring mode and the report's generation budget; subclasses define the rest."""

    kind: str = "task"

    def __init__(
        self,
        name: str,
        scoring: Scoring = "generate",
        max_new_tokens: int = 64,
        anchors: tuple[Anchor, ...] = (),
        description: str = "",
        instruction: str = "",
    ) -> None:
        self.name, self.scoring, self.max_new_tokens = name, scoring, max_new_tokens
        self.anchors, self.description = tuple(anchors), description
        self.instruction = instruction  # what the task's prompts ask (bundled builders and the importer write it)

    def check_row(self, row: dict) -> None:
        """Fail with one located line when the row lacks what scoring it needs (its gold answer, its options)."""

    def parse(self, text: str, row: dict) -> Any:
        raise NotImplementedError

    def score(self, texts: list[str], rows: list[dict]) -> TaskScores:
        raise NotImplementedError

    def pair_score(self, text: str, row: dict) -> Scored:
        raise NotImplementedError

    def first_line_answers(self, line: str, row: dict) -> bool:
        """Whether a reply's finished first line already gives its answer, so generation may stop there: a closed
        answer read from it (the bundled and imported formats put the decision first). A reply whose first line
        does not parse (reasoning first) runs to its budget; free text always does."""
        return self.closed and self.parse(line, row) is not None

    @property
    def closed(self) -> bool:
        """A closed answer set (labels, lettered options): parsed to one of them, or scored by log-likelihood."""
        return self.kind in ("label", "choice")

    def candidates(self, row: dict) -> list[str]:
        """The closed answers log-likelihood scoring compares (their parse is the label); none for free text."""
        raise UserError(f"task '{self.name}' has no closed answers to score by log-likelihood", "use scoring: generate")

    def chance(self, rows: list[dict]) -> dict[str, float]:
        """The primary metric a guess would get (empty when there is no such baseline)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """What the report says about the task: its type, scoring, anchors."""
        return {
            "type": self.kind,
            "scoring": self.scoring,
            "description": self.description,
            "published": [a.__dict__ for a in self.anchors],
        }

    def check_scores(self, texts: list[str], rows: list[dict]) -> None:
        if len(texts) != len(rows):
            raise ValueError(f"task '{self.name}': {len(texts)} answers for {len(rows)} rows; they must pair up")
        if not rows:
            raise ValueError(f"task '{self.name}': no rows to score")
