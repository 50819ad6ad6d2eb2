"""The report cache keys: same model stamp, inputs and settings -> reuse; any change -> compute again."""

import json

from align.report.cache import generation_key, load_saved, pair_key

PROMPT = [{"role": "user", "content": "ESI level?"}]


def test_key_changes_with_prompt_and_decoding_settings():
    key = generation_key("fp", PROMPT, 24, 16)
    assert key == generation_key("fp", PROMPT, 24, 16)
    others = {
        generation_key("fp2", PROMPT, 24, 16),
        generation_key("fp", [{"role": "user", "content": "ESI level? "}], 24, 16),
        generation_key("fp", PROMPT, 32, 16),
        generation_key("fp", PROMPT, 24, 8),
    }
    assert key not in others and len(others) == 4


def test_old_lines_without_a_key_are_not_reused(tmp_path):
    path = tmp_path / "generations.jsonl"
    rows = [{"variant": "sft", "id": "t-0", "text": "old"}, {"variant": "sft", "id": "t-1", "key": "k", "text": "new"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_saved(path) == ({"k": "new"}, {})
    assert load_saved(tmp_path / "missing.jsonl") == ({}, {})


PAIR = {"prompt": PROMPT, "chosen": [{"role": "assistant", "content": "ESI level: 2"}],
        "rejected": [{"role": "assistant", "content": "ESI level: 4"}]}  # fmt: skip


def test_pair_key_changes_with_the_model_either_answer_and_the_length():
    key = pair_key("fp", PAIR, 768)
    assert key == pair_key("fp", dict(PAIR), 768)
    others = {
        pair_key("fp2", PAIR, 768),
        pair_key("fp", {**PAIR, "prompt": [{"role": "user", "content": "ESI?"}]}, 768),
        pair_key("fp", {**PAIR, "chosen": PAIR["rejected"]}, 768),
        pair_key("fp", {**PAIR, "rejected": PAIR["chosen"]}, 768),
        pair_key("fp", PAIR, 512),
    }
    assert key not in others and len(others) == 5


def test_answers_and_pair_logps_are_read_apart_from_one_file(tmp_path):
    path = tmp_path / "generations.jsonl"
    rows = [
        {"variant": "sft", "task": "triage", "id": "t-0", "key": "a", "text": "ESI level: 2"},
        {"variant": "sft", "pair": "p-0", "key": "b", "logps": [-1.5, -7.25]},
        {"variant": "sft", "pair": "p-1", "logps": [-1.0, -2.0]},  # no key: not reused
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_saved(path) == ({"a": "ESI level: 2"}, {"b": (-1.5, -7.25)})
