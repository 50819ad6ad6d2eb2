"""The shared collation layer: rendering, best-fit-decreasing bins, packing (packed log-probs: tests/test_logps.py)."""

import torch

from align.data.collate import (
    pack,
    plan_bins,
    render_continuation,
    render_pair,
    render_prompt,
    render_sft,
    unpack_shifted,
)
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


def test_unpack_shifted_restores_row_layout():
    p = pack([[1, 2, 3], [4, 5]], [[1, 2, 3], [4, 5]], capacity=8, pad_id=0)
    per_token = torch.tensor([[10.0, 11.0, 12.0, 13.0]])  # next-token values at packed positions 0..3
    assert unpack_shifted(per_token, p, 3).tolist() == [[10.0, 11.0, 0.0], [13.0, 0.0, 0.0]]


def test_sft_and_dpo_render_the_chosen_side_identically(tokenizer):
    row = toy_rows(3, "pref")[2]
    sft = render_sft(tokenizer, {"prompt": row["prompt"], "completion": row["chosen"]}, 512)
    pair = render_pair(tokenizer, row, 512)
    assert sft["input_ids"] == pair["prompt_ids"] + pair["chosen_ids"]
    assert sft["completion_mask"] == [0] * len(pair["prompt_ids"]) + [1] * len(pair["chosen_ids"])


def test_continuation_follows_the_generation_header_without_an_end_of_turn(tokenizer):
    prompt = toy_rows(1, "sft")[0]["prompt"]
    prompt_ids, cont = render_continuation(tokenizer, prompt, "ESI level: 3")
    assert prompt_ids == render_prompt(tokenizer, prompt)
    assert tokenizer.decode(cont) == "ESI level: 3"
    # the tokens a full assistant turn starts with (then its end of turn), so a continuation scores what SFT taught
    reply = [{"role": "assistant", "content": "ESI level: 3\nRationale: chest pain."}]
    full = render_sft(tokenizer, {"prompt": prompt, "completion": reply}, 512)["input_ids"]
    assert full[len(prompt_ids) : len(prompt_ids) + len(cont)] == cont
