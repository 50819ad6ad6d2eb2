"""Decision accuracy by log-likelihood: which answer line ("ESI level: N" / "Answer: X") a model finds most likely.

A fast check of whether a model makes the per-prompt decision (one packed pass, no decoding) for every closed-answer
task (align/tasks/: label and choice tasks): each candidate answer line is scored as a continuation of the prompt
(`align.eval.loglik`) and the most likely one is the model's decision — what the report's `scoring: loglik` does.
When greedy decoding writes the answer format this tracks the report's generated accuracy at a fraction of the
cost; it also shows *which* labels a model favours (a model stuck on one level is visible here). A model trained to
reason before it answers (the bundled triage walk, align/data/tasks/triage_walk.py) is not scored on what it writes
here, since the answer line comes last: score it with the report's greedy answers.

    python -m align.eval.decisions outputs/default/sft outputs/default/dpo [--data data/clinical/sft_test.jsonl]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from align.eval.loglik import choose
from align.tasks import Task, registry


def closed(task: Task | None) -> bool:
    return task is not None and task.closed


def decision_labels(task: Task, row: dict) -> list:
    """The labels a row's candidates stand for, in candidate order."""
    return list(task.labels) if task.kind == "label" else list(task.options(row))


def gold_index(task: Task, row: dict) -> int:
    """Index of the gold label among the row's candidates."""
    return decision_labels(task, row).index(task.gold(row))


def decisions(model, tokenizer, rows: list[dict], tasks: dict[str, Task]) -> list[int]:
    """The candidate index each row's prompt leads the model to find most likely."""
    candidates = [tasks[r["task"]].candidates(r) for r in rows]
    return choose(model, tokenizer, [r["prompt"] for r in rows], candidates)


def summarize(rows: list[dict], predicted: list[int], tasks: dict[str, Task]) -> dict[str, dict]:
    """Per task: n, accuracy and how often each label was chosen (label -> count); for an ordinal task also the
    under-call rate (a later, less severe label than gold) and the over-call rate."""
    result: dict[str, dict] = {}
    for name in dict.fromkeys(r["task"] for r in rows):
        task = tasks[name]
        mine = [(r, p) for r, p in zip(rows, predicted, strict=True) if r["task"] == name]
        pairs = [(gold_index(task, r), p) for r, p in mine]
        chosen = Counter(str(decision_labels(task, r)[p]) for r, p in mine)
        entry = {
            "n": len(pairs),
            "accuracy": sum(g == p for g, p in pairs) / len(pairs),
            "chosen": dict(sorted(chosen.items())),
        }
        if getattr(task, "ordinal", False):
            under, over = task.call_names
            entry[f"{under}_rate"] = sum(p > g for g, p in pairs) / len(pairs)
            entry[f"{over}_rate"] = sum(p < g for g, p in pairs) / len(pairs)
        result[name] = entry
    return result


def main(argv: list[str] | None = None) -> int:
    from align.config import DatasetConfig, ModelConfig
    from align.data.load import load_rows
    from align.stage import load_for_inference, read_recipe

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stages", nargs="+", help="finished stage folders (outputs/<run>/sft, .../dpo), or 'base'")
    ap.add_argument("--data", default="data/clinical/sft_test.jsonl", help="held-out rows of closed-answer tasks")
    ap.add_argument("--model", default="smollm2-135m", help="base model (for 'base' and adapter-only stages)")
    args = ap.parse_args(argv)
    tasks = registry(*(read_recipe(s).get("tasks") for s in args.stages if s != "base"))
    rows = [r for r in load_rows(DatasetConfig(path=args.data), "sft") if closed(tasks.get(r.get("task", "")))]
    cfg = ModelConfig(name=args.model)
    for stage in args.stages:
        model, tok = load_for_inference(None if stage == "base" else stage, cfg)
        print(
            json.dumps({"model": stage, **summarize(rows, decisions(model, tok, rows, tasks), tasks)}),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
