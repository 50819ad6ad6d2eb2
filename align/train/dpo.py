"""DPO stage: start from the SFT result (policy and reference), render pairs, train with AlignDPOTrainer, save."""

from __future__ import annotations

import logging
import time

from datasets import Dataset

from align.config import DPORecipe
from align.data.collate import render_pair
from align.data.load import check_phi, load_stage_data
from align.embedded import align_home
from align.errors import UserError
from align.models import Hardware, load_model, peft_config, select_precision
from align.runinfo import data_fingerprint, save_run_info
from align.stage import RunResult, last_checkpoint, require_complete, save_final, save_split, start_weights
from align.tasks import check_rows, declared
from align.train.common import NonFiniteGuard, check_before_training, save_metrics, tensorboard_logs, trainer_args
from align.train.dpo_trainer import AlignDPOTrainer

log = logging.getLogger("align")
DPO_CURVES = ("loss", "rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected", "logps/chosen")


def pair_dataset(tokenizer, rows: list[dict], max_length: int) -> Dataset:
    return Dataset.from_list([render_pair(tokenizer, r, max_length) for r in rows])


def build_trainer(recipe: DPORecipe, model, tokenizer, train_rows, eval_rows, hw: Hardware, callbacks=()):
    precision = select_precision(recipe.model.precision, hw)
    train_ds = pair_dataset(tokenizer, train_rows, recipe.data.max_length)
    check_before_training(recipe, model, train_ds)  # answers left after truncation; memory
    eval_ds = pair_dataset(tokenizer, eval_rows, recipe.data.max_length) if eval_rows else None
    args = trainer_args(recipe, precision, hw.cuda, max_length=recipe.data.max_length)
    cache = align_home() / "refcache" if recipe.dpo.ref_cache and args.precompute_ref_log_probs else None
    return AlignDPOTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config(recipe.lora),
        callbacks=list(callbacks),
        pack_length=recipe.dpo.pack_length,
        packing=args.padding_free,
        share_prompt=recipe.dpo.share_prompt,
        ref_cache_dir=cache,
    )


def run_dpo(recipe: DPORecipe, allow_phi: bool = False, callbacks: tuple = ()) -> RunResult:
    started = time.time()
    if recipe.lora.domain_adapter:
        raise UserError(
            "lora.domain_adapter is set in a DPO recipe; DPO starts from sft/merged, where it is already folded in",
            "remove it here and set it in the SFT recipe",
        )
    out_dir = recipe.output_dir
    sft_dir = require_complete(recipe.dpo.init_from, "SFT", "run `make sft` first (or set dpo.init_from)")
    start = start_weights(sft_dir)
    train_rows, eval_rows = load_stage_data(recipe.data, "preference", recipe.seed, recipe.model.allow_network)
    check_rows(train_rows + eval_rows, declared(recipe.tasks))
    check_phi(recipe.data, train_rows + eval_rows, allow_phi)
    hw = Hardware.detect()
    model, tokenizer = load_model(recipe.model, str(start.resolve()), hw)
    log.info("DPO from %s: %d train pairs, %d eval pairs", start, len(train_rows), len(eval_rows))
    out_dir.mkdir(parents=True, exist_ok=True)
    fps = {"train": data_fingerprint(train_rows), "eval": data_fingerprint(eval_rows)}
    save_run_info(out_dir, recipe, fps, {"reference_model": str(start)})
    save_split(out_dir, train_rows, eval_rows)
    guard = NonFiniteGuard()
    with tensorboard_logs(out_dir):
        trainer = build_trainer(recipe, model, tokenizer, train_rows, eval_rows, hw, [guard, *callbacks])
    trainer.train(resume_from_checkpoint=last_checkpoint(out_dir))
    guard.fail_if_tripped(out_dir)
    eval_metrics = trainer.evaluate() if eval_rows else {}
    final = save_final(trainer.model, tokenizer, out_dir)
    extra = {
        "train_pairs": len(train_rows),
        "eval_pairs": len(eval_rows),
        "reference_model": str(start),
        "padding_fraction": trainer.pack_stats.padding_fraction,
        "ref_forward_calls": trainer.ref_forward_calls,
        "ref_cache_hits": trainer.ref_cache_hits,
        "eval": eval_metrics,
    }
    metrics = save_metrics(out_dir, trainer, DPO_CURVES, started, extra)
    return RunResult(out_dir, final, metrics)
