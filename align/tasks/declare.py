"""Tasks a user declares in a recipe, without code (`tasks:` section), checked strictly at load time.

    tasks:
      lab_flag:                      # the `task` name of the rows (a file's `task:` in data.train, or its stem)
        type: label                  # label | choice | text
        labels: [normal, abnormal, critical]
        gold: flag                   # the column / meta field with the gold label (default: label)
        ordinal: true                # labels listed most severe first: under- and over-calls are reported
        scoring: loglik              # closed answers: generate (parse a greedy answer) or loglik (most likely label)
      my_mcq: {type: choice, options: choices, gold: correct}       # options: {A: ..} or a list; gold: letter or text
      notes: {type: text, facts: key_facts, source: transcript}      # reference: the gold answer unless `reference`

A declaration for a task align knows (align/tasks/builtin.py) without `type` changes only its scoring and budget
(`medqa: {scoring: loglik}`); with a `type` it replaces the built-in definition. Each field is checked for its type:
an unknown type or field, a missing label set or a malformed cost matrix is one line with the recipe's line number.
"""

from __future__ import annotations

import difflib
from typing import Any

from align.errors import UserError
from align.tasks.base import Task
from align.tasks.builtin import BUILTIN
from align.tasks.closed import ChoiceTask, LabelTask
from align.tasks.text import TextTask

COMMON = {"type": str, "scoring": str, "max_new_tokens": int, "description": str}
FIELDS: dict[str, dict[str, type]] = {
    "label": COMMON
    | {
        "labels": list,
        "gold": str,
        "synonyms": dict,
        "ordinal": bool,
        "costs": list,
        "answer_prefix": str,
    },
    "choice": COMMON | {"options": str, "gold": str, "answer_prefix": str},
    "text": COMMON | {"reference": str, "facts": str, "source": str},
}
OVERRIDES = {"scoring": str, "max_new_tokens": int, "description": str}  # on a built-in task, without `type`
SCORINGS = ("generate", "loglik")


def check_declarations(
    raw: Any, path: str, lines: dict[str, int], elsewhere: bool = False
) -> dict[str, dict[str, Any]]:
    """The `tasks:` mapping, every declaration checked (and built once, so its own checks run); returned as given.

    `elsewhere`: the recipe (report, pairs) may also change, without a type, a task the stages it reads declared."""
    if not isinstance(raw, dict):
        raise UserError(
            "tasks must map task names to declarations", "see align/tasks/declare.py", path, lines.get("tasks")
        )
    for name, spec in raw.items():
        if elsewhere and isinstance(spec, dict) and "type" not in spec and name not in BUILTIN:
            _check_fields(spec, OVERRIDES, f"tasks.{name}", f"a change to task '{name}' without a type", path, lines)
        else:
            build_task(str(name), spec, path, lines)
    return {str(k): v for k, v in raw.items()}


def build_task(
    name: str, spec: Any, path: str = "", lines: dict[str, int] | None = None, known: Task | None = None
) -> Task:
    """One declaration -> its Task; without a type it changes `known` (or the built-in task of that name)."""
    lines = lines or {}
    where = f"tasks.{name}"
    if not isinstance(spec, dict):
        raise UserError(
            f"{where} must be a mapping", "write e.g. {type: label, labels: [a, b]}", path, lines.get(where)
        )
    kind = spec.get("type")
    known = known or BUILTIN.get(name)
    if kind is None and known is not None:
        what = f"the built-in task '{name}'" if name in BUILTIN else f"a change to task '{name}'"
        _check_fields(spec, OVERRIDES, where, f"{what} without a type", path, lines)
        return _override(known, spec, where, path, lines)
    if kind not in FIELDS:
        choices = ", ".join(FIELDS)
        fix = f"set {where}.type to one of {choices}" if kind is None else f"choose one of {choices}"
        raise UserError(
            f"{where}.type = {kind!r} is not a task type", fix, path, lines.get(f"{where}.type", lines.get(where))
        )
    _check_fields(spec, FIELDS[kind], where, f"a {kind} task", path, lines)
    scoring = _scoring(spec, kind, where, path, lines)
    common = {"scoring": scoring, "description": spec.get("description", "")}
    if "max_new_tokens" in spec:
        common["max_new_tokens"] = _positive(spec["max_new_tokens"], f"{where}.max_new_tokens", path, lines)
    if kind == "label":
        return _label(name, spec, where, path, lines, common)
    if kind == "choice":
        keep = {k: spec[k] for k in ("options", "gold", "answer_prefix") if k in spec}
        return ChoiceTask(name, **keep, **common)
    common.pop("scoring")
    return TextTask(name, **{k: spec[k] for k in ("reference", "facts", "source") if k in spec}, **common)


