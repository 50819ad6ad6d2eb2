"""The generation cache key: same model stamp, prompt and decoding settings -> reuse; any change -> generate again."""

import json

from align.report.cache import generation_key, load_generations

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
    assert load_generations(path) == {"k": "new"}
    assert load_generations(tmp_path / "missing.jsonl") == {}
