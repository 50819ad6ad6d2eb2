"""`align domain|sft|dpo|report|pairs|data|prepare-model|bench ...`: parse arguments, load the recipe, call one function."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from align.errors import UserError

if TYPE_CHECKING:
    from align.config import Recipe

log = logging.getLogger("align")


def _load_recipe(path: str, overrides: list[str] | None = None, stage: str | None = None) -> Recipe:
    """The recipe, with its network policy applied before any data or model is read."""
    from align.config import load_recipe
    from align.network import apply_network_policy

    recipe = load_recipe(path, overrides, stage=stage)
    apply_network_policy(recipe.model.allow_network)
    return recipe


def _stage(args: argparse.Namespace) -> int:
    from align.stage import is_complete

    recipe = _load_recipe(args.recipe, args.overrides, stage=args.command)
    out = recipe.output_dir
    training = args.command != "report"
    if training and is_complete(out) and not args.force:
        print(f"{args.command}: already complete at {out} (pass --force to train again)")
        return 0
    if training and args.force:
        import shutil

        from accelerate import PartialState

        from align.runinfo import is_main_process

        if is_main_process():  # under torchrun every rank runs this line; only rank 0 may delete
            shutil.rmtree(out, ignore_errors=True)
        PartialState().wait_for_everyone()
    log.info("recipe %s -> %s", args.recipe, out)
    run = _runner(args.command)
    result = run(recipe, allow_phi=args.allow_phi)
    print(f"{args.command}: done; outputs in {result.out_dir}")
    return 0


def _runner(command: str):
    if command == "domain":
        from align.train.domain import run_domain

        return run_domain
    if command == "sft":
        from align.train.sft import run_sft

        return run_sft
    if command == "dpo":
        from align.train.dpo import run_dpo

        return run_dpo
    from align.report.run import run_report

    return run_report


def _data(args: argparse.Namespace) -> int:
    if args.data_command == "build":
        from align.data.build import build_bundled, parse_error_mix

        mix = parse_error_mix(args.error_mix) if args.error_mix else None
        manifest = build_bundled(Path(args.out), seed=args.seed, scale=args.scale, error_mix=mix)
        print(f"data build: wrote {len(manifest.get('files', manifest))} files to {args.out}")
        return 0
    if args.data_command == "fresh-test":
        from align.data.fresh import write_fresh_test

        write_fresh_test(Path(args.against), Path(args.out), args.tasks, args.n, args.seed)
        print(
            f"data fresh-test: {args.n} prompts per task ({', '.join(args.tasks)}) in {args.out}/sft_test.jsonl, pref_test.jsonl"
        )
        return 0
    if args.data_command == "stats":
        from align.data.build import dataset_stats

        print(dataset_stats(Path(args.dir)))
        return 0
    if args.data_command == "import":
        return _data_import(args)
    from align.data.formats import parse_columns_arg
    from align.data.load import guess_kind

    is_recipe = args.path.endswith((".yaml", ".yml"))
    cols = parse_columns_arg(args.columns) if args.columns else None
    kind = args.kind if is_recipe else guess_kind(args.path, args.kind, cols)
    if args.data_command == "validate":
        from align.data.validate import validate_command

        if is_recipe:
            return _validate_recipe(args.path, args.max_length)
        from align.models import resolve_model_path

        tokenizer = resolve_model_path(args.model, allow_network=False)
        return validate_command(args.path, kind, args.columns, tokenizer=tokenizer, max_length=args.max_length)
    from align.data.inspect import inspect_command

    return inspect_command(args.path, args.n, kind, args.columns)


def _validate_recipe(path: str, max_length: int) -> int:
    """Validate every dataset a recipe trains or evaluates on, with its mapping and max_length, and every row of a
    task the recipe declares (or the report scores) against what that task's scoring needs."""
    from align.config import DatasetConfig
    from align.data.load import ensure_bundled
    from align.tasks import declared, registry

    recipe = _load_recipe(path)
    if recipe.stage == "domain":
        from align.data.corpus import validate_corpus

        return validate_corpus(recipe.data, recipe.seed)
    if recipe.stage == "pairs":
        specs, kind, tasks = [DatasetConfig(path=recipe.pairs.prompts)], "sft", registry(recipe.tasks)
    elif recipe.stage == "report":
        specs = [(s, "sft") for s in recipe.report.test_data] + [(s, "preference") for s in recipe.report.pref_data]
        return max((_validate_specs([s], k, recipe, registry(recipe.tasks)) for s, k in specs), default=0)
    else:
        ensure_bundled(recipe.data)
        specs, kind, tasks = (
            recipe.data.train + recipe.data.eval,
            "sft" if recipe.stage == "sft" else "preference",
            declared(recipe.tasks),
        )
    return _validate_specs(specs, kind, recipe, tasks)


