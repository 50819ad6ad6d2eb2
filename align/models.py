"""Load a model and tokenizer (embedded default, local path or hub id), pick attention and precision, apply LoRA."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from align import attention  # registers sdpa_blocks with transformers
from align.config import LoraConfig, ModelConfig
from align.embedded import EMBEDDED, prepare_embedded
from align.errors import UserError
from align.network import apply_network_policy

log = logging.getLogger("align")


@dataclass(frozen=True)
class Hardware:
    cuda: bool
    flash_attn: bool
    cuda_bf16: bool
    cpu_bf16: bool

    @staticmethod
    def detect() -> Hardware:
        cuda = torch.cuda.is_available()
        return Hardware(
            cuda=cuda,
            flash_attn=importlib.util.find_spec("flash_attn") is not None,
            cuda_bf16=cuda and torch.cuda.is_bf16_supported(),
            # avx512_bf16 alone is not enough: on such a 2-core Xeon, bf16 autocast ran LoRA fwd+bwd 1.4x slower
            # than fp32 (7.5 s vs 5.4 s per 1024 tokens); AMX tiles are what make CPU bf16 matmuls fast.
            cpu_bf16=bool(torch.cpu._is_amx_tile_supported()),
        )


def select_attn_implementation(requested: str, hw: Hardware) -> str:
    """`auto` -> flash_attention_2 with CUDA and flash-attn installed, sdpa on other GPUs, and on CPU sdpa run once
    per packed sequence (`sdpa_blocks`, align/attention.py); a GPU-only choice on CPU fails."""
    if requested == "auto":
        if hw.cuda:
            return "flash_attention_2" if hw.flash_attn else "sdpa"
        return attention.NAME
    if requested == "flash_attention_2" and not (hw.cuda and hw.flash_attn):
        missing = "a CUDA GPU" if not hw.cuda else "the flash-attn package (pip install -e '.[gpu]')"
        raise UserError(f"model.attn_implementation = flash_attention_2 needs {missing}", "set it to auto or sdpa")
    return requested


def select_precision(requested: str, hw: Hardware) -> torch.dtype:
    """The autocast dtype: bf16 where the hardware does bf16 matmuls natively, fp32 otherwise; a recipe can force it."""
    if requested == "fp32":
        return torch.float32
    supported = hw.cuda_bf16 if hw.cuda else hw.cpu_bf16
    if requested == "bf16":
        if hw.cuda and not hw.cuda_bf16:
            raise UserError("model.precision = bf16 but this GPU has no bf16 support", "set model.precision: fp32")
        return torch.bfloat16
    return torch.bfloat16 if supported else torch.float32


def check_requirements(cfg: ModelConfig, hw: Hardware) -> None:
    """Fail fast, before loading anything, when a recipe needs hardware this machine lacks."""
    if cfg.requires == "cuda" and not hw.cuda:
        raise UserError(
            f"this recipe needs a CUDA GPU (model {cfg.name})", "run it on a GPU machine, or use recipes/smollm2-135m/"
        )
    if cfg.quantization == "4bit":
        if not hw.cuda:
            raise UserError("model.quantization = 4bit (QLoRA) needs a CUDA GPU", "set model.quantization: none")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise UserError("model.quantization = 4bit needs bitsandbytes", "pip install -e '.[gpu]'")
    select_attn_implementation(cfg.attn_implementation, hw)


def require_local(path: str, allow_network: bool) -> None:
    """Offline, a model must be a local directory, and so must the base an adapter directory names (its
    adapter_config.json's base_model_name_or_path): transformers and PEFT would look a hub id up on the hub."""
    if allow_network:
        return
    local = Path(path).expanduser()
    if not local.is_dir():
        raise UserError(
            f"model {path!r} is not a local directory, and the network is off (model.allow_network: false)",
            "pass a local model directory (for an adapter's base: fix base_model_name_or_path in its "
            "adapter_config.json), or set model.allow_network: true to download it",
        )
    adapter = local / "adapter_config.json"
    if not adapter.is_file() or (local / "config.json").is_file():
        return
    import json

    try:
        base = str(json.loads(adapter.read_text(encoding="utf-8"))["base_model_name_or_path"])
    except (ValueError, KeyError, TypeError):
        return  # not readable as an adapter config: from_pretrained says what is wrong
    if not Path(base).expanduser().is_dir():
        raise UserError(
            f"the adapter's base_model_name_or_path {base!r} is not a local directory, and the network is off "
            "(model.allow_network: false)",
            "point it at a local copy of the base model, or set model.allow_network: true to download it",
            str(adapter),
        )


def resolve_model_path(name: str, allow_network: bool = False) -> str:
    """An embedded short name -> its cached directory; a local directory as is; anything else is a hub id."""
    if name in EMBEDDED:
        return str(prepare_embedded(name))
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if not allow_network:
        raise UserError(
            f"model {name!r} is neither an embedded model ({', '.join(EMBEDDED)}) nor a local directory",
            "pass a local path, or set model.allow_network: true to download it from the hub",
        )
    return name


def load_tokenizer(path: str, trust_remote_code: bool = False):
    """The tokenizer of a local model directory or cached hub id; it must have a chat template (pad = eos if unset)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load the tokenizer at {path} ({first})", "give a local model directory") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not getattr(tok, "chat_template", None):
        raise UserError(f"the tokenizer at {path} has no chat template", "use an instruct/chat model")
    return tok


def load_model(cfg: ModelConfig, path: str | None = None, hw: Hardware | None = None):
    """Load the causal LM (fp32 weights; autocast handles bf16 compute) and its tokenizer."""
    from transformers import AutoModelForCausalLM

    hw = hw or Hardware.detect()
    check_requirements(cfg, hw)
    apply_network_policy(cfg.allow_network)
    path = path or resolve_model_path(cfg.name, cfg.allow_network)
    require_local(path, cfg.allow_network)
    attn = select_attn_implementation(cfg.attn_implementation, hw)
    log.info("attention implementation: %s", attn)
    kwargs: dict = {"attn_implementation": attn, "trust_remote_code": cfg.trust_remote_code, "use_safetensors": True}
    if cfg.quantization == "4bit":
        kwargs.update(quantization_config=qlora_config(), dtype=torch.bfloat16)
    else:
        kwargs["dtype"] = torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as err:
        raise UserError(f"could not load model from {path}: {str(err).splitlines()[0]}", "check model.name") from None
    return model, load_tokenizer(path, cfg.trust_remote_code)


def qlora_config():
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def peft_config(cfg: LoraConfig):
    """The PEFT LoRA config for a recipe's `lora` section, or None when LoRA is off."""
    if not cfg.enabled:
        return None
    from peft import LoraConfig as PeftLoraConfig

    return PeftLoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        task_type="CAUSAL_LM",
    )


def merge_adapter(model, adapter_dir: Path | str):
    """Fold a LoRA adapter into the model's weights; returns the plain model."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()


def read_adapter_base(adapter_dir: Path | str) -> str:
    """The base model a PEFT adapter was trained on (its adapter_config.json)."""
    import json

    return json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["base_model_name_or_path"]
