"""Strict YAML -> typed dataclasses: every key's line, duplicate keys refused, `key=value` overrides, and types
checked against the dataclass hints (unknown key -> did-you-mean and the valid keys; wrong type or value -> what is
allowed), each failure one UserError with the file and line. align/config.py holds the recipe schema it builds.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from align.errors import UserError


def read_yaml(path: Path) -> tuple[Any, dict[str, int]]:
    """(the parsed document, the 1-based line of every dotted key); invalid YAML fails with its line."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        raise UserError(
            f"invalid YAML: {getattr(err, 'problem', err)}", "fix the syntax", str(path), _one(line)
        ) from None
    return _to_python(node, str(path)) if node is not None else ({}, {})


def _one(line: int | None) -> int | None:
    return None if line is None else line + 1


def _to_python(node: yaml.Node, path: str, key: str = "") -> tuple[Any, dict[str, int]]:
    """Convert a composed YAML node to Python, recording the 1-based line of every dotted key; a key given twice in
    one mapping fails (YAML would keep the last silently and drop the first)."""
    lines: dict[str, int] = {key: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            child = f"{key}.{knode.value}" if key else str(knode.value)
            if str(knode.value) in out:
                raise UserError(
                    f"duplicate key {child!r} (first at line {lines[child]})",
                    "merge the two into one; YAML would silently keep only the last",
                    path,
                    knode.start_mark.line + 1,
                )
            lines[child] = knode.start_mark.line + 1
            value, sub = _to_python(vnode, path, child)
            out[str(knode.value)] = value
            lines.update({k: v for k, v in sub.items() if k != child})
        return out, lines
    if isinstance(node, yaml.SequenceNode):
        values = []
        for i, item in enumerate(node.value):
            value, sub = _to_python(item, path, f"{key}[{i}]")
            values.append(value)
            lines.update(sub)
        return values, lines
    return yaml.safe_load(yaml.serialize(node)), lines


def apply_override(raw: dict[str, Any], item: str) -> None:
    if "=" not in item:
        raise UserError(f"override {item!r} is not key=value", "write e.g. train.learning_rate=1e-4")
    key, value = item.split("=", 1)
    target = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise UserError(f"override {item!r}: {part!r} is not a section", "override a key inside a section")
    try:
        target[parts[-1]] = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        raise UserError(f"override {item!r}: the value is not valid YAML", f"quote it: {key}='{value}'") from None


def did_you_mean(key: str, choices) -> str:
    """ "did you mean 'x'? " for the closest valid key, or "" when none is close."""
    close = difflib.get_close_matches(key, sorted(choices), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def build(cls: type, raw: Any, path: str, lines: dict[str, int], prefix: str = "", where: str = "") -> Any:
    """Build dataclass `cls` from `raw`, failing on unknown keys and wrong types with the line and the valid choices
    (`where` is said after an unknown top-level key, e.g. " in a dpo recipe")."""
    if not isinstance(raw, dict):
        raise UserError(f"{prefix or 'recipe'} must be a mapping", "indent its keys under it", path, lines.get(prefix))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in raw.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            raise UserError(
                f"unknown key {dotted!r}{where}",
                f"{did_you_mean(key, fields)}valid keys here: {', '.join(fields)}",
                path,
                lines.get(dotted),
            )
        kwargs[key] = _coerce(hints[key], value, path, lines, dotted)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, path: str, lines: dict[str, int], dotted: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    line = lines.get(dotted)
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        if isinstance(value, str) and "path" in {f.name for f in dataclasses.fields(hint)}:
            value = {"path": value}  # `train: file.jsonl` is short for `train: [{path: file.jsonl}]`
        return build(hint, value, path, lines, dotted)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        arms = [a for a in args if a is not type(None)]
        for arm in arms[:-1]:
            try:
                return _coerce(arm, value, path, lines, dotted)
            except UserError:
                continue
        return _coerce(arms[-1], value, path, lines, dotted)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise UserError(f"{dotted} = {value!r} is not allowed", f"choose one of {choices}", path, line)
        return value
    if origin is list:
        if isinstance(value, (str, dict)) and (args[0] is str or dataclasses.is_dataclass(args[0])):
            value = [value]
        if not isinstance(value, list):
            raise UserError(f"{dotted} must be a list", "write it as [a, b] or one item per '- ' line", path, line)
        return [_coerce(args[0], v, path, lines, f"{dotted}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{dotted} must be a mapping", "write it as {key: value}", path, line)
        return {str(k): _coerce(args[1], v, path, lines, f"{dotted}.{k}") for k, v in value.items()}
    return _scalar(hint, value, path, line, dotted)


def _scalar(hint: Any, value: Any, path: str, line: int | None, dotted: str) -> Any:
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads `2e-4` as a string
        except ValueError:
            pass
    if hint in (int, str, bool, float) and type(value) is hint:
        return value
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise UserError(f"{dotted} = {value!r} should be {hint.__name__}", f"write a {hint.__name__} value", path, line)