def _validate_specs(specs, kind: str, recipe, tasks) -> int:
    """validate_command on each dataset, then the task check of its rows; the worst exit code."""
    from align.data.load import load_rows
    from align.data.validate import validate_command
    from align.tasks import check_rows

    max_length = getattr(getattr(recipe, "data", None), "max_length", None) or getattr(recipe.report, "max_length", 768)
    codes = []
    for spec in specs:
        cols = ",".join(f"{k}={v}" for k, v in spec.columns.items()) or None
        code = validate_command(
            spec.path, kind, cols, spec.shape, max_length=max_length, allow_network=recipe.model.allow_network
        )
        if code < 2 and tasks:
            try:
                check_rows(load_rows(spec, kind, recipe.model.allow_network), tasks)
            except UserError as err:
                print(f"task check: {err}")
                code = max(code, 1)
        codes.append(code)
    return max(codes, default=0)


# ---- `align data import`: a real public benchmark -> canonical files ------------------------------------------

IMPORT_TEXT = (
    "turn a real public benchmark in its upstream format (medqa, medmcqa, pubmedqa, mts-dialog, aci-bench) into "
    "sft_{train,eval,test}.jsonl, pref_{train,eval,test}.jsonl and manifest.json; splits are by distinct prompt and "
    "seeded, rejected answers are a wrong option (balanced per split) or another encounter's note"
)


def _data_import(args: argparse.Namespace) -> int:
    from align.data.importer import ImportSettings, import_dataset

    settings = ImportSettings(args.test_size, args.eval_size, args.seed, args.limit, args.test_ids, args.force)
    manifest = import_dataset(args.format, args.path, args.out, settings)
    counts = ", ".join(f"{split} {n['sft']}" for split, n in manifest["counts"].items())
    print(f"data import: wrote {args.out} ({manifest['task']}; SFT and preference rows per split: {counts})")
    return 0


def _add_data_import(dsub) -> None:
    i = dsub.add_parser("import", help="a real public benchmark -> align's canonical files", description=IMPORT_TEXT)
    i.add_argument("format", metavar="FORMAT", help="medqa, medmcqa, pubmedqa, mts-dialog or aci-bench")
    i.add_argument(
        "path",
        metavar="PATH",
        help="a file, or a folder: every file of FORMAT in it, sorted by name (pubmedqa: the folder holding "
        "ori_pqal.json and, if present, test_ground_truth.json)",
    )
    i.add_argument("--out", required=True, metavar="DIR", help="output folder; must be new or empty unless --force")
    for split, default in (("test", "0.2"), ("eval", "0.1")):
        i.add_argument(
            f"--{split}-size",
            metavar="SIZE",
            help=f"{split} split: a fraction in (0, 1) or a whole number of distinct prompts (default {default})"
            + (
                "; pubmedqa with official test ids: not allowed, the ids decide test"
                if split == "test"
                else "; pubmedqa with official test ids: a share of the other PMIDs"
            ),
        )
    i.add_argument(
        "--seed", type=int, default=0, help="split and rejected-answer seed; same seed, same bytes (default 0)"
    )
    i.add_argument(
        "--limit", type=int, metavar="N", help="keep the first N rows of each split, in the seeded order (default: all)"
    )
    i.add_argument(
        "--test-ids",
        metavar="FILE",
        help="pubmedqa only: JSON of PMIDs (like test_ground_truth.json) that form the test split; default: "
        "test_ground_truth.json in the PATH folder, if there",
    )
    i.add_argument("--force", action="store_true", help="replace an earlier import in DIR (other files are refused)")


