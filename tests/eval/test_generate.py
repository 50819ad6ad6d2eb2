"""Batched generation on the tiny random LLaMA: left padding changes nothing; sampling is seeded, grouped by prompt."""

from __future__ import annotations

import pytest

from align.config import ModelConfig
from align.eval.generate import generate, left_pad, sample
from align.models import load_model


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(ModelConfig(name=str(tiny_model_dir), precision="fp32"), str(tiny_model_dir))


PROMPTS = [[{"role": "user", "content": "Chest pain" + " and nausea" * n}] for n in (0, 5, 1, 9, 3)]


def test_left_pad_ends_every_prompt_at_the_last_column() -> None:
    ids, mask = left_pad([[7, 8, 9], [5]], pad=0)
    assert ids.tolist() == [[7, 8, 9], [0, 0, 5]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_batched_greedy_equals_one_prompt_at_a_time(tiny) -> None:
    model, tok = tiny
    batched = generate(model, tok, PROMPTS, max_new_tokens=6, batch_size=4)
    alone = [generate(model, tok, [p], max_new_tokens=6, batch_size=1)[0] for p in PROMPTS]
    assert batched == alone


def test_sampling_is_seeded_and_grouped_by_prompt(tiny) -> None:
    model, tok = tiny
    first = sample(model, tok, PROMPTS, 6, k=3, temperature=1.0, top_p=1.0, seed=1, batch_size=6)
    assert [len(texts) for texts in first] == [3] * len(PROMPTS)
    assert sample(model, tok, PROMPTS, 6, k=3, temperature=1.0, top_p=1.0, seed=1, batch_size=6) == first
    assert sample(model, tok, PROMPTS, 6, k=3, temperature=1.0, top_p=1.0, seed=2, batch_size=6) != first
    # near-zero temperature is greedy: each prompt's k answers are its own greedy answer, in input order
    cold = sample(model, tok, PROMPTS, 6, k=2, temperature=1e-5, top_p=1.0, seed=0, batch_size=4)
    greedy = generate(model, tok, PROMPTS, max_new_tokens=6, batch_size=4)
    assert cold == [[g, g] for g in greedy]


# ---- stopping at the answer line (report.stop_at_answer) ----------------------------------------------------------


def _steps(criterion, tok, prompt_width: int, texts: list[str]) -> list[int | None]:
    """Feed each row's tokens one step at a time (rows padded to one length with a space token, as finished rows are
    with padding) and return the step at which each row was stopped (None: never)."""
    import torch

    rows = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(map(len, rows))
    space = tok(" ", add_special_tokens=False)["input_ids"][0]
    ids = torch.tensor([[1] * prompt_width + r + [space] * (width - len(r)) for r in rows])
    stopped: list[int | None] = [None] * len(rows)
    for step in range(1, width + 1):
        done = criterion(ids[:, : prompt_width + step], None)
        for row, flag in enumerate(done.tolist()):
            if flag and stopped[row] is None:
                stopped[row] = step
    return stopped


def test_first_line_done_stops_each_row_when_its_first_line_gives_the_answer(tokenizer) -> None:
    from align.eval.generate import FirstLineDone
    from align.tasks import registry

    triage = registry()["triage"]
    texts = [
        "ESI level: 3\nRationale: stable",
        "I think\nESI level: 2\n",
        "\n\nESI level: 4\nmore",
        "ESI level: 5 only",
    ]
    seen: list[tuple[int, str]] = []

    def done(i: int, line: str) -> bool:
        seen.append((i, line))
        return triage.first_line_answers(line, {})

    crit = FirstLineDone(tokenizer, width=3, rows=[10, 11, 12, 13], done=done)
    stopped = _steps(crit, tokenizer, 3, texts)
    first_lines = [
        len(tokenizer(t.lstrip("\n").split("\n")[0] + "\n", add_special_tokens=False)["input_ids"]) for t in texts
    ]
    assert stopped[0] is not None and stopped[0] <= first_lines[0] + 1  # at the token that ends "ESI level: 3"
    assert stopped[1] is None  # its first line ("I think") gives no answer: it runs on
    assert stopped[2] is not None  # leading blank lines do not count as a first line
    assert stopped[3] is None  # no line has ended
    # each row's first line is looked at once, with the prompt index it stands for
    assert sorted(seen) == [(10, "ESI level: 3"), (11, "I think"), (12, "ESI level: 4")]


def test_free_text_and_unparsed_lines_never_stop_early() -> None:
    from align.tasks import registry

    tasks = registry()
    assert tasks["triage"].first_line_answers("ESI level: 2", {})
    assert not tasks["triage"].first_line_answers("The patient is stable", {})
    assert tasks["provider_routing"].first_line_answers("Route to: nurse", {})
    assert not tasks["summarization"].first_line_answers("Summary: 54-year-old with chest pain.", {})


class NewlineAt:
    """A logits processor: no line break anywhere, except the 4th token of each batch's even rows."""

    def __init__(self, newlines: list[int], width: int) -> None:
        self.newlines, self.width = newlines, width

    def __call__(self, input_ids, scores):
        scores[:, self.newlines] = float("-inf")
        if input_ids.shape[1] - self.width == 3:
            scores[0::2] = float("-inf")
            scores[0::2, self.newlines[0]] = 0.0
        return scores


def test_generation_stopped_at_the_first_line_is_that_line_of_the_full_answer(tiny, monkeypatch) -> None:
    """Greedy answers of the tiny model (half of them made to break the line at their 4th token), with every finished
    first line accepted: an answer with a line break is its first line, one without is the full answer."""
    from transformers import LogitsProcessorList

    from align.eval.generate import _newline_tokens

    model, tok = tiny  # left alone, it writes nothing but line breaks
    newlines = [tok("\n", add_special_tokens=False)["input_ids"][0], *_newline_tokens(tok)]
    original = model.generate

    def with_newlines(**kwargs):
        width = kwargs["input_ids"].shape[1]
        return original(**kwargs, logits_processor=LogitsProcessorList([NewlineAt(newlines, width)]))

    monkeypatch.setattr(model, "generate", with_newlines)
    prompts = [[{"role": "user", "content": f"Case {i}: " + "pain " * i}] for i in range(8)]
    full = generate(model, tok, prompts, max_new_tokens=12, batch_size=4)
    stopped = generate(model, tok, prompts, max_new_tokens=12, batch_size=4, first_line_done=lambda i, line: True)
    broken = [i for i, t in enumerate(full) if "\n" in t]
    assert broken and len(broken) < len(full), full
    assert stopped == [t.split("\n", 1)[0].strip() if "\n" in t else t for t in full]
    assert generate(model, tok, prompts, 12, 4, first_line_done=lambda i, line: False) == full


def test_the_cache_key_says_whether_generation_stopped_at_the_answer_line() -> None:
    from align.report.cache import generation_key

    prompt = [{"role": "user", "content": "x"}]
    assert generation_key("m", prompt, 24, 16) != generation_key("m", prompt, 24, 16, to_answer_line=True)
    assert generation_key("m", prompt, 24, 16) == generation_key("m", prompt, 24, 16, False)


SHARED = [
    [{"role": "system", "content": "You triage emergency patients. " * 4}, {"role": "user", "content": text}]
    for text in ("Chest pain", "Chest pain and nausea for two days", "Ankle sprain", "Fever", "Cough and fever " * 3)
]


def test_shared_start_is_the_common_prefix_leaving_each_prompt_a_token() -> None:
    from align.eval.generate import shared_start

    assert shared_start([[1, 2, 3, 4], [1, 2, 3, 5, 6], [1, 2, 9]]) == 2
    assert shared_start([[1, 2, 3], [1, 2, 3]]) == 2  # identical prompts keep their last token to feed generate
    assert shared_start([[1, 2, 3]]) == 0 and shared_start([[4, 1], [5, 1]]) == 0


def test_shared_start_inputs_give_the_logits_of_the_whole_prompts(tiny) -> None:
    """[start | padding | rest] over the start's cache = the left-padded prompts run whole (fp32)."""
    import torch

    from align.data.collate import render_prompt
    from align.eval.generate import shared_start, shared_start_inputs, start_cache

    model, tok = tiny
    encoded = [render_prompt(tok, p) for p in SHARED]
    n = shared_start(encoded)
    assert n >= 16
    ids, mask = left_pad(encoded, tok.pad_token_id)
    with torch.no_grad():
        whole = model(input_ids=ids, attention_mask=mask).logits[:, -1]
        inputs = shared_start_inputs(encoded, n, start_cache(model, encoded[0][:n]), tok.pad_token_id)
        rest = inputs["input_ids"][:, n:]
        cut = model(
            input_ids=rest,
            attention_mask=inputs["attention_mask"],
            past_key_values=inputs["past_key_values"],
            position_ids=(inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0)[:, n:],
        ).logits[:, -1]
    torch.testing.assert_close(cut, whole, atol=1e-5, rtol=1e-5)


def test_greedy_answers_are_the_same_with_the_shared_start_computed_once(tiny, monkeypatch) -> None:
    import align.eval.generate as gen

    model, tok = tiny
    starts = []
    real = gen.start_cache
    monkeypatch.setattr(gen, "start_cache", lambda m, s: starts.append(len(s)) or real(m, s))
    shared = generate(model, tok, SHARED, max_new_tokens=8, batch_size=2)
    assert starts and starts[0] >= gen.MIN_SHARED_START  # the start was computed apart, once
    monkeypatch.setattr(gen, "MIN_SHARED_START", 10**6)
    assert generate(model, tok, SHARED, max_new_tokens=8, batch_size=2) == shared
    assert len(starts) == 1


# ---- finished rows leave the batch (decode_pruned) -----------------------------------------------------------------


class EndsByContent:
    """A logits processor that makes answers end at content-given steps, wherever a generate() call starts: no line
    break and no end of turn, except the end of turn when a row's token sum is 0 mod 19, a line break when it is
    0 mod 23."""

    def __init__(self, eos: int, newline: int, blocked: list[int]) -> None:
        self.eos, self.newline, self.blocked = eos, newline, blocked
        self.logits: dict[tuple, object] = {}  # the model's own next-token logits, by the row's tokens so far

    def __call__(self, input_ids, scores):
        for row, ids in enumerate(input_ids.tolist()):
            self.logits[tuple(ids)] = scores[row].clone()
        scores[:, self.blocked] = float("-inf")
        for row, total in enumerate(input_ids.sum(-1).tolist()):
            if total % 19 == 0 or total % 23 == 0:
                scores[row] = float("-inf")
                scores[row, self.eos if total % 19 == 0 else self.newline] = 0.0
        return scores


@pytest.mark.parametrize("every", [1, 2, 5])
def test_greedy_answers_with_finished_rows_dropped_are_generates_own(tiny, monkeypatch, every: int) -> None:
    """Answers that end at different steps (end of turn, answer line, budget) are the same token for token, from the
    same logits at every step (so each row still attends to its own prompt and answer, at its own positions), whether
    finished rows leave the batch every `every` steps or the whole batch runs in one generate() call; and they do
    leave it."""
    import torch
    from transformers import LogitsProcessorList

    import align.eval.generate as gen

    model, tok = tiny
    eos = next(iter(gen._eos_ids(model)))
    newlines = sorted(gen._newline_tokens(tok))
    processor = EndsByContent(eos, tok("\n", add_special_tokens=False)["input_ids"][0], [eos, *newlines])
    original, batch_rows = model.generate, []

    def ending(**kwargs):
        batch_rows.append(kwargs["input_ids"].shape[0])
        return original(**kwargs, logits_processor=LogitsProcessorList([processor]))

    monkeypatch.setattr(model, "generate", ending)
    prompts = [[{"role": "user", "content": f"Case {i}: " + "pain " * i}] for i in range(10)]

    def answers(prune_every: int, done=None) -> list[str]:
        monkeypatch.setattr(gen, "PRUNE_EVERY", prune_every)
        batch_rows.clear()
        return generate(model, tok, prompts, max_new_tokens=14, batch_size=5, first_line_done=done)

    for done in (None, lambda i, line: i % 2 == 0):
        processor.logits.clear()
        whole = answers(10**6, done)
        assert batch_rows == [5, 5]  # one call per batch
        whole_logits = dict(processor.logits)
        processor.logits.clear()
        pruned = answers(every, done)
        assert pruned == whole
        assert processor.logits.keys() <= whole_logits.keys()
        for key, logits in processor.logits.items():
            torch.testing.assert_close(logits, whole_logits[key], atol=1e-5, rtol=1e-5)
        assert len(set(map(len, whole))) > 2, whole  # the answers end at different steps
        assert len(batch_rows) > 2 and min(batch_rows) < 5, batch_rows  # finished rows left their batch
    assert any("\n" not in t for t in whole) and any(len(t) < len(max(whole, key=len)) for t in whole)


# ---- prompts read in chunks of positions (prefill_chunk) -----------------------------------------------------------


def test_prefill_chunk_gives_each_cpu_forward_about_the_token_budget() -> None:
    import torch

    from align.eval.generate import MIN_PREFILL_CHUNK, PREFILL_TOKENS, prefill_chunk

    cpu = torch.device("cpu")
    assert prefill_chunk(1, cpu) == PREFILL_TOKENS
    assert prefill_chunk(80, cpu) == PREFILL_TOKENS // 80
    assert prefill_chunk(10**6, cpu) == MIN_PREFILL_CHUNK
    assert prefill_chunk(80, torch.device("cuda")) is None  # accelerators read the prompt in one forward


def test_greedy_answers_are_the_same_with_the_prompts_read_in_chunks(tiny, monkeypatch) -> None:
    """With a token budget that splits each prompt into chunks of MIN_PREFILL_CHUNK positions, the model's forwards
    take at most that many positions, and the answers and every step's logits are those of one prefill forward."""
    import torch

    import align.eval.generate as gen

    model, tok = tiny
    widths, logits = [], []
    original = model.generate

    def recording(**kwargs):
        out = original(**kwargs, output_logits=True, return_dict_in_generate=True)
        logits.append(torch.stack(out.logits))
        return out.sequences

    real_forward = model.forward
    monkeypatch.setattr(
        model, "forward", lambda *a, **k: widths.append(k["input_ids"].shape[1]) or real_forward(*a, **k)
    )
    monkeypatch.setattr(model, "generate", recording)
    monkeypatch.setattr(gen, "MIN_SHARED_START", 10**6)  # the whole prompt is prefilled
    monkeypatch.setattr(gen, "PRUNE_EVERY", 10**6)
    prompts = [[{"role": "user", "content": "Chest pain" + " and nausea" * n}] for n in (12, 4, 9)]
    whole = generate(model, tok, prompts, max_new_tokens=6, batch_size=3)
    whole_logits, whole_widths = logits[:], widths[:]
    logits.clear()
    widths.clear()
    monkeypatch.setattr(gen, "PREFILL_TOKENS", 1)  # -> MIN_PREFILL_CHUNK positions per forward
    chunked = generate(model, tok, prompts, max_new_tokens=6, batch_size=3)
    assert max(whole_widths) > 2 * gen.MIN_PREFILL_CHUNK  # one prefill forward over the longest prompt
    assert max(widths) == gen.MIN_PREFILL_CHUNK and widths.count(gen.MIN_PREFILL_CHUNK) >= 2
    assert chunked == whole
    torch.testing.assert_close(logits[0], whole_logits[0], atol=1e-5, rtol=1e-5)
