"""`align bench`: per stage, TRL 1.16 as a user gets it, TRL at its documented best settings, and align, in one run.

Rows (PLAN; each variant is described in align/bench/worker.py and in SETTINGS below):
  SFT  trl_default, trl_best, align, align_x2                      rate: non-pad tokens/s
  DPO  trl_default, trl_best, align, align_unshared, align_x2      rate: pairs/s, the reference pass included
A stage's rows run one after another in fresh subprocesses (peak RSS is each run's own), and that round runs
ALTERNATIONS times, so drift on the machine hits every row; a row's figure is the median of its runs, printed with
their min-max, and every ratio divides two medians of the same bench.

Each run trains until BUDGET_S seconds of measured steps have passed; its first optimizer step is warm-up and is not
measured. Throughput = measured work / measured seconds. trl_default's reference forward runs inside its steps; where
the reference log-probs are computed before training (trl_best, align, align_unshared), that pass is timed and
charged per pair: ref_seconds / pairs in the dataset x pairs trained, what an epoch over the dataset pays per pair.
align's reference cache is cold (a fresh folder per run), TRL's precompute cache is per process.
`align_x2` trains on twice the rows (DATA_ROWS): its time per token should match `align`'s (no cost grows with the
data faster than the data). MFU is against the dense matmul FLOP/s measured in this run, in the runs' precision
(select_precision("auto"), the same for every row).

Wall time of `make bench` on 2 cores: 18 runs x (60 s measured + ~15 s start-up and model load + the warm-up step +
the reference pass where there is one): SFT 8 runs x ~85 s ~ 11 min, DPO 10 runs x ~105 s ~ 18 min, ~30 min in all.
`--quick` (smoke test): 9 runs of 2 steps (warm-up + 1 measured) on 16 SFT rows / 8 pairs (x2: twice), 1 round.
`--stage sft` or `--stage dpo`: that stage's rows only (~11 or ~18 min); its targets alone are checked.
Writes <out>/bench.json and <out>/bench.svg and prints the table.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from align.bench.flops import matmul_flops_per_s, mfu, train_flops
from align.bench.plot import bench_svg
from align.errors import UserError
from align.models import Hardware, select_precision
from align.runinfo import library_versions, read_jsonl, write_atomic, write_json

PLAN: dict[str, tuple[tuple[str, int], ...]] = {  # stage: (variant, data scale) in run order
    "sft": (("trl_default", 1), ("trl_best", 1), ("align", 1), ("align", 2)),
    "dpo": (("trl_default", 1), ("trl_best", 1), ("align", 1), ("align_unshared", 1), ("align", 2)),
}
MODEL = "smollm2-135m"
DATA = {"sft": "data/clinical/sft_train.jsonl", "dpo": "data/clinical/pref_train.jsonl"}
DATA_ROWS = {"sft": 340, "dpo": 64}  # at scale 1: more than a 60 s run consumes at the speeds seen on 2 cores
QUICK_ROWS = {"sft": 16, "dpo": 8}
BUDGET_S, ALTERNATIONS, WARMUP_STEPS = 60.0, 2, 1
RUN_OVERHEAD_S = 40.0  # per run beside the budget on 2 cores: start-up, model load, warm-up step, reference pass
RATE = {"sft": "tokens_per_s", "dpo": "pairs_per_s"}
UNIT = {"sft": "non-pad tokens/s", "dpo": "pairs/s, reference pass included"}
BASELINES = ("trl_default", "trl_best")
TARGETS = (("sft", "align", "trl_best", 1.1), ("dpo", "align", "trl_default", 2.5), ("dpo", "align", "trl_best", 1.5))
MAX_PADDING = 0.02
SETTINGS = {
    "model": "smollm2-135m (embedded), fp32 weights, autocast in the bench's precision; attention: sdpa for the TRL "
    "rows, align's `auto` for align's (on CPU sdpa_blocks: align/attention.py)",
    "precision": "one for every row: align.models.select_precision('auto') on this machine (bf16 with AMX or a "
    "bf16 GPU, else fp32); bf16 -> bf16=True in every TRL config; the matmul peak is measured in it too",
    "lora": "r=16, alpha=32, dropout=0 (align's recipes), all attention and MLP projections, every row",
    "gradient_checkpointing": "off for every row (TRL 1.16 defaults it on; on CPU it costs ~20 % per step, so the "
    "TRL rows are faster than its literal defaults)",
    "sft_trl_default": "SFTTrainer on prompt/completion rows: padded batches of 8 rows, max_length 1024, no packing",
    "sft_trl_best": "TRL's documented fastest SFT: packing=True, packing_strategy='bfd', padding_free=True, "
    "per_device_train_batch_size=1 (one packed bin of 1024 tokens per step, like align)",
    "sft_align": "align's SFT stage: align.data.collate.render_sft, TRL's bfd packing, one bin of 1024 tokens per "
    "step, align.logps.compact_scoring()",
    "dpo_trl_default": "DPOTrainer: 4 pairs per step, padded, the reference forward in every step",
    "dpo_trl_best": "precompute_ref_log_probs=True (the reference pass before training, charged per pair); "
    "padding_free=True is set too, but TRL 1.16 logs that it is 'temporarily unavailable' and falls back to padding "
    "(each run records trl_padding_free)",
    "dpo_align": "AlignDPOTrainer: 4 pairs per step packed padding-free into bins of 1024 tokens, share_prompt=True "
    "(each pair's prompt computed once, in the policy forward and the reference pass); the reference pass is cold "
    "(a fresh cache folder per run) and charged per pair",
    "dpo_align_unshared": "the same with share_prompt=False: the difference is what prompt sharing adds",
    "measurement": f"each run trains until >= {BUDGET_S:.0f} s of measured steps (max_steps out of reach); step 1 is "
    "warm-up, not measured; seconds = measured seconds + reference pass seconds x pairs trained / pairs in the "
    "dataset (tokenizing and packing the dataset, before training in every variant, is not counted); median and "
    "min-max of the runs of a row",
    "data": "bundled clinical train rows of all tasks shuffled with seed 0 (mixed lengths), the first data_rows of "
    "them, the same for every variant; align also at twice the rows (align_x2); a fast run may pass one epoch, then "
    "the trainer starts the next (raw runs record epochs)",
    "mfu": "(4N per trained token with LoRA + 2N per reference token, N = base parameters) over the non-padding "
    "tokens each row computes (a shared prompt once), per second, over the best dense matmul FLOP/s measured at the "
    "start and end of the bench",
}


def row_name(variant: str, scale: int) -> str:
    return variant if scale == 1 else f"{variant}_x{scale}"


def plan(quick: bool, stages: tuple[str, ...] = tuple(PLAN)) -> list[dict]:
    """Every run in order: a stage's rows one after another, that round `ALTERNATIONS` times, then the next stage
    (of `stages`, in PLAN's order)."""
    rounds, sizes = (1, QUICK_ROWS) if quick else (ALTERNATIONS, DATA_ROWS)
    return [
        {
            "stage": stage,
            "variant": variant,
            "row": row_name(variant, scale),
            "data_rows": sizes[stage] * scale,
            "alternation": alternation,
            "budget_s": 0.0 if quick else BUDGET_S,
            "warmup_steps": WARMUP_STEPS,
            "data": DATA[stage],
        }
        for stage, rows in PLAN.items()
        if stage in stages
        for alternation in range(rounds)
        for variant, scale in rows
    ]


def run_worker(cfg: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "align.bench.worker", json.dumps(cfg)], capture_output=True, text=True, check=False
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"bench run {cfg['stage']}/{cfg['row']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("BENCH ") :])


def derive(run: dict, peak: float) -> dict:
    """One run's figures, the reference pass before training charged per pair trained."""
    ref = run["ref_seconds"] * run.get("pairs", 0) / run["ref_pairs"] if run["ref_pairs"] else 0.0
    seconds = run["measured_seconds"] + ref
    out = {
        "seconds": seconds,
        "ref_seconds_charged": ref,
        "tokens_per_s": run["data_tokens"] / seconds,
        "ms_per_token": 1000 * seconds / run["data_tokens"],
        "padding_fraction": 1 - run["real_tokens"] / run["processed_tokens"],
        "peak_rss_mb": run["peak_rss_mb"],
        "mfu": mfu(train_flops(run["params"], run["real_tokens"], run["ref_tokens"], lora=True), seconds, peak),
    }
    if "pairs" in run:
        out["pairs_per_s"] = run["pairs"] / seconds
    return out


def spread(values: list[float]) -> dict[str, float]:
    """Median and min-max of a row's runs; spread = (max - min) / median. [1, 2, 4] -> median 2, spread 1.5."""
    mid = statistics.median(values)
    return {"median": mid, "min": min(values), "max": max(values), "spread": (max(values) - min(values)) / mid}


def summarize_row(stage: str, runs: list[dict], derived: list[dict]) -> dict:
    """A row: the median of every figure over its runs, the rate's min-max too."""
    median = {k: statistics.median(d[k] for d in derived) for k in derived[0]}
    return {
        "variant": runs[0]["variant"],
        "data_rows": runs[0]["data_rows"],
        "runs": len(runs),
        "rate": spread([d[RATE[stage]] for d in derived]),
        "measured_steps": statistics.median(r["measured_steps"] for r in runs),
        "epochs": max(r["epochs"] for r in runs),
        **median,
    }


def add_ratios(rows: dict[str, dict]) -> None:
    """Each row's median rate and peak RSS over those of the TRL rows on the same data, and an x2 row's time per
    token over its x1 row's."""
    by_size = {(r["variant"], r["data_rows"]): r for r in rows.values()}
    for row in rows.values():
        for base in BASELINES:
            ref = by_size.get((base, row["data_rows"]))
            row[f"vs_{base}"] = row["rate"]["median"] / ref["rate"]["median"] if ref else None
            row[f"rss_vs_{base}"] = row["peak_rss_mb"] / ref["peak_rss_mb"] if ref else None
        smaller = [r for r in rows.values() if r["variant"] == row["variant"] and r["data_rows"] < row["data_rows"]]
        if smaller:
            row["ms_per_token_vs_x1"] = row["ms_per_token"] / min(smaller, key=lambda r: r["data_rows"])["ms_per_token"]


def summarize(runs: list[dict], peak: float) -> dict:
    """Per stage, its rows in plan order: medians, the rate's spread, ratios of medians."""
    table: dict[str, dict] = {}
    for stage in PLAN:
        grouped: dict[str, list[dict]] = {}
        for run in runs:
            if run["stage"] == stage:
                grouped.setdefault(run["row"], []).append(run)
        if not grouped:
            continue
        rows = {name: summarize_row(stage, rs, [derive(r, peak) for r in rs]) for name, rs in grouped.items()}
        add_ratios(rows)
        table[stage] = {"rate": RATE[stage], "unit": UNIT[stage], "rows": rows}
    return table


def _target(text: str, value: float | None, met: bool, unit: str = "x") -> dict:
    return {"target": text, "value": value, "unit": unit, "met": met}


def check_targets(table: dict) -> list[dict]:
    """The issue's targets against this run (those of the stages it ran): speed ratios of medians, align's padding,
    align's peak RSS vs TRL's."""
    out = []
    for stage, row, base, minimum in TARGETS:
        if stage not in table:
            continue
        value = table[stage]["rows"].get(row, {}).get(f"vs_{base}")
        out.append(_target(f"{stage} {row} >= {minimum}x {base}", value, value is not None and value >= minimum))
    for stage, t in table.items():
        for name, row in t["rows"].items():
            if not row["variant"].startswith("align"):
                continue
            pad = row["padding_fraction"]
            out.append(_target(f"{stage} {name} padding <= {100 * MAX_PADDING:.0f} %", pad, pad <= MAX_PADDING, "%"))
            for base in BASELINES:
                ratio = row[f"rss_vs_{base}"]
                if ratio is not None:
                    out.append(_target(f"{stage} {name} peak RSS <= {base}'s", ratio, ratio <= 1.0))
    return out


def _ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "-"


def _shown(target: dict) -> str:
    if target["value"] is None:
        return "no such row in this run"
    return f"{100 * target['value']:.1f} %" if target["unit"] == "%" else _ratio(target["value"])


def format_table(table: dict, targets: list[dict]) -> str:
    """Per stage, a row per variant and data size: median rate [min-max], spread, time per token, padding, peak RSS,
    MFU, measured steps, ratios; then every target, met or missed."""
    lines = []
    for stage, t in table.items():
        lines.append(f"{stage.upper()}: rate = {t['unit']}; median of each row's runs [min-max]")
        lines.append(
            f"  {'row':15} {'data':>5} {'rate':>8} {'[min-max]':>17} {'spread':>6} {'ms/tok':>7} {'pad':>6} "
            f"{'RSS MB':>6} {'MFU':>6} {'steps':>5} {'vs default':>10} {'vs best':>8}"
        )
        for name, r in t["rows"].items():
            rate = r["rate"]
            flat = (
                f"  time/token {r['ms_per_token_vs_x1']:.2f}x the smaller data's" if "ms_per_token_vs_x1" in r else ""
            )
            lines.append(
                f"  {name:15} {r['data_rows']:5d} {rate['median']:8.4g} [{rate['min']:7.4g}-{rate['max']:7.4g}] "
                f"{100 * rate['spread']:5.1f}% {r['ms_per_token']:7.3g} {100 * r['padding_fraction']:5.1f}% "
                f"{r['peak_rss_mb']:6.0f} {100 * r['mfu']:5.1f}% {r['measured_steps']:5.0f} "
                f"{_ratio(r['vs_trl_default']):>10} {_ratio(r['vs_trl_best']):>8}{flat}"
            )
    lines.append("targets (ratios of medians from this run):")
    lines += [f"  {'met   ' if t['met'] else 'MISSED'} {t['target']}: {_shown(t)}" for t in targets]
    return "\n".join(lines)


def check_data(quick: bool, stages: tuple[str, ...]) -> None:
    sizes = QUICK_ROWS if quick else DATA_ROWS
    for stage in stages:
        path = DATA[stage]
        need = sizes[stage] * max(scale for _, scale in PLAN[stage])
        if not Path(path).is_file():
            raise UserError(f"{path} is missing", "run `align data build` (or `make data`) first")
        if len(read_jsonl(path)) < need:
            raise UserError(f"{path} has fewer than the {need} rows the bench needs", "run `align data build` again")


def run_bench(out_dir: Path, quick: bool = False, stages: tuple[str, ...] = tuple(PLAN)) -> dict:
    unknown = [s for s in stages if s not in PLAN]
    if unknown or not stages:
        raise UserError(f"no bench stage {', '.join(unknown) or '(none)'}", f"choose from {', '.join(PLAN)}")
    check_data(quick, stages)
    dtype = select_precision("auto", Hardware.detect())
    precision = "bf16" if dtype == torch.bfloat16 else "fp32"
    runs_planned = plan(quick, stages)
    minutes = len(runs_planned) * (runs_planned[0]["budget_s"] + RUN_OVERHEAD_S) / 60
    print(f"bench: {len(runs_planned)} runs in {precision}, about {minutes:.0f} min on 2 cores")
    started, peaks = time.time(), [matmul_flops_per_s(dtype)]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, cfg in enumerate(tqdm(runs_planned, desc="bench runs")):
            paths = {"out": f"{tmp}/run{i}", "cache_dir": f"{tmp}/refcache{i}"}  # a cold reference cache per run
            runs.append(run_worker(cfg | paths | {"model": MODEL, "precision": precision}))
    peaks.append(matmul_flops_per_s(dtype))
    table = summarize(runs, max(peaks))
    targets = check_targets(table)
    bench = {
        "settings": SETTINGS
        | {"precision_selected": precision, "budget_s": runs_planned[0]["budget_s"]}
        | {"alternations": 1 if quick else ALTERNATIONS, "data_rows": QUICK_ROWS if quick else DATA_ROWS}
        | {"stages": list(stages)},
        "precision": precision,
        "matmul_peak_flops_per_s": max(peaks),
        "matmul_flops_per_s_start_end": peaks,
        "versions": library_versions(),
        "wall_seconds": time.time() - started,
        **table,
        "targets": targets,
        "raw": runs,
    }
    out_dir = Path(out_dir)
    write_json(out_dir / "bench.json", bench)
    write_atomic(out_dir / "bench.svg", bench_svg(table))
    print(format_table(table, targets))
    print(
        f"matmul peak ({precision}, measured in this run): {max(peaks) / 1e9:.0f} GFLOP/s; "
        f"wrote {out_dir / 'bench.json'} and {out_dir / 'bench.svg'}"
    )
    return bench
