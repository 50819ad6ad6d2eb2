"""`align bench`: align's SFT and DPO against TRL 1.16 as a user gets it, same data, model, LoRA, steps and precision.

Each variant runs in a fresh subprocess (peak RSS is its own); TRL and align alternate so machine drift hits both.
Ratios come from the same run. Writes outputs/bench/bench.json and prints a table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tqdm.auto import tqdm

from align.bench.flops import matmul_flops_per_s, mfu, train_flops
from align.errors import UserError
from align.runinfo import library_versions, write_json

SETTINGS = {
    "model": "smollm2-135m",
    "precision": "fp32 on both sides (bf16 autocast was slower on this CPU; see align/models.py)",
    "lora": "r=16, alpha=32, dropout=0.05, all attention and MLP projections, both sides",
    "gradient_checkpointing": "off on both sides",
    "learning_rate": 1e-4,
    "sft_batch": "TRL: 8 rows padded per step; align: one packed bin of 2048 tokens per step",
    "dpo_batch": "4 pairs per step on both sides; align packs them into bins of 1024 tokens",
    "data": "bundled clinical train rows of all tasks, shuffled with seed 0 (mixed lengths); same rows on both sides",
}


def variants(quick: bool) -> list[dict]:
    lengths = [512] if quick else [512, 1024]
    steps = 2 if quick else 3  # 3 steps keeps the default bench near 14 min on 2 cores
    out = []
    for max_length in lengths:
        for impl in ("trl", "align"):
            out.append(
                {
                    "stage": "sft",
                    "impl": impl,
                    "max_length": max_length,
                    "steps": steps,
                    "batch_size": 8,
                    "pack_length": 2048,
                }
            )
        for impl in ("trl", "align", "align_warm"):
            out.append(
                {
                    "stage": "dpo",
                    "impl": impl,
                    "max_length": max_length,
                    "steps": steps,
                    "batch_size": 4,
                    "pack_length": 1024,
                }
            )
    return out


def run_variant(cfg: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "align.bench.worker", json.dumps(cfg)], capture_output=True, text=True, check=False
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"bench variant {cfg['stage']}/{cfg['impl']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("BENCH ") :])


def derive(r: dict, peak: float) -> dict:
    lora = True
    flops = train_flops(r["params"], r["trained_tokens"], r["ref_tokens"], lora)
    out = {
        "seconds": round(r["seconds"], 2),
        "nonpad_tokens_per_s": r["real_tokens"] / r["seconds"],
        "padding_fraction": 1 - r["real_tokens"] / r["processed_tokens"] if r["processed_tokens"] else 0.0,
        "fwd_per_step": r["fwd_per_step"],
        "bwd_per_step": r["bwd_per_step"],
        "peak_rss_mb": round(r["peak_rss_mb"], 1),
        "mfu": mfu(flops, r["seconds"], peak),
    }
    if r.get("rows"):
        out["pairs_per_s"] = r["rows"] / r["seconds"]
    return out


def summarize(results: list[dict], peak: float) -> dict:
    table: dict = {"sft": {"by_max_length": {}}, "dpo": {"by_max_length": {}}}
    for r in results:
        table[r["stage"]]["by_max_length"].setdefault(str(r["max_length"]), {})[r["impl"]] = derive(r, peak)
    for stage, rate in (("sft", "nonpad_tokens_per_s"), ("dpo", "pairs_per_s")):
        by = table[stage]["by_max_length"]
        for m in by.values():
            m["speedup"] = m["align"][rate] / m["trl"][rate]
            m["peak_rss_ratio"] = m["align"]["peak_rss_mb"] / m["trl"]["peak_rss_mb"]
            if "align_warm" in m:
                m["speedup_warm_cache"] = m["align_warm"][rate] / m["trl"][rate]
        headline = by[max(by, key=int)]  # the longest max_length is the headline
        table[stage].update({k: headline[k] for k in ("speedup", "peak_rss_ratio", "align", "trl")})
        if "speedup_warm_cache" in headline:
            table[stage]["speedup_warm_cache"] = headline["speedup_warm_cache"]
    return table


def format_table(table: dict) -> str:
    lines = [f"{'stage':5} {'max_len':>7} {'impl':10} {'tok/s':>8} {'pairs/s':>8} {'pad%':>6} {'RSS MB':>7} {'MFU':>6}"]
    for stage in ("sft", "dpo"):
        for max_length, m in table[stage]["by_max_length"].items():
            for impl in ("trl", "align", "align_warm"):
                if impl in m:
                    v = m[impl]
                    lines.append(
                        f"{stage:5} {max_length:>7} {impl:10} {v['nonpad_tokens_per_s']:8.1f} "
                        f"{v.get('pairs_per_s', 0):8.3f} {100 * v['padding_fraction']:6.1f} {v['peak_rss_mb']:7.0f} "
                        f"{100 * v['mfu']:5.1f}%"
                    )
            lines.append(f"      speedup {m['speedup']:.2f}x  peak RSS ratio {m['peak_rss_ratio']:.2f}")
    return "\n".join(lines)


def run_bench(out_dir: Path, quick: bool = False) -> dict:
    for name in ("sft_train.jsonl", "pref_train.jsonl"):
        if not (Path("data/clinical") / name).is_file():
            raise UserError(f"data/clinical/{name} is missing", "run `align data build` (or `make data`) first")
    peak = matmul_flops_per_s()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for cfg in tqdm(variants(quick), desc="bench variants"):
            cfg.update(
                model=SETTINGS["model"],
                out=f"{tmp}/run",
                cache_dir=f"{tmp}/refcache-{cfg['max_length']}",
                sft_rows="data/clinical/sft_train.jsonl",
                pref_rows="data/clinical/pref_train.jsonl",
            )
            results.append(run_variant(cfg))
    table = summarize(results, peak)
    bench = {
        **table,
        "settings": SETTINGS,
        "matmul_fp32_flops_per_s": peak,
        "versions": library_versions(),
        "raw": results,
    }
    write_json(Path(out_dir) / "bench.json", bench)
    print(format_table(table))
    print(f"matmul peak (fp32, measured now): {peak / 1e9:.0f} GFLOP/s; wrote {Path(out_dir) / 'bench.json'}")
    return bench
