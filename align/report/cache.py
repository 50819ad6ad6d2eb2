"""The report's generation cache: a saved answer is reused only for the same weights, prompt and decoding settings.

Every line of `generations.jsonl` carries a `key` = sha256 of (model fingerprint, prompt, max_new_tokens, batch
size). A model's fingerprint covers the name, size and modification time of every file that defines it (final/,
merged/, the domain adapter a task adapter sits on), so retraining a stage — even under the same output folder —
makes its answers be generated again, while untouched variants (the base model, an unchanged SFT run) are reused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MODEL_PARTS = ("final", "merged", "domain_adapter.json")


def _file_stamps(root: Path) -> list[tuple[str, int, int]]:
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return [(str(p.relative_to(root.parent)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]


def model_fingerprint(model_dirs: list[Path | str]) -> str:
    """Fingerprint of a model made of these folders/files (a stage dir's parts, or a base model folder or hub id).

    A path that does not exist (a hub id) enters by name only."""
    stamps: list = []
    for d in model_dirs:
        p = Path(d)
        stamps.append([str(d), _file_stamps(p) if p.exists() else None])
    return hashlib.sha256(json.dumps(stamps).encode()).hexdigest()[:16]


def stage_model_parts(stage_dir: Path) -> list[Path]:
    """The files that define a finished stage's model, including the domain adapter it was trained on, if any."""
    parts = [stage_dir / name for name in MODEL_PARTS if (stage_dir / name).exists()]
    marker = stage_dir / "domain_adapter.json"
    if marker.is_file():
        domain = json.loads(marker.read_text(encoding="utf-8")).get("path")
        if domain:
            parts.append(Path(domain))
    return parts


def generation_key(model_fp: str, prompt: list[dict], max_new_tokens: int, batch_size: int) -> str:
    payload = json.dumps([model_fp, prompt, max_new_tokens, batch_size], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def load_generations(path: Path) -> dict[str, str]:
    """{key: text} from a saved generations.jsonl; lines without a key (older files) are not reused."""
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["key"]: r["text"] for r in rows if "key" in r}
