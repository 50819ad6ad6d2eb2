"""The generation cache key: same model files, prompt and decoding settings -> reuse; any change -> generate again."""

import json
import os

from align.report.cache import generation_key, load_generations, model_fingerprint, stage_model_parts

PROMPT = [{"role": "user", "content": "ESI level?"}]


def _stage(tmp_path, name="dpo"):
    stage = tmp_path / name
    (stage / "final").mkdir(parents=True)
    (stage / "final" / "adapter_model.safetensors").write_bytes(b"weights-1")
    (stage / "metrics.json").write_text("{}")
    return stage


def test_fingerprint_follows_the_model_files_only(tmp_path):
    stage = _stage(tmp_path)
    fp = model_fingerprint(stage_model_parts(stage))
    assert model_fingerprint(stage_model_parts(stage)) == fp
    (stage / "metrics.json").write_text('{"loss": 1}')  # not part of the model
    assert model_fingerprint(stage_model_parts(stage)) == fp
    weights = stage / "final" / "adapter_model.safetensors"
    weights.write_bytes(b"weights-2")  # retrained: same size, new contents and time
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert model_fingerprint(stage_model_parts(stage)) != fp


def test_fingerprint_includes_the_domain_adapter_under_a_task_adapter(tmp_path):
    stage, domain = _stage(tmp_path, "sft"), _stage(tmp_path, "domain") / "final"
    (stage / "domain_adapter.json").write_text(json.dumps({"path": str(domain), "mode": "frozen"}))
    parts = stage_model_parts(stage)
    assert domain in parts and stage / "domain_adapter.json" in parts
    fp = model_fingerprint(parts)
    (domain / "adapter_model.safetensors").write_bytes(b"another domain adapter")
    assert model_fingerprint(stage_model_parts(stage)) != fp


def test_hub_id_enters_by_name(tmp_path):
    assert model_fingerprint(["org/model-a"]) != model_fingerprint(["org/model-b"])
    assert model_fingerprint(["org/model-a"]) == model_fingerprint(["org/model-a"])


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
