"""`align data inspect`: rows exactly as the model will see them, token by token with the loss mask.

The PHI scan's summary (counts per kind and `path:line` locations, never the matched text) comes first, since the
rows printed after it may show the identifiers themselves.
"""

from __future__ import annotations

from pathlib import Path

from align.data.collate import render_pair, render_sft
from align.errors import UserError

LOSS, CONTEXT = "#", "."


def token_lines(tokenizer, ids: list[int], mask: list[int]) -> list[str]:
    """One line per token: index, loss-mask flag (# = trained on), id, and the token text."""
    return [
        f"{i:5d} {LOSS if m else CONTEXT} {t:6d} {tokenizer.decode([t])!r}"
        for i, (t, m) in enumerate(zip(ids, mask, strict=True))
    ]


def bos_warnings(tokenizer, ids: list[int]) -> list[str]:
    bos = tokenizer.bos_token_id
    if bos is not None and ids[:2] == [bos, bos]:
        return ["WARNING: the sequence starts with two BOS tokens (the template and the tokenizer both add one)"]
    return []


def describe_row(tokenizer, row: dict, max_length: int) -> str:
    out = [f"== {row.get('id', '?')} (task {row.get('task', '?')}) =="]
    if "chosen" in row:
        r = render_pair(tokenizer, row, max_length)
        for side in ("chosen", "rejected"):
            ids = r["prompt_ids"] + r[f"{side}_ids"]
            mask = [0] * len(r["prompt_ids"]) + [1] * len(r[f"{side}_ids"])
            out += [f"-- {side}: {len(ids)} tokens, {sum(mask)} with loss --", tokenizer.decode(ids)]
            out += bos_warnings(tokenizer, ids) + token_lines(tokenizer, ids, mask)
    else:
        r = render_sft(tokenizer, row, max_length)
        ids, mask = r["input_ids"], r["completion_mask"]
        out += [f"-- sft: {len(ids)} tokens, {sum(mask)} with loss --", tokenizer.decode(ids)]
        out += bos_warnings(tokenizer, ids) + token_lines(tokenizer, ids, mask)
    return "\n".join(out)


def rows_for(path: str, kind: str, columns: str | None) -> tuple[list[dict], str, int]:
    """Rows and the model to render with: a recipe names both; a data file uses the default model.

    Both read through the one reader training uses (`load_stage_data` / `read_rows`): the rows shown are the rows
    trained on.
    """
    from align.config import load_recipe
    from align.data.formats import parse_columns_arg
    from align.data.load import load_stage_data, read_rows

    if path.endswith((".yaml", ".yml")):
        recipe = load_recipe(path)
        kind = "sft" if recipe.stage == "sft" else "preference"
        train, _ = load_stage_data(recipe.data, kind, recipe.seed)
        return train, recipe.model.name, recipe.data.max_length
    if not Path(path).exists():
        raise UserError(f"no such file: {path}", "pass a data file or a recipe YAML")
    cols = parse_columns_arg(columns) if columns else None
    return read_rows(path, kind, cols).rows, "smollm2-135m", 768


def inspect_command(path: str, n: int, kind: str = "auto", columns: str | None = None) -> int:
    """Print the PHI scan of every row (counts and `path:line` locations, never values), then the first n rows."""
    from align.data.phi import scan_phi
    from align.models import load_tokenizer, resolve_model_path
    from align.network import apply_network_policy

    apply_network_policy(allow_network=False)
    rows, model_name, max_length = rows_for(path, kind, columns)
    tokenizer = load_tokenizer(resolve_model_path(model_name))
    print(scan_phi(rows).format())
    print(f"legend: '{LOSS}' = token carries loss, '{CONTEXT}' = context only; model {model_name}")
    for row in rows[:n]:
        print(describe_row(tokenizer, row, max_length))
    return 0
