"""The dataset shapes align reads, and how one row of each becomes canonical messages (prompt + answers).

Shapes (`SHAPES`, in detection order, most specific first):
  preference  sharegpt_preference  conversations + chosen + rejected (from/value messages, LLaMA-Factory style)
              explicit             prompt + chosen + rejected (each text or a list of messages)
              scored               prompt + responses [+ scores]; best vs worst kept if best - worst > min_score_margin
              implicit             chosen + rejected full conversations (message lists or Anthropic HH transcripts);
                                   the prompt is their longest common prefix ending at a user turn
  sft         messages             messages; the last assistant turn is the completion
              sharegpt             conversations with from/value (human/gpt/system)
              alpaca               instruction [+ input] + output
              prompt_completion    prompt + completion (text or messages)
              chosen_as_completion prompt + chosen (SFT on the preferred answers of a preference file)
Text that is a JSON list of messages (as in CSV exports) is parsed as messages. A converter returns the prompt and
answers (and meta, for scores) or raises `DropRow` for a well-formed row that cannot be trained on; `formats.py`
runs them over a whole file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from align.data.readers import Record

Kind = Literal["sft", "preference"]
Messages = list[dict[str, str]]
ANSWERS = {"sft": ("completion",), "preference": ("chosen", "rejected")}
ROLES = {"user": "user", "human": "user", "system": "system", "assistant": "assistant", "gpt": "assistant"}
ROLES |= {"bot": "assistant", "model": "assistant", "chatgpt": "assistant"}
_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")


class DropRow(Exception):
    """A row that is well-formed but unusable (counted in `dropped`, not an error)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Shape:
    kind: Kind
    columns: tuple[str, ...]  # required canonical columns; detection picks the first shape whose columns all exist
    convert: Callable[[dict[str, Any], Record, float], dict[str, Any]]  # -> prompt + answers (+ meta)


# ---- messages -------------------------------------------------------------------------------------------------


def _messages(value: Any, column: str, default_role: str, rec: Record) -> Messages:
    """Text, one message dict, or a list of messages (role/content or ShareGPT from/value) -> canonical messages."""
    if value is None:
        return []
    if isinstance(value, str):
        parsed = _json_messages(value)
        if parsed is None:
            return [{"role": default_role, "content": value}]
        value = parsed
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise rec.error(f"column '{column}' must be text or a list of messages, got {type(value).__name__}")
    return [_message(m, column, rec) for m in value]


def _json_messages(text: str) -> list[Any] | None:
    stripped = text.strip()
    if not (stripped.startswith("[{") and stripped.endswith("}]")):
        return None
    try:
        value = json.loads(stripped)
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # a lone surrogate escape would crash the tokenizer
    except (json.JSONDecodeError, RecursionError, UnicodeEncodeError):  # not usable messages: the text stays text
        return None
    return value if all(isinstance(m, dict) and ({"role", "from"} & m.keys()) for m in value) else None


def _message(m: Any, column: str, rec: Record) -> dict[str, str]:
    if not isinstance(m, dict):
        raise rec.error(f"column '{column}' holds a {type(m).__name__} where a message {{role, content}} belongs")
    role = m.get("role", m.get("from"))
    canonical = ROLES.get(str(role).lower())
    if canonical is None:
        raise rec.error(f"unknown role '{role}' in column '{column}'", "use user/assistant/system (or human/gpt)")
    return {"role": canonical, "content": _text(m.get("content", m.get("value", m.get("text"))))}


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, list):  # multimodal parts: keep the text parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else str(content)


def _reply(msgs: Messages, column: str, prompt: Messages, rec: Record) -> Messages:
    """The single final assistant message; a full conversation is accepted if it continues the prompt."""
    if not msgs:
        raise DropRow("empty_field")
    if msgs[-1]["role"] != "assistant":
        raise rec.error(f"column '{column}' must end with an assistant message, not '{msgs[-1]['role']}'")
    users = [m["content"] for m in msgs[:-1] if m["role"] == "user"]
    prompt_users = [m["content"] for m in prompt if m["role"] == "user"]
    if len(msgs) > 1 and (not users or not prompt_users or users[-1] != prompt_users[-1]):
        raise rec.error(
            f"column '{column}' holds a conversation that does not continue the prompt",
            "give only the reply, or drop the prompt column so the prompt is read from the shared prefix",
        )
    return [msgs[-1]]


def _split_last_assistant(msgs: Messages) -> dict[str, Messages]:
    last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
    if last is None:
        raise DropRow("no_assistant_turn")
    return {"prompt": msgs[:last], "completion": [msgs[last]]}


def _conversation(value: Any, column: str, rec: Record) -> Messages:
    if isinstance(value, str) and _HH_TURN.search(value):
        parts = _HH_TURN.split(value)  # [before, role, text, role, text, ...]
        return [{"role": ROLES[r.lower()], "content": t.strip()} for r, t in zip(parts[1::2], parts[2::2], strict=True)]
    return _messages(value, column, "assistant", rec)


