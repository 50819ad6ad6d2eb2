"""On-disk cache of reference log-probs, keyed by what decides their values: data, reference weights, chat template,
max_length, precision, and how the pass lays the pairs out (bin length, prompt shared or not): in bf16 the same pairs
packed into other bins give other round-off, so values computed under another layout are not reused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from align.runinfo import write_json


def weights_fingerprint(model: torch.nn.Module) -> str:
    """Fingerprint of the reference weights: every non-adapter tensor's name, shape and a strided sample of values.

    LoRA tensors are left out: a fresh adapter (B = 0) does not change the reference, whatever its random A.
    """
    h = hashlib.sha256()
    for name, param in sorted(model.state_dict().items()):
        if "lora_" in name or ".ref." in name:
            continue
        flat = param.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 4096)].float().cpu()
        h.update(name.replace("base_model.model.", "").encode())
        h.update(str(tuple(param.shape)).encode())
        h.update(sample.numpy().tobytes())
    return h.hexdigest()[:24]


def cache_key(
    data_fp: str, weights_fp: str, template_fp: str, max_length: int, precision: str, bin_length: int, shared: bool
) -> str:
    raw = f"{data_fp}|{weights_fp}|{template_fp}|{max_length}|{precision}|bins={bin_length}|shared={shared}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def load(cache_dir: Path, key: str) -> tuple[list[float], list[float]] | None:
    path = Path(cache_dir) / f"{key}.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data["ref_chosen_logps"], data["ref_rejected_logps"]


def save(cache_dir: Path, key: str, chosen: list[float], rejected: list[float]) -> Path:
    """Written atomically: a crash leaves no half-written cache entry."""
    path = Path(cache_dir) / f"{key}.json"
    write_json(path, {"ref_chosen_logps": chosen, "ref_rejected_logps": rejected})
    return path
