"""The stage directory, in one place: what a stage leaves on disk, when it is complete, what the next stage starts
from, the stamp the report's generation cache keys on, the domain-adapter marker, saving and loading.

    outputs/<run>/<stage>/
      final/               LoRA adapter (PEFT) or full weights: loads in plain transformers / PEFT
      merged/              the adapter folded into the base weights: the next stage's start and DPO's reference
      checkpoints/         trainer checkpoints, resumed by a rerun (the newest complete one)
      checkpoints-incomplete/  checkpoints a kill left half-written, set aside by the rerun that skipped them
      tensorboard/         training curves, with `train.report_to: tensorboard` (`tensorboard --logdir outputs`)
      metrics.json         loss curves, tokens, wall time, stage extras; written last, so it marks completion
      recipe.yaml          the resolved recipe;  versions.json: libraries, data fingerprints, seed
      heldout.jsonl        the eval rows it held out (data.eval, or carved by data.test_split_size): what the
                           report scores by default
      trained_prompts.json sha256 of every prompt it trained on: the report never scores one of those
      domain_adapter.json  the domain adapter a task adapter was trained on (two-step PEFT), when there is one

Every stage, the report, the pair generator and the diagnostics import this module; nobody else knows the layout.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from align.errors import UserError
from align.runinfo import is_main_process, read_jsonl, write_json, write_jsonl

log = logging.getLogger("align")
FINAL, MERGED, CHECKPOINTS, TENSORBOARD = "final", "merged", "checkpoints", "tensorboard"
METRICS, RECIPE, MARKER = "metrics.json", "recipe.yaml", "domain_adapter.json"
HELDOUT, TRAINED = "heldout.jsonl", "trained_prompts.json"
MODEL_PARTS = (FINAL, MERGED, MARKER)  # the files that define a stage's model
INCOMPLETE = "checkpoints-incomplete"


@dataclass
class RunResult:
    out_dir: Path
    final_dir: Path
    metrics: dict = field(default_factory=dict)


def is_complete(stage_dir: Path | str) -> bool:
    return (Path(stage_dir) / FINAL).is_dir() and (Path(stage_dir) / METRICS).is_file()


def require_complete(stage_dir: Path | str, what: str, fix: str) -> Path:
    """The stage directory when it holds a finished run, else one line: `no finished <what> run at <dir>; <fix>`."""
    if not is_complete(stage_dir):
        raise UserError(f"no finished {what} run at {stage_dir}", fix)
    return Path(stage_dir)


def start_weights(stage_dir: Path | str) -> Path:
    """The weights a next stage starts from (and DPO's reference): merged/ after LoRA, final/ after full tuning."""
    merged = Path(stage_dir) / MERGED
    return merged if merged.is_dir() else Path(stage_dir) / FINAL


def last_checkpoint(stage_dir: Path) -> str | None:
    """The newest complete trainer checkpoint, which a rerun resumes from (None: start afresh).

    A kill during a save leaves a `checkpoint-N` without trainer_state.json (the trainer writes it last), and one
    during the trainer's rotation a half-deleted one. Each incomplete checkpoint is logged with the reason and moved
    to checkpoints-incomplete/, so neither this resume nor the trainer's next rotation (which sorts by mtime) trips
    on it."""
    ckpt_dir = Path(stage_dir) / CHECKPOINTS
    found = sorted(_numbered_checkpoints(ckpt_dir), reverse=True)
    resume = None
    for _, path in found:
        try:
            problem = checkpoint_problem(path)
        except OSError as err:  # e.g. removed while being read
            problem = f"cannot be read ({err.strerror or err})"
        if problem is None:
            resume = resume or path
            continue
        log.warning("skipping incomplete checkpoint %s: %s", path, problem)
        _set_aside(path, Path(stage_dir) / INCOMPLETE)
    if resume is not None:
        log.info("resuming from %s", resume)
    return None if resume is None else str(resume)


def _numbered_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    if not ckpt_dir.is_dir():
        return []
    named = ((re.fullmatch(r"checkpoint-(\d+)", p.name), p) for p in ckpt_dir.iterdir() if p.is_dir())
    return [(int(m.group(1)), p) for m, p in named if m]


# what a resumable checkpoint holds: any one name of each group (LoRA or full weights, single or sharded;
# DeepSpeed keeps optimizer and scheduler in global_step*/, FSDP its optimizer in optimizer_*/)
CHECKPOINT_PARTS: dict[str, tuple[str, ...]] = {
    "model or adapter weights": (
        "adapter_model.safetensors",
        "model.safetensors",
        "model.safetensors.index.json",
        "adapter_model.bin",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
        "pytorch_model_fsdp*",
        "global_step*",
    ),
    "optimizer state": ("optimizer.pt", "optimizer.bin", "optimizer_*", "global_step*"),
    "scheduler state": ("scheduler.pt", "global_step*"),
}


def checkpoint_problem(path: Path) -> str | None:
    """Why the trainer checkpoint folder `path` cannot be resumed, or None when it is complete: trainer_state.json
    parses, weights, optimizer and scheduler are there, and no file is cut short (every JSON parses, every
    safetensors file is as long as its header says, every torch.save file ends with its zip directory)."""
    if not (path / "trainer_state.json").is_file():
        return "no trainer_state.json (the save was interrupted)"
    for what, names in CHECKPOINT_PARTS.items():
        if not any(any(path.glob(name)) for name in names):
            return f"no {what}"
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        problem = _file_problem(f)
        if problem is not None:
            return f"{f.name} {problem}"
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values())
        missing = sorted(s for s in shards if not (path / s).is_file())
        if missing:
            return f"shard {missing[0]} is missing"
    return None