def _split_shared_prefix(chosen: Messages, rejected: Messages) -> dict[str, Messages]:
    """Prompt = longest common prefix ending at a user turn; then each side must be exactly one assistant turn."""
    k = 0
    while k < min(len(chosen), len(rejected)) and chosen[k] == rejected[k]:
        k += 1
    if k == len(chosen) == len(rejected):
        raise DropRow("chosen_equals_rejected")
    while k > 0 and chosen[k - 1]["role"] != "user":
        k -= 1
    if k == 0:
        raise DropRow("no_shared_prompt")
    rest = (chosen[k:], rejected[k:])
    if any(len(r) != 1 or r[0]["role"] != "assistant" for r in rest):
        raise DropRow("differs_before_last_turn")
    return {"prompt": chosen[:k], "chosen": rest[0], "rejected": rest[1]}


# ---- shapes ----------------------------------------------------------------------------------------------------


def _explicit(row: dict[str, Any], rec: Record, margin: float) -> dict[str, Any]:
    prompt = _messages(row["prompt"], "prompt", "user", rec)
    return {"prompt": prompt} | {
        col: _reply(_messages(row[col], col, "assistant", rec), col, prompt, rec) for col in ("chosen", "rejected")
    }


def _sharegpt_preference(row: dict[str, Any], rec: Record, margin: float) -> dict[str, Any]:
    return _explicit(row | {"prompt": row["conversations"]}, rec, margin)


def _implicit(row: dict[str, Any], rec: Record, margin: float) -> dict[str, Any]:
    return _split_shared_prefix(
        _conversation(row["chosen"], "chosen", rec), _conversation(row["rejected"], "rejected", rec)
    )


def _scored(row: dict[str, Any], rec: Record, margin: float) -> dict[str, Any]:
    responses, scores = row["responses"], row.get("scores")
    if not isinstance(responses, list):
        raise rec.error(f"column 'responses' must be a list, got {type(responses).__name__}")
    if scores is not None and (not isinstance(scores, list) or len(scores) != len(responses)):
        raise rec.error("column 'scores' must be a list as long as 'responses'")
    texts, values = [], []
    for i, r in enumerate(responses):
        text = next((r[k] for k in ("text", "response", "content") if k in r), None) if isinstance(r, dict) else r
        score = r.get("score") if isinstance(r, dict) else (scores[i] if scores is not None else None)
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise rec.error(f"response {i} has score {score!r}", "give every response a numeric score")
        texts.append(text)
        values.append(float(score))
    if len(texts) < 2:
        raise DropRow("too_few_responses")
    best, worst = values.index(max(values)), values.index(min(values))
    if values[best] - values[worst] <= margin:
        raise DropRow("below_margin")
    prompt = _messages(row["prompt"], "prompt", "user", rec)
    pick = {"chosen": texts[best], "rejected": texts[worst]}
    answers = {
        k: _reply(_messages(v, "responses", "assistant", rec), "responses", prompt, rec) for k, v in pick.items()
    }
    return {"prompt": prompt, **answers, "meta": {"chosen_score": values[best], "rejected_score": values[worst]}}


def _conversation_sft(column: str) -> Callable[[dict[str, Any], Record, float], dict[str, Any]]:
    return lambda row, rec, margin: _split_last_assistant(_messages(row[column], column, "user", rec))


def _alpaca(row: dict[str, Any], rec: Record, margin: float) -> dict[str, Any]:
    instruction, extra = _text(row["instruction"]), _text(row.get("input")).strip()
    prompt = f"{instruction}\n\n{extra}" if extra else instruction
    return _prompt_completion({"prompt": prompt, "completion": row["output"]}, rec, margin)


def _prompt_completion(row: dict[str, Any], rec: Record, margin: float, answer: str = "completion") -> dict[str, Any]:
    prompt = _messages(row["prompt"], "prompt", "user", rec)
    return {
        "prompt": prompt,
        "completion": _reply(_messages(row[answer], answer, "assistant", rec), answer, prompt, rec),
    }


SHAPES: dict[str, Shape] = {
    "sharegpt_preference": Shape("preference", ("conversations", "chosen", "rejected"), _sharegpt_preference),
    "explicit": Shape("preference", ("prompt", "chosen", "rejected"), _explicit),
    "scored": Shape("preference", ("prompt", "responses"), _scored),
    "implicit": Shape("preference", ("chosen", "rejected"), _implicit),
    "messages": Shape("sft", ("messages",), _conversation_sft("messages")),
    "sharegpt": Shape("sft", ("conversations",), _conversation_sft("conversations")),
    "alpaca": Shape("sft", ("instruction", "output"), _alpaca),
    "prompt_completion": Shape("sft", ("prompt", "completion"), _prompt_completion),
    "chosen_as_completion": Shape(
        "sft", ("prompt", "chosen"), lambda r, rec, m: _prompt_completion(r, rec, m, "chosen")
    ),
}
OPTIONAL_COLUMNS = ("input", "scores", "system", "task", "meta")
CANONICAL_COLUMNS = tuple(sorted({c for s in SHAPES.values() for c in s.columns} | set(OPTIONAL_COLUMNS)))


def row_shape(row: dict[str, Any], kind: Kind) -> str | None:
    """The first shape of `kind` whose required columns all exist in `row`, or None."""
    return next((n for n, s in SHAPES.items() if s.kind == kind and all(c in row for c in s.columns)), None)
