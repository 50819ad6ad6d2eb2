"""Tasks: one object per task owns its answer format, gold answers, parsing, metrics (with directions and the
primary one), the on-policy pair score and the candidates log-likelihood scoring compares.

    base.py      the Task interface, TaskScores, Scored, Anchor (published results), located row errors
    closed.py    LabelTask (a closed label set, optionally ordinal with error costs) and ChoiceTask (lettered options)
    text.py      TextTask (ROUGE as published, key-fact recall, unsupported facts)
    parse.py     answer parsers (ESI level, route, option letter or text, yes/no/maybe)
    metrics.py   the metric math, as pure functions
    builtin.py   the tasks align knows by name: bundled clinical tasks and imported real benchmarks
    declare.py   tasks a user declares in a recipe's `tasks:` section

One registry serves data loading, training, `align pairs generate`, the report and the decisions diagnostic:
`registry(declared)` is the built-in tasks with a recipe's declarations on top; `task_for(name, tasks)` finds a task
or, for a task nobody declared, scores free text against the gold answer. To add a task in code: one definition in
builtin.py (or your own module that adds to BUILTIN).
"""

from __future__ import annotations

from typing import Any

from align.tasks.base import Anchor, Scored, Task, TaskScores
from align.tasks.builtin import BUILTIN
from align.tasks.closed import ChoiceTask, LabelTask
from align.tasks.declare import build_task, check_declarations
from align.tasks.text import TextTask

__all__ = [
    "BUILTIN",
    "Anchor",
    "ChoiceTask",
    "LabelTask",
    "Scored",
    "Task",
    "TaskScores",
    "TextTask",
    "check_declarations",
    "check_rows",
    "declared",
    "registry",
    "task_for",
]


def registry(*declared: dict[str, Any] | None) -> dict[str, Task]:
    """Built-in tasks, then each mapping of declarations on top (later ones win: e.g. SFT's, then the report's)."""
    tasks = dict(BUILTIN)
    for declarations in declared:
        for name, spec in (declarations or {}).items():
            tasks[name] = build_task(name, spec, known=tasks.get(name))
    return tasks


def task_for(name: str, tasks: dict[str, Task]) -> Task:
    """The task called `name`; one nobody declared is free text scored against the gold (chosen) answer."""
    return tasks.get(name) or TextTask(name, description="not declared: the answer is compared with the gold answer")


def declared(declarations: dict[str, Any] | None) -> dict[str, Task]:
    """Only the tasks a recipe declares (training checks these rows; the report checks every task it scores)."""
    return {name: task for name, task in registry(declarations).items() if name in (declarations or {})}


def check_rows(rows: list[dict], tasks: dict[str, Task]) -> None:
    """Every row of a known task has what its scoring needs (its gold answer, its options): else one located line."""
    for row in rows:
        task = tasks.get(row.get("task", ""))
        if task is not None:
            task.check_row(row)