# ---- end of `align data import` ----------------------------------------------------------------------------------


def _prepare(args: argparse.Namespace) -> int:
    from align.embedded import prepare_embedded

    print(prepare_embedded(args.name))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from align.bench.run import PLAN, run_bench

    run_bench(Path(args.out), quick=args.quick, stages=tuple(args.stage or PLAN))
    return 0


# ---- `align pairs generate`: on-policy preference pairs from the SFT model's own answers ----------------------

PAIRS_TEXT = (
    "sample the SFT model k times per prompt, score each answer with the task metric, keep (best, worst) when their "
    "gap is at least pairs.min_gap, balance under- vs over-triage, and write canonical preference JSONL for `align dpo`"
)


def _pairs(args: argparse.Namespace) -> int:
    from align.pairs.run import already_generated, run_pairs

    recipe = _load_recipe(args.recipe, args.overrides, stage="pairs")
    if already_generated(recipe) and not args.force:
        print(f"pairs generate: already written by this recipe at {recipe.pairs.out} (pass --force to generate again)")
        return 0
    result = run_pairs(recipe)
    print(
        f"pairs generate: {result.kept} pairs from {result.prompts} prompts; wrote {result.out} and {result.manifest}"
    )
    return 0


def _add_pairs(sub) -> None:
    pairs = sub.add_parser("pairs", help="on-policy preference pairs from the SFT model", description=PAIRS_TEXT)
    psub = pairs.add_subparsers(dest="pairs_command", required=True)
    g = psub.add_parser("generate", help="sample, score and pair the SFT model's answers", description=PAIRS_TEXT)
    g.add_argument("recipe", help="recipe YAML with a `pairs` section, e.g. recipes/smollm2-135m/pairs.yaml")
    g.add_argument("overrides", nargs="*", help="key=value overrides, e.g. pairs.k=8 pairs.min_gap=1.0")
    g.add_argument("--force", action="store_true", help="generate again even if this recipe already wrote pairs.out")
    g.set_defaults(func=_pairs)


# ---- end of `align pairs` ----------------------------------------------------------------------------------------


