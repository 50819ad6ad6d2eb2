"""Domain stage: a LoRA adapter trained with the causal-LM objective on clinical text, for SFT to build on.

Reads a text corpus (align/data/corpus.py; the bundled notes by default), trains with TRL's SFTTrainer on
`{"text": ...}` rows packed best-fit-decreasing into padding-free bins (long documents are split across bins, not
truncated), saves the adapter in final/, and writes the held-out perplexity of the base model and of base + adapter
into metrics.json. An SFT recipe uses the result with `lora.domain_adapter: outputs/<run>/domain`.
"""

from __future__ import annotations

import logging
import time

from datasets import Dataset
from trl import SFTTrainer

from align.config import DomainRecipe
from align.data.corpus import load_corpus, with_default_corpus
from align.data.load import check_phi
from align.errors import UserError
from align.logps import compact_scoring
from align.models import Hardware, load_model, peft_config, select_precision
from align.runinfo import data_fingerprint, save_run_info
from align.stage import RunResult, last_checkpoint, save_final
from align.train.common import NonFiniteGuard, save_metrics, tensorboard_logs, trainer_args
from align.train.perplexity import perplexity, score_documents

log = logging.getLogger("align")
CURVES = ("loss", "mean_token_accuracy", "learning_rate")


def check_domain_recipe(recipe: DomainRecipe) -> None:
    if not recipe.lora.enabled:
        raise UserError("the domain stage trains a LoRA adapter", "set lora.enabled: true in the domain recipe")
    if recipe.lora.domain_adapter:
        raise UserError(
            "lora.domain_adapter is set in a domain recipe",
            "remove it; it belongs in the SFT recipe that uses this run",
        )


def held_out_perplexity(model, tokenizer, texts: list[str], max_length: int) -> dict:
    """Perplexity of the base model (adapter disabled) and of base + domain adapter on the held-out documents."""
    with model.disable_adapter():
        base_sums, counts = score_documents(model, tokenizer, texts, max_length, "perplexity, base")
    domain_sums, _ = score_documents(model, tokenizer, texts, max_length, "perplexity, base + domain")
    return {
        "base": perplexity(base_sums, counts),
        "domain": perplexity(domain_sums, counts),
        "n_docs": len(texts),
        "tokens": sum(counts),
    }


def run_domain(recipe: DomainRecipe, allow_phi: bool = False, callbacks: tuple = ()) -> RunResult:
    started = time.time()
    check_domain_recipe(recipe)
    recipe.data = with_default_corpus(recipe.data)
    out_dir = recipe.output_dir
    train_docs, eval_docs = load_corpus(recipe.data, recipe.seed)
    check_phi(recipe.data, train_docs + eval_docs, allow_phi)
    hw = Hardware.detect()
    precision = select_precision(recipe.model.precision, hw)
    model, tokenizer = load_model(recipe.model, hw=hw)
    log.info("domain: %d train documents, %d held out, precision %s", len(train_docs), len(eval_docs), precision)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_run_info(out_dir, recipe, {"train": data_fingerprint(train_docs), "eval": data_fingerprint(eval_docs)})
    guard = NonFiniteGuard()
    with tensorboard_logs(out_dir):
        trainer = SFTTrainer(
            model=model,
            args=trainer_args(recipe, precision, hw.cuda),
            train_dataset=Dataset.from_list([{"text": d["text"]} for d in train_docs]),
            processing_class=tokenizer,
            peft_config=peft_config(recipe.lora),
            callbacks=[guard, *callbacks],
        )
    with compact_scoring():
        trainer.train(resume_from_checkpoint=last_checkpoint(out_dir))
    guard.fail_if_tripped(out_dir)
    final = save_final(trainer.model, tokenizer, out_dir)
    texts = [d["text"] for d in eval_docs]
    ppl = held_out_perplexity(trainer.model, tokenizer, texts, trainer.args.max_length)
    log.info("held-out perplexity: base %.3f -> domain %.3f (%d tokens)", ppl["base"], ppl["domain"], ppl["tokens"])
    extra = {"train_docs": len(train_docs), "eval_docs": len(eval_docs), "precision": str(precision), "perplexity": ppl}
    metrics = save_metrics(out_dir, trainer, CURVES, started, extra)
    return RunResult(out_dir, final, metrics)
