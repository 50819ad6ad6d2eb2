"""The domain corpus: the clinical text inside the bundled task rows (outpatient notes, ED triage vignettes) as
`{"id", "text"}` documents for `align domain`.

Documents come from the same split as their task row, so `notes_test.jsonl` holds only test-split text: a domain
adapter trained on `notes_train.jsonl` never sees a note or vignette that the report or the held-out perplexity uses.
"""

from __future__ import annotations

from collections.abc import Callable

from align.data.tasks import summarization, triage

SPLITS: tuple[str, ...] = ("train", "test")
FILES: tuple[str, ...] = tuple(f"notes_{split}.jsonl" for split in SPLITS)


def _note(row: dict) -> str:
    return row["meta"]["source"]


def _vignette(row: dict) -> str:
    content = row["prompt"][0]["content"]
    prefix = triage.INSTRUCTION + "\n\n"
    assert content.startswith(prefix), content[:80]
    return content.removeprefix(prefix)


# task -> the clinical text of one of its SFT rows
SOURCES: dict[str, Callable[[dict], str]] = {summarization.TASK: _note, triage.TASK: _vignette}


def note_rows(sft_rows: list[dict]) -> list[dict]:
    """`{"id", "text"}` documents from the SFT rows of one split, in row order, for the tasks in `SOURCES`."""
    return [{"id": r["id"], "text": SOURCES[r["task"]](r)} for r in sft_rows if r["task"] in SOURCES]
