"""The one log-prob path (align/logps.py): hand-computed sums, and packed fused-head log-probs equal to a plain
forward's, on a LLaMA and on a model whose LM head is not a bare linear layer (Gemma-2's final soft-capping)."""

from __future__ import annotations

import pytest
import torch
import trl.trainer.utils as trl_utils

from align.logps import PackStats, answer_logps, compact_scoring, sequence_logps
from align.train.perplexity import score_documents
from tests.conftest import plain_answer_logps

SEQUENCES = [([5, 6, 7], [8, 9]), ([10], [11, 12, 13, 14]), ([15, 16, 17, 18, 19], [20]), ([], [21, 22, 23])]


def test_sequence_logps_by_hand():
    token = torch.tensor([[-0.5, -0.25, 0.0, -2.0, -9.0]])
    seq_ids = torch.tensor([[0, 0, 0, 1, 1, -1]])
    assert sequence_logps(token, seq_ids, 2).tolist() == [-0.75, -2.0]


def tiny_gemma2(vocab: int):
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(0)
    cfg = Gemma2Config(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        final_logit_softcapping=0.5,  # tiny random logits are small: a small cap makes the transform matter
        attn_implementation="eager",
    )
    model = Gemma2ForCausalLM(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(40.0)  # logits well beyond the cap
    return model


@pytest.fixture(scope="module")
def tiny_llama(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def test_packed_fused_logps_equal_a_plain_forward_on_llama(tiny_llama):
    stats = PackStats()
    got = answer_logps(tiny_llama, SEQUENCES, pad_id=0, capacity=16, stats=stats)
    assert got == pytest.approx(plain_answer_logps(tiny_llama, SEQUENCES), abs=1e-4)
    assert stats.forward_calls >= 2 and stats.padding_fraction == 0.0  # several bins, none padded


def test_packed_fused_logps_follow_a_soft_capped_head():
    model = tiny_gemma2(64)
    sequences = [([1, 2, 3], [4, 5]), ([6, 7], [8, 9, 10]), ([11], [12])]
    expected = plain_answer_logps(model, sequences)
    assert answer_logps(model, sequences, pad_id=0, capacity=8) == pytest.approx(expected, abs=1e-4)
    # what a bare projection through the head (no soft-capping) would have said: far off, so the test can tell
    with torch.no_grad():
        prompt, answer = sequences[0]
        ids = torch.tensor([prompt + answer])
        hidden = model.model(input_ids=ids).last_hidden_state
        bare = torch.log_softmax(model.lm_head(hidden)[0, :-1], dim=-1).gather(-1, ids[0, 1:, None])[:, 0]
    assert abs(float(bare[len(prompt) - 1 :].sum()) - expected[0]) > 0.1


def test_packed_equals_unpacked_on_rendered_chat_rows(tiny_llama, tokenizer):
    from align.data.collate import render_sft
    from tests.conftest import toy_rows

    rendered = [render_sft(tokenizer, r, 256) for r in toy_rows(6, "sft")]
    sequences = [
        (r["input_ids"][: r["completion_mask"].index(1)], r["input_ids"][r["completion_mask"].index(1) :])
        for r in rendered
    ]
    stats = PackStats()
    packed = answer_logps(tiny_llama, sequences, tokenizer.pad_token_id, capacity=300, stats=stats)
    assert stats.forward_calls < len(sequences)  # really several sequences per forward
    alone = answer_logps(tiny_llama, sequences, tokenizer.pad_token_id, capacity=1)  # one sequence per forward
    assert packed == pytest.approx(alone, abs=1e-5)
    assert packed == pytest.approx(plain_answer_logps(tiny_llama, sequences), abs=1e-4)


def test_compact_scoring_is_scoped_and_changes_no_value(tiny_llama):
    original = trl_utils._use_triton
    cpu = torch.device("cpu")
    with compact_scoring():
        assert trl_utils._use_triton(cpu) is True
    assert trl_utils._use_triton is original and not original(cpu)
    compact = answer_logps(tiny_llama, SEQUENCES, pad_id=0)
    assert compact == pytest.approx(plain_answer_logps(tiny_llama, SEQUENCES), abs=1e-4)


def test_perplexity_windows_score_every_token_but_the_first(tiny_llama, tokenizer):
    texts = ["Chest pain for two hours, radiating to the left arm.", "BP 150/90. No allergies."]
    sums, counts = score_documents(tiny_llama, tokenizer, texts, max_length=8)
    ids = [tokenizer(text=t + tokenizer.eos_token)["input_ids"] for t in texts]
    spans = [i[k : k + 8] for i in ids for k in range(0, len(i), 8) if len(i[k : k + 8]) > 1]
    assert counts == [len(s) - 1 for s in spans]
    assert [-s for s in sums] == pytest.approx(plain_answer_logps(tiny_llama, [([], s) for s in spans]), abs=1e-4)