def _file_problem(f: Path) -> str | None:
    """None when the file is whole, else what is wrong with it."""
    if f.suffix == ".json":
        try:
            json.loads(f.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            return "is truncated (not valid JSON)"
    elif f.suffix == ".safetensors":
        return _safetensors_problem(f)
    elif f.suffix in (".pt", ".pth", ".bin") and not zipfile.is_zipfile(f):
        return "is truncated (no zip directory at its end)"
    return None


def _safetensors_problem(f: Path) -> str | None:
    """A safetensors file is an 8-byte header length, a JSON header, then the tensors' bytes (data_offsets)."""
    size = f.stat().st_size
    with f.open("rb") as fh:
        head = fh.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 0 or size < 8 + n:
            return "is truncated (header cut short)"
        try:
            header = json.loads(fh.read(n))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, UnicodeDecodeError, AttributeError, KeyError, TypeError, IndexError):
            return "is damaged (its header is not a safetensors header)"
    return None if size >= 8 + n + end else f"is truncated ({size} of {8 + n + end} bytes)"


def _set_aside(path: Path, incomplete_dir: Path) -> None:
    """Move an incomplete checkpoint into `incomplete_dir` (rank 0 only; a name already there gets a suffix)."""
    if not is_main_process():
        return
    incomplete_dir.mkdir(parents=True, exist_ok=True)
    target, k = incomplete_dir / path.name, 1
    while target.exists():
        target, k = incomplete_dir / f"{path.name}.{k}", k + 1
    try:
        path.rename(target)
    except OSError as err:
        raise UserError(
            f"cannot move the incomplete checkpoint {path} aside ({err.strerror or err})", "delete it"
        ) from None
    log.warning("moved %s to %s", path, target)


# ---- what the stage's model is made of (the report's cache keys on it) -------------------------------------------


def model_parts(stage_dir: Path) -> list[Path]:
    """The files that define a finished stage's model, including the domain adapter it was trained on, if any."""
    stage_dir = Path(stage_dir)
    parts = [stage_dir / name for name in MODEL_PARTS if (stage_dir / name).exists()]
    domain = read_marker(stage_dir, check=False)
    return parts + ([domain] if domain is not None else [])


def model_stamp(paths: list[Path | str]) -> str:
    """Stamp of a model made of these folders/files: the name, size and modification time of every file in them.

    A path that does not exist (a hub id) enters by name only. Retraining a stage under the same folder changes it."""
    stamps: list = []
    for given in paths:
        p = Path(given)
        stamps.append([str(given), _file_stamps(p) if p.exists() else None])
    return hashlib.sha256(json.dumps(stamps).encode()).hexdigest()[:16]


def stage_stamp(stage_dir: Path) -> str:
    return model_stamp(model_parts(stage_dir))


