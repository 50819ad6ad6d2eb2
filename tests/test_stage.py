"""The stage directory: completeness, the weights a next stage starts from, the model stamp, the domain marker."""

import json
import os

import pytest

from align.errors import UserError
from align.stage import (
    is_complete,
    model_parts,
    model_stamp,
    read_marker,
    require_complete,
    start_weights,
    write_marker,
)


def _stage(tmp_path, name="dpo"):
    stage = tmp_path / name
    (stage / "final").mkdir(parents=True)
    (stage / "final" / "adapter_model.safetensors").write_bytes(b"weights-1")
    (stage / "metrics.json").write_text("{}")
    return stage


def test_stamp_follows_the_model_files_only(tmp_path):
    stage = _stage(tmp_path)
    fp = model_stamp(model_parts(stage))
    assert model_stamp(model_parts(stage)) == fp
    (stage / "metrics.json").write_text('{"loss": 1}')  # not part of the model
    assert model_stamp(model_parts(stage)) == fp
    weights = stage / "final" / "adapter_model.safetensors"
    weights.write_bytes(b"weights-2")  # retrained: same size, new contents and time
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert model_stamp(model_parts(stage)) != fp


def test_stamp_includes_the_domain_adapter_under_a_task_adapter(tmp_path):
    stage, domain = _stage(tmp_path, "sft"), _stage(tmp_path, "domain") / "final"
    (stage / "domain_adapter.json").write_text(json.dumps({"path": str(domain), "mode": "frozen"}))
    parts = model_parts(stage)
    assert domain in parts and stage / "domain_adapter.json" in parts
    fp = model_stamp(parts)
    (domain / "adapter_model.safetensors").write_bytes(b"another domain adapter")
    assert model_stamp(model_parts(stage)) != fp


def test_hub_id_enters_by_name(tmp_path):
    assert model_stamp(["org/model-a"]) != model_stamp(["org/model-b"])
    assert model_stamp(["org/model-a"]) == model_stamp(["org/model-a"])


def test_complete_needs_final_and_metrics(tmp_path):
    stage = tmp_path / "sft"
    (stage / "final").mkdir(parents=True)
    assert not is_complete(stage)
    with pytest.raises(UserError) as err:
        require_complete(stage, "SFT", "run `make sft` first")
    assert str(err.value) == f"no finished SFT run at {stage}; run `make sft` first"
    (stage / "metrics.json").write_text("{}")
    assert is_complete(stage) and require_complete(stage, "SFT", "") == stage


def test_next_stage_starts_from_merged_else_final(tmp_path):
    stage = _stage(tmp_path, "sft")
    assert start_weights(stage) == stage / "final"  # full fine-tuning: final/ is the weights
    (stage / "merged").mkdir()
    assert start_weights(stage) == stage / "merged"


def test_marker_round_trip_and_a_missing_domain_adapter_is_one_line(tmp_path):
    stage, domain = _stage(tmp_path, "sft"), _stage(tmp_path, "domain") / "final"
    assert read_marker(stage) is None
    write_marker(stage, {"path": str(domain), "mode": "frozen"})
    with pytest.raises(UserError, match="the domain adapter this stage was trained on is missing"):
        read_marker(stage)  # no adapter_config.json there
    (domain / "adapter_config.json").write_text("{}")
    assert read_marker(stage) == domain
    write_marker(stage, None)
    assert not (stage / "domain_adapter.json").exists()