def _label(name: str, spec: dict, where: str, path: str, lines: dict[str, int], common: dict) -> LabelTask:
    labels = spec.get("labels")
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(v, str | int) for v in labels):
        raise UserError(
            f"{where}.labels must list at least two labels",
            "write e.g. labels: [normal, abnormal]",
            path,
            lines.get(f"{where}.labels", lines.get(where)),
        )
    labels = [str(v) for v in labels]
    if len({v.lower() for v in labels}) != len(labels):
        raise UserError(f"{where}.labels repeats a label", "list each label once", path, lines.get(f"{where}.labels"))
    synonyms = spec.get("synonyms") or {}
    unknown = [k for k in synonyms if str(k) not in labels]
    if unknown:
        raise UserError(
            f"{where}.synonyms names {unknown[0]!r}, which is not a label",
            f"use one of {', '.join(labels)}",
            path,
            lines.get(f"{where}.synonyms"),
        )
    costs = spec.get("costs")
    if costs is not None and not _square(costs, len(labels)):
        raise UserError(
            f"{where}.costs must be a {len(labels)} x {len(labels)} matrix of numbers >= 0 (row: gold, column: predicted)",
            "list one row per label, in the order of labels, with 0 on the diagonal",
            path,
            lines.get(f"{where}.costs"),
        )
    lower = {v.lower(): v for v in labels}
    return LabelTask(
        name,
        labels=labels,
        gold=spec.get("gold", "label"),
        synonyms={str(k): [str(s) for s in v] for k, v in synonyms.items()},
        answer_prefix=spec.get("answer_prefix", "Answer: "),
        ordinal=bool(spec.get("ordinal", False)),
        costs=costs,
        normalise=lambda v: lower.get(str(v).strip().lower(), str(v).strip()),
        **common,
    )


def _square(costs: Any, n: int) -> bool:
    rows_ok = isinstance(costs, list) and len(costs) == n and all(isinstance(r, list) and len(r) == n for r in costs)
    return rows_ok and all(isinstance(c, int | float) and not isinstance(c, bool) and c >= 0 for r in costs for c in r)


def _override(task: Task, spec: dict, where: str, path: str, lines: dict[str, int]) -> Task:
    import copy

    task = copy.copy(task)
    if "scoring" in spec:
        task.scoring = _scoring(spec, task.kind, where, path, lines)
    if "max_new_tokens" in spec:
        task.max_new_tokens = _positive(spec["max_new_tokens"], f"{where}.max_new_tokens", path, lines)
    if "description" in spec:
        task.description = str(spec["description"])
    return task


def _check_fields(spec: dict, fields: dict[str, type], where: str, what: str, path: str, lines: dict[str, int]) -> None:
    for key, value in spec.items():
        dotted = f"{where}.{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(
                f"unknown key {dotted!r} for {what}", f"{hint}valid keys: {', '.join(fields)}", path, lines.get(dotted)
            )
        expected = fields[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise UserError(
                f"{dotted} = {value!r} should be {expected.__name__}",
                f"write a {expected.__name__} value",
                path,
                lines.get(dotted),
            )


def _scoring(spec: dict, kind: str, where: str, path: str, lines: dict[str, int]) -> str:
    scoring = spec.get("scoring", "generate")
    line = lines.get(f"{where}.scoring")
    if scoring not in SCORINGS:
        raise UserError(
            f"{where}.scoring = {scoring!r} is not allowed", f"choose one of {', '.join(SCORINGS)}", path, line
        )
    if scoring == "loglik" and kind == "text":
        raise UserError(
            f"{where}.scoring = 'loglik' needs closed answers", "free text is scored by generation", path, line
        )
    return scoring


def _positive(value: int, dotted: str, path: str, lines: dict[str, int]) -> int:
    if value < 1:
        raise UserError(f"{dotted} = {value} is out of range", "use 1 or more", path, lines.get(dotted))
    return value
