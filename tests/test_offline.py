"""Offline by default (align/network.py): the policy reaches libraries imported before it; a tiny-model `align sft` opens no network socket and huggingface_hub is offline from the moment
it is imported; an adapter whose base is a hub id is a one-line error, not a network attempt."""

from __future__ import annotations

import json
import os
import socket

import pytest

from align.config import ModelConfig
from align.errors import UserError
from align.models import load_model
from align.stage import load_stage_model
from tests.faults.runs import run_align, run_env, stage_args

# Runs `align ARGS` with every non-loopback connect or name lookup recorded (and refused), and records the value of
# HF_HUB_OFFLINE when huggingface_hub is first imported (the value it keeps) and the flag it holds at the end.
GUARD = r"""
import json, os, socket, sys

record, argv = sys.argv[1], sys.argv[2:]
seen = {"attempts": []}


def check(what, host):
    host = str(host)
    if host in ("localhost", "", "None", "::1") or host.startswith("127."):
        return
    seen["attempts"].append(f"{what} {host}")
    raise OSError(f"test: network access attempted ({what} {host})")


real_connect, real_connect_ex, real_getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        check("connect", address[0])
    return real_connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        check("connect_ex", address[0])
    return real_connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    check("getaddrinfo", host)
    return real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo


class AtHubImport:
    def find_spec(self, name, path=None, target=None):
        if name == "huggingface_hub" and "at_hub_import" not in seen:
            seen["at_hub_import"] = os.environ.get("HF_HUB_OFFLINE")
        return None


sys.meta_path.insert(0, AtHubImport())
from align.cli import main

try:
    seen["code"] = main(argv)
finally:
    import huggingface_hub.constants

    seen["hub_offline"] = huggingface_hub.constants.HF_HUB_OFFLINE
    with open(record, "w") as f:
        json.dump(seen, f)
"""


def test_a_default_tiny_run_opens_no_socket_and_the_hub_is_offline_from_its_import(tmp_path, tiny_model_dir):
    args = stage_args("sft", tmp_path, tiny_model_dir, "offline", "train.max_steps=2")
    record, log = tmp_path / "record.json", tmp_path / "run.log"
    code = run_align([str(record), *args], run_env(tmp_path / "home"), log, python=("-c", GUARD))
    seen = json.loads(record.read_text())
    assert (code, seen["code"], seen["attempts"]) == (0, 0, []), log.read_text()[-3000:]
    assert (seen["at_hub_import"], seen["hub_offline"]) == ("1", True)
    assert (tmp_path / "outputs" / "offline" / "sft" / "final").is_dir()


@pytest.fixture
def no_network(monkeypatch):
    """Every name lookup and connect fails the test loudly (and is recorded, in case a library swallows it)."""
    import huggingface_hub.constants

    attempts: list[str] = []

    def refuse(what):
        def call(*args, **kwargs):
            attempts.append(f"{what} {args[:2]}")
            raise AssertionError(f"network access attempted: {what} {args[:2]}")

        return call

    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", huggingface_hub.constants.HF_HUB_OFFLINE)
    return attempts


HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _adapter_stage(tmp_path):
    final = tmp_path / "sft" / "final"
    final.mkdir(parents=True)
    (final / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": HUB_ID, "peft_type": "LORA"}))
    (tmp_path / "sft" / "metrics.json").write_text("{}")
    return tmp_path / "sft"


def test_a_stage_whose_adapter_names_a_hub_base_fails_in_one_line_without_the_network(tmp_path, no_network):
    stage = _adapter_stage(tmp_path)
    with pytest.raises(UserError) as err:
        load_stage_model(stage, ModelConfig(precision="fp32"))  # the report and the pair generator load it so
    assert str(err.value) == (
        f"model '{HUB_ID}' is not a local directory, and the network is off (model.allow_network: false); pass a "
        "local model directory (for an adapter's base: fix base_model_name_or_path in its adapter_config.json), or "
        "set model.allow_network: true to download it"
    )
    with pytest.raises(UserError) as err:
        load_model(ModelConfig(precision="fp32"), str(stage / "final"))  # DPO starting from an adapter directory
    assert str(err.value) == (
        f"{stage / 'final' / 'adapter_config.json'}: the adapter's base_model_name_or_path '{HUB_ID}' is not a local "
        "directory, and the network is off (model.allow_network: false); point it at a local copy of the base model, "
        "or set model.allow_network: true to download it"
    )
    assert no_network == []


OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE", "TRANSFORMERS_OFFLINE")


@pytest.fixture
def network_state(monkeypatch):
    """Whatever a test does to the variables, the libraries' flags and the recorded user values is undone after."""
    import datasets.config
    import evaluate.config
    import huggingface_hub.constants

    import align.network

    for name in OFFLINE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(align.network, "USER_ENV", {})
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", huggingface_hub.constants.HF_HUB_OFFLINE)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", datasets.config.HF_HUB_OFFLINE)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", datasets.config.HF_DATASETS_OFFLINE)
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", evaluate.config.HF_EVALUATE_OFFLINE)
    return huggingface_hub.constants, datasets.config, evaluate.config


def _flags(libs) -> tuple[bool, bool, bool, bool]:
    from transformers.utils.hub import is_offline_mode

    hub, ds, ev = libs
    return is_offline_mode(), hub.HF_HUB_OFFLINE, ds.HF_HUB_OFFLINE, ev.HF_EVALUATE_OFFLINE


def test_the_policy_reaches_libraries_imported_before_it(network_state):
    """huggingface_hub, datasets and evaluate read their offline variables once, at import: setting the variables
    afterwards (what align did) changes nothing; the policy sets the flags they really read."""
    from align.network import apply_network_policy

    network_state[0].HF_HUB_OFFLINE = False  # imported while online
    apply_network_policy(allow_network=False)
    assert _flags(network_state) == (True, True, True, True)
    assert all(os.environ[name] == "1" for name in OFFLINE_VARS)
    apply_network_policy(allow_network=True)  # a recipe that opts in: back to the user's (unset) variables
    assert _flags(network_state) == (False, False, False, False)
    assert not any(name in os.environ for name in OFFLINE_VARS)


def test_a_user_who_set_offline_stays_offline_even_when_a_recipe_allows_the_network(network_state, monkeypatch):
    from align.network import apply_network_policy, go_offline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    go_offline()  # what `align` does first thing
    apply_network_policy(allow_network=True)
    assert os.environ["HF_HUB_OFFLINE"] == "1" and "HF_DATASETS_OFFLINE" not in os.environ
    assert _flags(network_state)[:3] == (True, True, True)


def test_a_hub_id_reaching_the_model_loader_offline_is_one_line(tmp_path):
    from align.models import require_local

    with pytest.raises(UserError) as err:
        require_local("HuggingFaceTB/SmolLM2-135M-Instruct", allow_network=False)
    assert str(err.value) == (
        "model 'HuggingFaceTB/SmolLM2-135M-Instruct' is not a local directory, and the network is off "
        "(model.allow_network: false); pass a local model directory (for an adapter's base: fix "
        "base_model_name_or_path in its adapter_config.json), or set model.allow_network: true to download it"
    )
    require_local(str(tmp_path), allow_network=False)
    require_local("HuggingFaceTB/SmolLM2-135M-Instruct", allow_network=True)
