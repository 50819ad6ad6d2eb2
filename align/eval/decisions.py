"""Decision accuracy by log-likelihood: which answer line ("ESI level: N" / "Answer: X") a model finds most likely.

A fast check of whether a model makes the per-patient decision (one packed pass, no decoding): every candidate answer
line is scored as a continuation of the prompt (`align.eval.loglik`) and the most likely one is the model's
decision. When greedy decoding writes the bundled answer format this is the label the report parses, so it tracks
the report's accuracy at a fraction of the cost; it also shows *which* labels a model favours (a model stuck on one
level is visible here).

    python -m align.eval.decisions outputs/default/sft outputs/default/dpo [--data data/clinical/sft_test.jsonl]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from align.eval.loglik import choose

LETTERS = "ABCDE"
# task -> candidate answer lines, in label order (ESI 1..5 / option letters A..E)
FORMATS: dict[str, tuple[str, ...]] = {
    "triage": tuple(f"ESI level: {n}" for n in range(1, 6)),
    "reasoning": tuple(f"Answer: {c}" for c in LETTERS),
}


def gold_index(row: dict) -> int:
    """Index of the gold label among the task's candidates."""
    if row["task"] == "triage":
        return int(row["meta"]["esi"]) - 1
    return LETTERS.index(row["meta"]["answer"])


def n_candidates(row: dict) -> int:
    """5 ESI levels, or as many letters as the question has options."""
    if row["task"] == "reasoning":
        return len(row["meta"]["options"])
    return 5


def decisions(model, tokenizer, rows: list[dict]) -> list[int]:
    """The candidate index each row's prompt leads the model to find most likely."""
    candidates = [list(FORMATS[r["task"]][: n_candidates(r)]) for r in rows]
    return choose(model, tokenizer, [r["prompt"] for r in rows], candidates)


def summarize(rows: list[dict], predicted: list[int]) -> dict[str, dict]:
    """Per task: n, accuracy and how often each label was chosen (label -> count); for triage also the under-triage
    rate (a less urgent level than gold, i.e. a higher ESI number) and the over-triage rate."""
    result: dict[str, dict] = {}
    for task in FORMATS:
        pairs = [(gold_index(r), p) for r, p in zip(rows, predicted, strict=True) if r["task"] == task]
        if not pairs:
            continue
        labels = [str(i + 1) if task == "triage" else LETTERS[i] for _, i in pairs]
        result[task] = {
            "n": len(pairs),
            "accuracy": sum(g == p for g, p in pairs) / len(pairs),
            "chosen": dict(sorted(Counter(labels).items())),
        }
        if task == "triage":
            result[task]["under_triage_rate"] = sum(p > g for g, p in pairs) / len(pairs)
            result[task]["over_triage_rate"] = sum(p < g for g, p in pairs) / len(pairs)
    return result


def main(argv: list[str] | None = None) -> int:
    from align.config import DatasetConfig, ModelConfig
    from align.data.load import load_rows
    from align.models import load_model
    from align.stage import load_stage_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stages", nargs="+", help="finished stage folders (outputs/<run>/sft, .../dpo), or 'base'")
    ap.add_argument("--data", default="data/clinical/sft_test.jsonl", help="SFT-format rows with triage/reasoning")
    ap.add_argument("--model", default="smollm2-135m", help="base model (for 'base' and adapter-only stages)")
    args = ap.parse_args(argv)
    rows = load_rows(DatasetConfig(path=args.data), "sft")
    rows = [r for r in rows if r.get("task") in FORMATS]
    cfg = ModelConfig(name=args.model)
    for stage in args.stages:
        model, tok = load_model(cfg) if stage == "base" else load_stage_model(Path(stage), cfg)
        print(json.dumps({"model": stage, **summarize(rows, decisions(model.eval(), tok, rows))}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
