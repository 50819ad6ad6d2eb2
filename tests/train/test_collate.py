"""The shared collation layer: rendering, best-fit-decreasing bins, packed log-probs equal unpacked ones."""

import math

import torch
from transformers import AutoModelForCausalLM

from align.data.collate import pack, plan_bins, render_pair, render_sft, sequence_logps, unpack_shifted
from tests.conftest import toy_rows


def test_plan_bins_best_fit_decreasing_by_hand():
    # sorted: 6(i0) 5(i2) 4(i1) 3(i4) 2(i3); capacity 10
    # 6 -> bin0 (room 4); 5 -> bin1 (room 5); 4 -> best fit bin0 (room 0); 3 -> bin1 (room 2); 2 -> bin1 (room 0)
    assert plan_bins([6, 4, 5, 2, 3], 10) == [[0, 1], [2, 4, 3]]


def test_plan_bins_never_overfills_and_keeps_every_item():
    lengths = [37, 120, 5, 99, 64, 64, 200, 1, 18]
    bins = plan_bins(lengths, 200)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 200 for b in bins)


def test_pack_restarts_positions_and_masks_sequence_starts():
    p = pack([[5, 6, 7], [8, 9]], [[-100, 6, 7], [8, 9]], capacity=8, pad_id=0)
    assert p.input_ids.tolist() == [[5, 6, 7, 8, 9]]
    assert p.position_ids.tolist() == [[0, 1, 2, 0, 1]]
    assert p.labels.tolist() == [[-100, 6, 7, -100, 9]]  # 8 starts a sequence: never predicted from 7
    assert p.seq_ids.tolist() == [[0, 0, 0, 1, 1]]


def test_pack_fills_short_bins_with_a_filler_segment():
    p = pack([[1, 2, 3], [4, 5]], [[1, 2, 3], [4, 5]], capacity=3, pad_id=0)
    assert p.input_ids.tolist() == [[1, 2, 3], [4, 5, 0]]
    assert p.position_ids.tolist() == [[0, 1, 2], [0, 1, 0]]
    assert p.seq_ids.tolist() == [[0, 0, 0], [1, 1, -1]]
    assert (p.real_tokens, p.total_tokens) == (5, 6)


def test_sequence_logps_hand_computed():
    logits = torch.zeros(1, 5, 2)  # p = 0.5 everywhere
    labels = torch.tensor([[-100, 1, 0, -100, 1]])
    seq_ids = torch.tensor([[0, 0, 0, 1, 1]])
    out = sequence_logps(logits, labels, seq_ids, 2)
    assert torch.allclose(out, torch.tensor([2 * math.log(0.5), math.log(0.5)]))


def test_unpack_shifted_restores_row_layout():
    p = pack([[1, 2, 3], [4, 5]], [[1, 2, 3], [4, 5]], capacity=8, pad_id=0)
    per_token = torch.tensor([[10.0, 11.0, 12.0, 13.0]])  # next-token values at packed positions 0..3
    assert unpack_shifted(per_token, p, 3).tolist() == [[10.0, 11.0, 0.0], [13.0, 0.0, 0.0]]


def test_packed_logps_equal_unpacked(tiny_model_dir, tokenizer):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    seqs = [render_sft(tokenizer, r, 256) for r in toy_rows(6, "sft")]
    ids = [s["input_ids"] for s in seqs]
    labels = [[t if m else -100 for t, m in zip(s["input_ids"], s["completion_mask"], strict=False)] for s in seqs]
    expected = []
    with torch.no_grad():
        for i, lab in zip(ids, labels, strict=False):
            logits = model(input_ids=torch.tensor([i]), use_cache=False).logits
            expected.append(sequence_logps(logits, torch.tensor([lab]), torch.zeros(1, len(i), dtype=torch.long), 1))
        p = pack(ids, labels, capacity=300, pad_id=tokenizer.pad_token_id)
        assert p.input_ids.shape[0] < len(ids)  # really packed several sequences per row
        logits = model(input_ids=p.input_ids, position_ids=p.position_ids, use_cache=False).logits
        got = sequence_logps(logits, p.labels, p.seq_ids, len(ids))
    assert torch.allclose(got, torch.cat(expected), atol=1e-5), (got, torch.cat(expected))


def test_sft_and_dpo_render_the_chosen_side_identically(tokenizer):
    row = toy_rows(3, "pref")[2]
    sft = render_sft(tokenizer, {"prompt": row["prompt"], "completion": row["chosen"]}, 512)
    pair = render_pair(tokenizer, row, 512)
    assert sft["input_ids"] == pair["prompt_ids"] + pair["chosen_ids"]
    assert sft["completion_mask"] == [0] * len(pair["prompt_ids"]) + [1] * len(pair["chosen_ids"])


def test_labelled_logps_equal_full_logits(tiny_model_dir, tokenizer):
    from align.eval.generate import labelled_logps

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    seqs = [render_sft(tokenizer, r, 256) for r in toy_rows(5, "sft")]
    ids = [s["input_ids"] for s in seqs]
    labels = [[t if m else -100 for t, m in zip(s["input_ids"], s["completion_mask"], strict=True)] for s in seqs]
    p = pack(ids, labels, capacity=400, pad_id=tokenizer.pad_token_id)
    with torch.no_grad():
        logits = model(input_ids=p.input_ids, position_ids=p.position_ids, use_cache=False).logits
        full = sequence_logps(logits, p.labels, p.seq_ids, 5)
        fast = labelled_logps(model, p, 5)
    assert torch.allclose(fast, full, atol=1e-4)