def _add_stage(sub, name: str, text: str) -> None:
    p = sub.add_parser(name, help=text, description=text)
    p.add_argument("recipe", help=f"recipe YAML, e.g. recipes/smollm2-135m/{name}.yaml")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.learning_rate=1e-4")
    if name != "report":
        p.add_argument("--force", action="store_true", help="discard a finished or partial run and train again")
    allowed = "show report.test_data / pref_data prompts in the report" if name == "report" else "train"
    p.add_argument("--allow-phi", action="store_true", help=f"{allowed} even if the PHI scan finds likely identifiers")
    p.set_defaults(func=_stage)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="align", description="SFT, then DPO, then a report: did DPO beat SFT?")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_stage(
        sub,
        "domain",
        "domain adapter: causal-LM LoRA on clinical text (bundled notes or your corpus), held-out perplexity before "
        "and after; SFT builds on it with lora.domain_adapter; resumes",
    )
    _add_stage(
        sub,
        "sft",
        "supervised fine-tuning (TRL SFTTrainer), optionally on top of a domain adapter; resumes from its last "
        "checkpoint",
    )
    _add_stage(sub, "dpo", "DPO from the SFT result, padding-free, reference log-probs cached; resumes")
    _add_stage(sub, "report", "evaluate base, SFT and SFT+DPO on held-out data and write report.{json,md,html}")
    data = sub.add_parser("data", help="build, inspect and validate datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    b = dsub.add_parser("build", help="write the bundled clinical data (deterministic by seed)")
    b.add_argument(
        "--out", default="data/clinical", help="folder for the files and manifest.json (default: %(default)s)"
    )
    b.add_argument("--seed", type=int, default=0, help="generator seed; the same seed gives the same bytes")
    b.add_argument("--scale", type=float, default=1.0, help="multiply train sizes (e.g. 10 for GPU runs)")
    b.add_argument(
        "--error-mix",
        default="",
        metavar="TYPE=W,...",
        help="weights of the rejected answers' error types, e.g. under_triage=0.6,over_triage=0.2,wrong_reason=0.2 "
        "(a task none of whose types are named keeps its default mix; see manifest.json)",
    )
    f = dsub.add_parser(
        "fresh-test",
        help="a larger test set (another seed, nothing near-identical to the bundled data) for tighter report CIs",
        description="Build N more test prompts per task with the bundled generators and another seed, dropping any "
        "near-duplicate of a bundled train/eval/test prompt; writes OUT/sft_test.jsonl and OUT/pref_test.jsonl for "
        "report.test_data / report.pref_data (`make fresh-report` does both).",
    )
    f.add_argument("--n", type=int, default=320, help="prompts per task (default 320)")
    f.add_argument(
        "--seed", type=int, default=7, help="generator seed; must differ from the bundled data's (default 7)"
    )
    f.add_argument("--tasks", nargs="+", default=["triage", "reasoning"], help="default: triage reasoning")
    f.add_argument(
        "--against", default="data/clinical", help="the bundled data folder to keep clear of (default data/clinical)"
    )
    f.add_argument("--out", default="data/fresh", help="output folder (default data/fresh)")
    s = dsub.add_parser("stats", help="counts, label distributions and lengths per split")
    s.add_argument("dir", nargs="?", default="data/clinical")
    for name, text in (
        ("validate", "check a dataset before training"),
        ("inspect", "show rows as the model sees them"),
    ):
        v = dsub.add_parser(name, help=text, description=text)
        v.add_argument("path", help="a data file (jsonl/json/csv/parquet), a saved datasets dir, or a recipe YAML")
        v.add_argument("--kind", choices=["auto", "sft", "preference"], default="auto")
        v.add_argument("--columns", help="mapping, e.g. prompt=question,chosen=good_answer,rejected=bad_answer")
        if name == "validate":
            v.add_argument("--max-length", type=int, default=768, help="token budget per row (default 768)")
            v.add_argument(
                "--model", default="smollm2-135m", help="tokenizer to count tokens with (default smollm2-135m)"
            )
        else:
            v.add_argument("-n", type=int, default=2, help="rows to show (default 2)")
    _add_data_import(dsub)
    for d in (b, s):
        d.set_defaults(func=_data)
    for d in dsub.choices.values():
        d.set_defaults(func=_data)
    prep = sub.add_parser("prepare-model", help="dequantize and cache the embedded default model (once)")
    prep.add_argument("name", nargs="?", default="smollm2-135m")
    prep.set_defaults(func=_prepare)
    bench = sub.add_parser(
        "bench",
        help="align vs TRL defaults and TRL at its best: tokens/s, pairs/s, padding, RSS, MFU (~30 min) -> bench.json",
    )
    bench.add_argument("--out", default="outputs/bench")
    bench.add_argument("--quick", action="store_true", help="a smaller run for smoke testing")
    bench.add_argument(
        "--stage",
        action="append",
        metavar="STAGE",
        help="only this stage's rows: sft or dpo (repeatable; default both)",
    )
    bench.set_defaults(func=_bench)
    _add_pairs(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from align.network import go_offline

    go_offline()  # first: before anything imports huggingface_hub, which reads HF_HUB_OFFLINE once
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except UserError as err:
        print(str(err), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
