"""SFT stage: load model, render data through the shared collation layer, train with TRL's SFTTrainer, save.

With `lora.domain_adapter` the task LoRA trains on top of a domain adapter (align/train/adapters.py): final/ is the
task adapter alone, merged/ is base + domain + task.
"""

from __future__ import annotations

import logging
import time

from datasets import Dataset
from trl import SFTTrainer

from align.config import SFTRecipe
from align.data.collate import render_sft
from align.data.load import check_phi, load_stage_data
from align.logps import compact_scoring
from align.models import Hardware, load_model, select_precision
from align.runinfo import data_fingerprint, save_run_info
from align.stage import RunResult, last_checkpoint, save_final, save_merged, save_split, write_marker
from align.tasks import check_rows, declared
from align.train.adapters import attach_task_adapter, merged_copy, resolve_domain, saved_adapters, stacking_callbacks
from align.train.common import NonFiniteGuard, check_before_training, save_metrics, tensorboard_logs, trainer_args

log = logging.getLogger("align")
SFT_CURVES = ("loss", "mean_token_accuracy", "learning_rate", "eval_loss")


def sft_dataset(tokenizer, rows: list[dict], max_length: int) -> Dataset:
    return Dataset.from_list([render_sft(tokenizer, r, max_length) for r in rows])


def run_sft(recipe: SFTRecipe, allow_phi: bool = False, callbacks: tuple = ()) -> RunResult:
    started = time.time()
    out_dir = recipe.output_dir
    domain = resolve_domain(recipe.lora)
    train_rows, eval_rows = load_stage_data(recipe.data, "sft", recipe.seed, recipe.model.allow_network)
    check_rows(train_rows + eval_rows, declared(recipe.tasks))  # every gold answer the report will need is there
    check_phi(recipe.data, train_rows + eval_rows, allow_phi)
    hw = Hardware.detect()
    precision = select_precision(recipe.model.precision, hw)
    model, tokenizer = load_model(recipe.model, hw=hw)
    model, task_lora = attach_task_adapter(model, recipe.lora, domain, recipe.seed)
    train_ds = sft_dataset(tokenizer, train_rows, recipe.data.max_length)
    eval_ds = sft_dataset(tokenizer, eval_rows, recipe.data.max_length) if eval_rows else None
    check_before_training(recipe, model, train_ds)  # answers left after truncation; memory
    log.info("SFT: %d train rows, %d eval rows, precision %s", len(train_rows), len(eval_rows), precision)
    out_dir.mkdir(parents=True, exist_ok=True)
    domain_info = {"domain_adapter": domain.record()} if domain else {}
    save_run_info(
        out_dir, recipe, {"train": data_fingerprint(train_rows), "eval": data_fingerprint(eval_rows)}, domain_info
    )
    save_split(out_dir, train_rows, eval_rows)
    guard = NonFiniteGuard()
    with tensorboard_logs(out_dir):
        trainer = SFTTrainer(
            model=model,
            args=trainer_args(recipe, precision, hw.cuda),
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            processing_class=tokenizer,
            peft_config=task_lora,
            callbacks=[guard, *stacking_callbacks(model), *callbacks],
        )
    with compact_scoring():
        trainer.train(resume_from_checkpoint=last_checkpoint(out_dir))
    guard.fail_if_tripped(out_dir)
    final = save_final(trainer.model, tokenizer, out_dir, saved_adapters(trainer.model))
    if recipe.lora.enabled:
        save_merged(merged_copy(trainer.model), tokenizer, out_dir)
        write_marker(out_dir, domain.record() if domain else None)
    metrics = save_metrics(
        out_dir,
        trainer,
        SFT_CURVES,
        started,
        {"train_rows": len(train_rows), "eval_rows": len(eval_rows), "precision": str(precision), **domain_info},
    )
    return RunResult(out_dir, final, metrics)
