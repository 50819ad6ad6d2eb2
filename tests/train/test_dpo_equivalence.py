"""align's padding-free DPO with cached reference equals TRL's own padded DPOTrainer on the same batch (fp32, CPU), with
each pair's prompt computed once (the default) and without; also when max_length cuts answers short."""

import math

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM
from trl import DPOConfig, DPOTrainer

from align.train.dpo import pair_dataset
from align.train.dpo_trainer import AlignDPOTrainer
from tests.conftest import toy_rows


def _model(path):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")


def _args(tmp_path, name, precompute, max_length=512):
    return DPOConfig(
        output_dir=str(tmp_path / name),
        per_device_train_batch_size=8,
        max_length=max_length,
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        precompute_ref_log_probs=precompute,
        report_to="none",
        beta=0.1,
        remove_unused_columns=False,
        disable_dropout=True,
    )


def _trainers(tmp_path, tiny_model_dir, tokenizer, share_prompt=True, max_length=512):
    rows = toy_rows(8, "pref")
    raw = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
    trl = DPOTrainer(
        model=_model(tiny_model_dir),
        ref_model=_model(tiny_model_dir),
        args=_args(tmp_path, "trl", False, max_length),
        train_dataset=raw,
        processing_class=tokenizer,
    )
    ours = AlignDPOTrainer(
        model=_model(tiny_model_dir),
        args=_args(tmp_path, "ours", True, max_length),
        train_dataset=pair_dataset(tokenizer, rows, max_length),
        processing_class=tokenizer,
        pack_length=256,
        share_prompt=share_prompt,
        ref_cache_dir=tmp_path / "cache",
    )
    assert ours.share_prompt == share_prompt
    trl.model.train()  # metrics are logged under "train" (dropout is disabled by both trainers)
    ours.model.train()
    return trl, ours


def _per_pair_logps(trainer, batch):
    """Per-pair (chosen, rejected) log-probs through the trainer's own forward path."""
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    fwd = trainer._forward(trainer.model) if isinstance(trainer, AlignDPOTrainer) else trainer.model
    out = fwd(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        labels=labels,
        use_cache=False,
        fused_lm_head=True,
    )
    return out.log_probs.sum(1).chunk(2)


def test_rendering_equals_trl_tokenization(tmp_path, tiny_model_dir, tokenizer):
    trl, ours = _trainers(tmp_path, tiny_model_dir, tokenizer)
    for k in ("prompt_ids", "chosen_ids", "rejected_ids"):
        assert trl.train_dataset[k] == ours.train_dataset[k]


# max_length 60: the toy pairs are 56-69 tokens, so several answers lose their end to truncation
CASES = pytest.mark.parametrize(
    "share_prompt, max_length", [(True, 512), (False, 512), (True, 60)], ids=["shared", "unshared", "shared-cut"]
)


