"""Prefix-shared packing: a pair's prompt (or a question's candidates' prompt) is computed once. The layout by hand;
log-probs, per-token outputs and gradients equal the unshared packed path and a plain padded forward (fp32, 1e-5),
including answers cut by max_length; models whose attention takes no explicit mask fall back, and say why."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from align.data.collate import Group, pack_shared, unpack_shifted
from align.logps import answer_logps, prompt_groups, shares_prefix
from align.train.packed import PackedCausalLM, pair_group


def test_layout_by_hand():
    """prefix [5, 6, 7], members [8, 9] and [4]: the trunk [5, 6], then 7 again before each member's rest."""
    packed = pack_shared([Group([5, 6, 7], [[8, 9], [4]], [[8, 9], [4]])], capacity=16, pad_id=0)
    assert packed.input_ids.tolist() == [[5, 6, 7, 8, 9, 7, 4]]
    assert packed.position_ids.tolist() == [[0, 1, 2, 3, 4, 2, 3]]
    assert packed.branches.tolist() == [[0, 0, 1, 1, 1, 2, 2]]
    assert packed.labels.tolist() == [[-100, -100, -100, 8, 9, -100, 4]]
    assert [(b, w.tolist()) for b, w in packed.index] == [(0, [0, 1, 2, 3, 4]), (0, [0, 1, 5, 6])]
    allowed = packed.attention_mask()[0, 0].int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 1, 0, 0],
        [1, 1, 0, 0, 0, 1, 0],  # member 2's copy of 7 sees the trunk and itself: not member 1's 7, 8, 9
        [1, 1, 0, 0, 0, 1, 1],
    ]
    # member 2's next-token values: predicting 6 (at 0), 7 (at 1), 4 (at its copy of 7, position 5)
    per_token = torch.arange(6.0)[None]
    assert unpack_shifted(per_token, packed, 4)[1].tolist() == [0.0, 1.0, 5.0, 0.0]


def test_two_groups_in_a_bin_never_see_each_other_and_filler_sees_itself():
    groups = [Group([1, 2], [[3]], [[3]]), Group([4, 5, 6], [[7], [8]], [[7], [8]]), Group([9, 9, 9, 9], [[1]], [[1]])]
    packed = pack_shared(groups, capacity=8, pad_id=0)
    assert [g.packed_length for g in groups] == [3, 6, 5]
    # best-fit decreasing: the 6 alone (2 filler tokens), the 5 and the 3 together
    assert packed.groups.tolist() == [[1, 1, 1, 1, 1, 1, -1, -1], [2, 2, 2, 2, 2, 0, 0, 0]]
    mask = packed.attention_mask()[:, 0]
    for b in range(mask.shape[0]):
        g = packed.groups[b]
        for q in range(mask.shape[1]):
            for k in range(mask.shape[1]):
                if mask[b, q, k] and q != k:
                    assert g[q] == g[k] >= 0 and k < q
        assert all(mask[b, q, q] for q in range(mask.shape[1]))  # no row of the mask is empty (no NaN in SDPA)


def test_prompt_groups_keeps_input_order_and_leaves_short_prompts_alone():
    seqs = [([1, 2, 3], [4]), ([9], [5]), ([1, 2, 3], [6, 7]), ([9], [8])]
    groups, order = prompt_groups(seqs)
    assert [(g.prefix, g.rests) for g in groups] == [([1, 2, 3], [[4], [6, 7]]), ([9], [[5]]), ([9], [[8]])]
    assert order == [0, 2, 1, 3]


def test_pair_group_shares_only_the_unlabelled_common_start():
    # a label on a common token (both answers start with 7) ends the shared prefix there
    g = pair_group([1, 2, 7, 8], [-100, -100, 7, 8], [1, 2, 7, 9, 9], [-100, -100, 7, 9, 9])
    assert (g.prefix, g.rests, g.rest_labels) == ([1, 2], [[7, 8], [7, 9, 9]], [[7, 8], [7, 9, 9]])


@pytest.fixture
def tiny(tiny_model_dir):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")


def _plain_logps(model, sequences) -> list[float]:
    """Each (prompt, answer) alone through a plain forward: the definition."""
    out = []
    with torch.no_grad():
        for prompt, answer in sequences:
            ids = torch.tensor([prompt + answer])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].double(), -1)
            out.append(sum(float(logp[len(prompt) + i - 1, t]) for i, t in enumerate(answer)))
    return out


