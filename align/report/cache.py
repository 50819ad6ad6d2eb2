"""The report's generation cache: a saved answer is reused only for the same weights, prompt and decoding settings.

Every line of `generations.jsonl` carries a `key` = sha256 of (model stamp, prompt, max_new_tokens, batch size, and
whether generation stopped at the answer line). A
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
    payload = json.dumps([model_stamp, prompt, *settings], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def loglik_key(model_stamp: str, prompt: list[dict], candidates: list[str]) -> str:
    """The key of a log-likelihood answer: the same model and prompt, and the same candidates in the same order."""
    payload = json.dumps([model_stamp, prompt, "loglik", candidates], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def load_generations(path: Path) -> dict[str, str]:
    """{key: text} from a saved generations.jsonl; lines without a key (older files) are not reused."""
    if not path.is_file():
        return {}
    rows = read_jsonl(path)
    return {r["key"]: r["text"] for r in rows if "key" in r}