def _file_stamps(root: Path) -> list[tuple[str, int, int]]:
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return [(str(p.relative_to(root.parent)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]


# ---- the domain-adapter marker (two-step PEFT) ---------------------------------------------------------------------


def write_marker(stage_dir: Path, record: dict | None) -> None:
    """domain_adapter.json beside final/ (removed when there is no domain adapter, so a stale one never applies)."""
    if not is_main_process():
        return
    if record is None:
        (Path(stage_dir) / MARKER).unlink(missing_ok=True)
    else:
        write_json(Path(stage_dir) / MARKER, record)


def read_marker(stage_dir: Path, check: bool = True) -> Path | None:
    """The domain adapter a stage's final/ task adapter was trained on, or None; `check`: it must still exist."""
    marker = Path(stage_dir) / MARKER
    if not marker.is_file():
        return None
    path = Path(json.loads(marker.read_text(encoding="utf-8"))["path"])
    if check and not (path / "adapter_config.json").is_file():
        raise UserError(
            f"the domain adapter this stage was trained on is missing: {path}",
            "restore it, or use the stage's merged/ weights",
            str(marker),
        )
    return path


# ---- saving --------------------------------------------------------------------------------------------------------


def save_final(model, tokenizer, stage_dir: Path, adapters: list[str] | None = None) -> Path:
    """final/: the LoRA adapter (PEFT) or full weights, loadable with plain transformers/PEFT; safetensors only.

    `adapters` names the PEFT adapters to save when the model holds several (e.g. the task adapter, not the frozen
    domain adapter under it)."""
    extra = {"selected_adapters": adapters} if adapters else {}
    return _save_swapped(model, tokenizer, Path(stage_dir) / FINAL, **extra)


def save_merged(model, tokenizer, stage_dir: Path) -> Path:
    """merged/: the adapter folded into the base weights, the starting point and reference for the next stage."""
    return _save_swapped(model, tokenizer, Path(stage_dir) / MERGED)


def _save_swapped(model, tokenizer, target: Path, **save_kwargs) -> Path:
    """Write model + tokenizer to a temporary folder beside `target`, then swap it in (rank 0 only), so an
    interrupted save never leaves a half-written `target`."""
    if not is_main_process():
        return target
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True, **save_kwargs)
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def prompt_key(prompt: list[dict]) -> str:
    """sha256 of a prompt's messages (canonical JSON): how stages and the report recognise the same prompt."""
    return hashlib.sha256(json.dumps(prompt, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def save_split(stage_dir: Path, train_rows: list[dict], eval_rows: list[dict]) -> None:
    """heldout.jsonl (the eval rows, as read) and trained_prompts.json (keys of the train prompts); rank 0 only."""
    if not is_main_process():
        return
    write_jsonl(Path(stage_dir) / HELDOUT, [dict(r) for r in eval_rows])
    write_json(Path(stage_dir) / TRAINED, sorted({prompt_key(r["prompt"]) for r in train_rows}))


def write_metrics(stage_dir: Path, metrics: dict) -> None:
    """metrics.json, written last by every stage: with final/ it marks the stage complete (rank 0 only)."""
    if is_main_process():
        write_json(Path(stage_dir) / METRICS, metrics)


# ---- reading -------------------------------------------------------------------------------------------------------


def read_metrics(stage_dir: Path | str) -> dict:
    path = Path(stage_dir) / METRICS
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def read_heldout(stage_dir: Path | str) -> list[dict]:
    """The eval rows a stage held out (none when it saved none)."""
    path = Path(stage_dir) / HELDOUT
    return read_jsonl(path) if path.is_file() else []


def trained_prompts(stage_dir: Path | str) -> set[str]:
    """Keys (`prompt_key`) of the prompts a stage trained on (empty for runs older than this file)."""
    path = Path(stage_dir) / TRAINED
    return set(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else set()


def read_recipe(stage_dir: Path | str) -> dict[str, Any]:
    """The resolved recipe a stage saved (empty when there is none)."""
    import yaml

    path = Path(stage_dir) / RECIPE
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}


def load_for_inference(stage_dir: Path | None, cfg, hw=None):
    """(model, tokenizer) to answer with: the base model (`stage_dir` None) or a finished stage's, in eval mode, in
    the dtype `inference_dtype` picks. Adapters are merged in fp32 and the merged weights cast after."""
    import torch

    from align.models import load_model

    model, tok = load_model(cfg, hw=hw) if stage_dir is None else load_stage_model(stage_dir, cfg, hw)
    dtype = inference_dtype(cfg, hw)
    if dtype != torch.float32 and cfg.quantization == "none":
        log.info("answering in %s (model.precision: %s)", str(dtype).removeprefix("torch."), cfg.precision)
        model = model.to(dtype)
    return model.eval(), tok


def inference_dtype(cfg, hw=None):
    """The dtype a model answers in: `model.precision` when forced; `auto` is bf16 on a GPU with bf16 (an 8B model
    in fp32 would need 32 GB) and fp32 on CPU, even where training autocasts to bf16.

    Why fp32 on CPU: bf16 keeps what a sum over many tokens measures (on the default run's held-out pairs the
    SFT+DPO vs SFT reward margins in bf16 correlate 0.996 with fp32's) and answers 1.7x faster, but it flips greedy
    near-ties: 15 of 80 of the default SFT model's triage decisions changed (fp32 changed none between batch sizes
    16 and 7), which moved reasoning's SFT+DPO - SFT from 0.000 to -0.050. `model.precision: bf16` opts in."""
    import torch

    from align.models import Hardware, select_precision

    hw = hw or Hardware.detect()
    if cfg.precision == "auto" and not hw.cuda:
        return torch.float32
    return select_precision(cfg.precision, hw)


def load_stage_model(stage_dir: Path, cfg, hw=None):
    """(model, tokenizer) of a finished stage, ready to use: merged/ when present, else final/ (full weights, or a
    LoRA adapter merged into the base it names). A task adapter trained on a domain adapter (the marker beside
    final/) loads as base -> domain -> task."""
    from align.models import load_model, merge_adapter, read_adapter_base

    stage_dir = Path(stage_dir)
    final = stage_dir / FINAL
    if (stage_dir / MERGED).is_dir() or not (final / "adapter_config.json").is_file():
        return load_model(cfg, str(start_weights(stage_dir)), hw)
    model, tok = load_model(cfg, read_adapter_base(final), hw)
    domain = read_marker(stage_dir)
    if domain is not None:
        model = merge_adapter(model, domain)
    return merge_adapter(model, final), tok