@CASES
def test_packed_dpo_equals_trl_dpo_on_the_same_batch(tmp_path, tiny_model_dir, tokenizer, share_prompt, max_length):
    trl, ours = _trainers(tmp_path, tiny_model_dir, tokenizer, share_prompt, max_length)
    examples = [ours.train_dataset[i] for i in range(8)]
    batch_ours = ours.data_collator(examples)
    batch_trl = trl.data_collator([{k: e[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")} for e in examples])
    assert torch.equal(batch_ours["input_ids"], batch_trl["input_ids"])
    loss_trl = trl.compute_loss(trl.model, batch_trl)
    loss_ours = ours.compute_loss(ours.model, batch_ours)
    assert torch.allclose(loss_ours, loss_trl, atol=1e-5), (loss_ours, loss_trl)
    m_trl, m_ours = trl._metrics["train"], ours._metrics["train"]
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"):
        # atol 1e-5 plus rtol 1e-6: log-prob sums near -170 sit at fp32's resolution (one ulp there is 1.5e-5)
        assert math.isclose(m_ours[key][-1], m_trl[key][-1], rel_tol=1e-6, abs_tol=1e-5), key
    with torch.no_grad():
        c_trl, r_trl = _per_pair_logps(trl, batch_trl)
        c_ours, r_ours = _per_pair_logps(ours, batch_ours)
    assert torch.allclose(c_ours, c_trl, atol=1e-5) and torch.allclose(r_ours, r_trl, atol=1e-5)
    # cached reference log-probs (packed pass) equal TRL's reference forward (padded, separate ref model)
    assert torch.allclose(batch_ours["ref_chosen_logps"], c_trl, atol=1e-5)
    assert torch.allclose(batch_ours["ref_rejected_logps"], r_trl, atol=1e-5)
    padded_frac = 1 - batch_trl["attention_mask"].float().mean().item()
    assert ours.pack_stats.padding_fraction < padded_frac, (ours.pack_stats.padding_fraction, padded_frac)


@CASES
def test_gradients_match_trl(tmp_path, tiny_model_dir, tokenizer, share_prompt, max_length):
    trl, ours = _trainers(tmp_path, tiny_model_dir, tokenizer, share_prompt, max_length)
    examples = [ours.train_dataset[i] for i in range(8)]
    trl.compute_loss(
        trl.model,
        trl.data_collator([{k: e[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")} for e in examples]),
    ).backward()
    ours.compute_loss(ours.model, ours.data_collator(examples)).backward()
    g_trl = trl.model.model.layers[0].self_attn.q_proj.weight.grad
    g_ours = ours.model.model.layers[0].self_attn.q_proj.weight.grad
    assert g_trl.abs().sum() > 0
    assert torch.allclose(g_ours, g_trl, atol=1e-6, rtol=1e-4)


def test_reference_cache_skips_forward_passes_on_rerun(tmp_path, tiny_model_dir, tokenizer):
    rows = toy_rows(8, "pref")
    made = []
    for beta in (0.1, 0.5):  # a beta sweep: same data, same reference
        args = _args(tmp_path, f"b{beta}", True)
        args.beta = beta
        made.append(
            AlignDPOTrainer(
                model=_model(tiny_model_dir),
                args=args,
                train_dataset=pair_dataset(tokenizer, rows, 512),
                processing_class=tokenizer,
                pack_length=256,
                ref_cache_dir=tmp_path / "cache",
            )
        )
    first, second = made
    pairs = first.train_dataset
    once = sum(  # one pass over every pair, its prompt once (its last token copied for the rejected side)
        len(p) + 1 + len(c) + len(r)
        for p, c, r in zip(pairs["prompt_ids"], pairs["chosen_ids"], pairs["rejected_ids"], strict=True)
    )
    assert first.ref_forward_calls >= 1 and first.ref_cache_hits == 0
    assert first.ref_stats.real_tokens == once
    assert second.ref_forward_calls == 0 and second.ref_cache_hits == 1
    assert first.train_dataset["ref_chosen_logps"] == second.train_dataset["ref_chosen_logps"]


def test_reference_cache_is_not_reused_under_another_bin_layout(tmp_path, tiny_model_dir, tokenizer):
    """Other bins (or the prompt not shared) give other bf16 round-off: such a run computes its own reference."""
    rows = toy_rows(8, "pref")
    made = []
    for name, pack_length, share in (("a", 256, True), ("b", 128, True), ("c", 256, False), ("d", 256, True)):
        made.append(
            AlignDPOTrainer(
                model=_model(tiny_model_dir),
                args=_args(tmp_path, name, True),
                train_dataset=pair_dataset(tokenizer, rows, 512),
                processing_class=tokenizer,
                pack_length=pack_length,
                share_prompt=share,
                ref_cache_dir=tmp_path / "cache",
            )
        )
    assert [t.ref_cache_hits for t in made] == [0, 0, 0, 1]  # only the same layout again hits the cache
