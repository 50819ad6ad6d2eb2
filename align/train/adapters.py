"""Two-step PEFT in one place: a task LoRA trained on top of a domain LoRA (`lora.domain_adapter`).

`merged`: the domain adapter is folded into the base weights, then the task LoRA is added as usual.
`frozen`: the domain adapter stays a separate PEFT adapter named "domain", active in every forward but never trained;
the task adapter keeps PEFT's name "default" so `final/` loads like any single adapter. PEFT's `set_adapter([...])`
marks every active adapter trainable, so the domain parameters are frozen explicitly afterwards. Resuming a checkpoint,
transformers loads the first active adapter as the trainable one and then activates only it: the task adapter is
listed first (so the optimizer gets exactly its parameters) and both are re-activated when training starts.

Either way `final/` holds the task adapter alone, the marker beside it (align/stage.py) names the domain adapter, and
`merged/` is base + domain + task folded together.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

from transformers import TrainerCallback, set_seed

from align.config import LoraConfig
from align.errors import UserError
from align.models import merge_adapter, peft_config, read_adapter_base

log = logging.getLogger("align")
DOMAIN = "domain"  # the frozen domain LoRA's adapter name
TASK = "default"  # the trained task LoRA's adapter name
ACTIVE = [TASK, DOMAIN]  # task first: transformers' resume makes active_adapters[0] the trainable one


@dataclass(frozen=True)
class DomainAdapter:
    path: Path  # a LoRA adapter directory (a finished domain run's final/)
    mode: str  # "frozen" or "merged"

    def record(self) -> dict:
        return {"path": str(self.path), "mode": self.mode}


def resolve_domain(lora: LoraConfig) -> DomainAdapter | None:
    """The recipe's domain adapter, checked before any model loads: a domain stage dir (its final/) or an adapter."""
    if not lora.domain_adapter:
        return None
    given = Path(lora.domain_adapter)
    for candidate in (given / "final", given):
        if (candidate / "adapter_config.json").is_file():
            if lora.domain_mode == "frozen" and not lora.enabled:
                raise UserError(
                    "lora.domain_mode = frozen needs a task LoRA (lora.enabled: true)",
                    "set lora.domain_mode: merged to fully fine-tune on top of the domain adapter",
                )
            return DomainAdapter(candidate.resolve(), lora.domain_mode)
    raise UserError(
        f"lora.domain_adapter = {lora.domain_adapter}: no LoRA adapter there (no adapter_config.json)",
        "run `align domain recipes/smollm2-135m/domain.yaml` first, or point it at an adapter directory",
    )


def attach_task_adapter(model, lora: LoraConfig, domain: DomainAdapter | None, seed: int):
    """(model, peft_config) for the trainer: the base model plus the domain adapter as the recipe asks."""
    if domain is None:
        return model, peft_config(lora)
    log.info("domain adapter %s (%s)", domain.path, domain.mode)
    warn_if_other_base(model, domain.path)
    if domain.mode == "merged":
        return merge_adapter(model, domain.path), peft_config(lora)
    return stack_frozen(model, domain.path, peft_config(lora), seed), None


def warn_if_other_base(model, adapter_dir: Path) -> None:
    """A domain adapter trained on another base model would load (same shapes) and quietly mean nothing."""
    trained_on, base = read_adapter_base(adapter_dir), getattr(model, "name_or_path", "")
    if Path(trained_on).resolve() != Path(base).resolve():
        log.warning("the domain adapter %s was trained on %s, but this model is %s", adapter_dir, trained_on, base)


def stack_frozen(model, domain_dir: Path, task_config, seed: int):
    """PeftModel with the domain adapter (frozen, no dropout) and a fresh task adapter, both active."""
    from peft import PeftConfig, PeftModel

    domain_config = PeftConfig.from_pretrained(str(domain_dir))
    domain_config.lora_dropout = 0.0  # part of the model now, not a layer being trained
    model = PeftModel.from_pretrained(model, str(domain_dir), adapter_name=DOMAIN, config=domain_config)
    set_seed(seed)  # the task LoRA's random init, seeded as TRL seeds it when it creates the adapter itself
    model.add_adapter(TASK, task_config)
    activate_both(model)
    return model


def activate_both(model) -> None:
    """Make domain and task adapters active, then re-freeze the domain adapter; only the task adapter trains."""
    model.base_model.set_adapter(ACTIVE)  # marks both trainable
    for name, param in model.named_parameters():
        if f".{DOMAIN}." in name:
            param.requires_grad_(False)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(f".{TASK}." in n for n in trainable), trainable[:4]
    assert model.active_adapters == ACTIVE, model.active_adapters


def is_stacked(model) -> bool:
    return DOMAIN in getattr(model, "peft_config", {})


class KeepBothActive(TrainerCallback):
    """Re-activates both adapters when training starts: resuming a checkpoint leaves only the first one active."""

    def __init__(self, model) -> None:
        self.model = model

    def on_train_begin(self, args, state, control, **kwargs):
        activate_both(self.model)


def stacking_callbacks(model) -> list[TrainerCallback]:
    return [KeepBothActive(model)] if is_stacked(model) else []


def saved_adapters(model) -> list[str] | None:
    """What final/ saves: the task adapter alone when stacked, else everything the model has."""
    return [TASK] if is_stacked(model) else None


def merged_copy(model):
    """Every adapter folded into a copy of the base weights: base + domain + task when stacked."""
    names = list(model.peft_config)
    return copy.deepcopy(model).merge_and_unload(adapter_names=names)