def _sequences():
    g = torch.Generator().manual_seed(1)

    def ids(n: int) -> list[int]:
        return torch.randint(10, 2000, (n,), generator=g).tolist()

    p1, p2, p3 = ids(40), ids(23), ids(31)
    # pairs and a 3-way candidate set sharing prompts, answers of varied length (one empty: cut by max_length),
    # a prompt of one token, and an unshared sequence
    return [
        (p1, ids(7)),
        (p1, ids(3)),
        (p2, ids(1)),
        (p3, ids(2)),
        (p2, ids(12)),
        (p3, []),
        (p3, ids(2)),
        (p1[:1], ids(5)),
        (ids(17), ids(4)),
    ]


def test_answer_logps_shared_equals_unshared_and_a_plain_forward(tiny):
    seqs = _sequences()
    shared = answer_logps(tiny, seqs, pad_id=0, capacity=64)
    unshared = answer_logps(tiny, seqs, pad_id=0, capacity=64, share=False)
    plain = _plain_logps(tiny, seqs)
    assert shared == pytest.approx(plain, abs=1e-5)
    assert unshared == pytest.approx(plain, abs=1e-5)
    assert shared[5] == 0.0  # the empty answer


def test_shared_pass_computes_fewer_tokens(tiny):
    from align.logps import PackStats

    seqs = _sequences()
    shared, unshared = PackStats(), PackStats()
    answer_logps(tiny, seqs, pad_id=0, capacity=64, stats=shared)
    answer_logps(tiny, seqs, pad_id=0, capacity=64, stats=unshared, share=False)
    every = sum(len(p) + len(a) for p, a in seqs)
    assert unshared.real_tokens == every
    # a prompt of P tokens shared by m answers saves (m - 1) * (P - 1) tokens (its last token is copied per answer):
    # p1 (40) and p2 (23) by 2, p3 (31) by 3
    assert shared.real_tokens == every - 39 - 22 - 2 * 30


def _padded_batch(pairs):
    """TRL's layout: B chosen rows then B rejected rows, right-padded; labels -100 on prompt and padding."""
    rows = [(p, c) for p, c, _ in pairs] + [(p, r) for p, _, r in pairs]
    width = max(len(p) + len(a) for p, a in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, (p, a) in enumerate(rows):
        n = len(p) + len(a)
        ids[i, :n] = torch.tensor(p + a)
        mask[i, :n] = 1
        if a:
            labels[i, len(p) : n] = torch.tensor(a)
    return ids, mask, labels


def _grads(model) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def test_policy_forward_and_gradients_equal_unshared_and_plain(tiny):
    from trl.trainer.utils import add_fused_lm_head

    add_fused_lm_head(tiny)
    seqs = _sequences()
    pairs = [
        (seqs[0][0], seqs[0][1], seqs[1][1]),
        (seqs[3][0], seqs[3][1], seqs[5][1]),
        (seqs[2][0], seqs[2][1], seqs[4][1]),
    ]
    ids, mask, labels = _padded_batch(pairs)
    results = {}
    for name, fwd in (
        ("shared", PackedCausalLM(tiny, 64, 0, share_prompt=True)),
        ("unshared", PackedCausalLM(tiny, 64, 0, share_prompt=False)),
        ("plain", tiny),
    ):
        kwargs = {"attention_mask": mask, "labels": labels, "use_cache": False, "fused_lm_head": True}
        out = fwd(input_ids=ids, **kwargs)
        logps = out.log_probs[:, -ids.shape[1] + 1 :]
        (logps.sum(1) * torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0, 2.0])).sum().backward()  # any mix of rows
        results[name] = (logps.detach(), _grads(tiny))
    assert fwd is tiny and results["plain"][0].abs().sum() > 0
    for name in ("shared", "unshared"):
        got, grads = results[name]
        assert torch.allclose(got, results["plain"][0], atol=1e-5), name
        want = results["plain"][1]
        assert grads.keys() == want.keys() and all(torch.allclose(grads[k], want[k], atol=1e-5) for k in want), name


def test_models_without_an_explicit_mask_fall_back(tiny):
    assert shares_prefix(tiny) is None
    tiny.config._attn_implementation = "flash_attention_2"
    assert shares_prefix(tiny) == "attention implementation flash_attention_2 takes no explicit mask"
    tiny.config._attn_implementation = "sdpa"
    tiny.config.sliding_window = 4096
    assert shares_prefix(tiny) == "sliding-window attention"
    assert not PackedCausalLM(tiny, 64, 0, share_prompt=True).share_prompt
