"""The report's cache: a saved answer or pair log-prob is reused only for the same weights, inputs and settings.

Every line of `generations.jsonl` carries a `key` = sha256 of (model stamp, prompt, max_new_tokens, batch size, and
whether generation stopped at the answer line) and the answer's `text`; a held-out preference pair's line carries
the key of (model stamp, prompt, chosen, rejected, max_length) and its summed `logps` [chosen, rejected]. A
model's stamp (align/stage.py) covers the name, size and modification time of every file that defines it (final/,
merged/, the domain adapter a task adapter sits on), so retraining a stage — even under the same output folder —
makes its answers be generated again, while untouched variants (the base model, an unchanged SFT run) are reused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from align.runinfo import read_jsonl


def generation_key(
    model_stamp: str, prompt: list[dict], max_new_tokens: int, batch_size: int, to_answer_line: bool = False
) -> str:
    settings = [max_new_tokens, batch_size] + (["to the answer line"] if to_answer_line else [])
    return _digest(model_stamp, prompt, *settings)


def loglik_key(model_stamp: str, prompt: list[dict], candidates: list[str]) -> str:
    """The key of a log-likelihood answer: the same model and prompt, and the same candidates in the same order."""
    return _digest(model_stamp, prompt, "loglik", candidates)


def pair_key(model_stamp: str, pair: dict, max_length: int) -> str:
    """The key of a pair's log-probs: the same model, prompt, both answers and truncation length."""
    return _digest(model_stamp, pair["prompt"], pair["chosen"], pair["rejected"], "pair log-probs", max_length)


def _digest(*parts) -> str:
    """sha256 of the parts as canonical JSON (sorted keys, text as written): every key above is one of these."""
    payload = json.dumps(list(parts), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def load_saved(path: Path) -> tuple[dict[str, str], dict[str, tuple[float, float]]]:
    """({key: answer text}, {key: (chosen log-prob, rejected log-prob)}) from a saved generations.jsonl, read once;
    lines without a key (older files) are not reused."""
    rows = [r for r in read_jsonl(path) if "key" in r] if path.is_file() else []
    texts = {r["key"]: r["text"] for r in rows if "text" in r}
    logps = {r["key"]: (float(r["logps"][0]), float(r["logps"][1])) for r in rows if "logps" in r}
    return texts, logps
