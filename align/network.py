"""The network policy, in one place: nothing is fetched at run time unless a recipe opts in (model.allow_network).

huggingface_hub (and datasets, evaluate) read their offline variables once, when first imported, so `align` calls
`go_offline` first thing, before anything imports them; `apply_network_policy` then applies a loaded recipe's choice,
to the variables and to the libraries imported by then. This module imports none of those libraries itself."""

from __future__ import annotations

import os
import sys

OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE", "TRANSFORMERS_OFFLINE")
USER_ENV: dict[str, str | None] = {}  # the user's own values of OFFLINE_ENV, restored when a recipe allows the network


def go_offline() -> None:
    """Set every OFFLINE_ENV variable (recording the user's own values the first time) and turn telemetry off."""
    for name in OFFLINE_ENV:
        USER_ENV.setdefault(name, os.environ.get(name))
        os.environ[name] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def apply_network_policy(allow_network: bool) -> None:
    """The one place the network policy is applied: nothing is fetched at run time unless the recipe opts in.

    Off: the offline variables are set (go_offline, which `align` runs first thing, before anything
    imports the hub). On: the user's own values come back. Either way the libraries already imported are told too,
    since each read the variables once, at import: huggingface_hub.constants.HF_HUB_OFFLINE (what transformers asks
    through is_offline_mode), datasets.config.HF_HUB_OFFLINE, evaluate.config.HF_EVALUATE_OFFLINE."""
    if not allow_network:
        go_offline()
    for name, value in USER_ENV.items() if allow_network else ():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _tell_loaded_libraries()


def _env_true(value: str | None) -> bool:
    return (value or "").upper() in ("1", "ON", "YES", "TRUE")  # the libraries' own ENV_VARS_TRUE_VALUES


def _tell_loaded_libraries() -> None:
    """Set the offline flags of the HF libraries already imported from the environment, as they do at import."""
    env = os.environ
    hub_offline = _env_true(env.get("HF_HUB_OFFLINE") or env.get("TRANSFORMERS_OFFLINE"))
    if (hub := sys.modules.get("huggingface_hub.constants")) is not None:
        hub.HF_HUB_OFFLINE = hub_offline
    if (ds := sys.modules.get("datasets.config")) is not None:
        ds_env = env.get("HF_DATASETS_OFFLINE")
        ds.HF_HUB_OFFLINE = ds.HF_DATASETS_OFFLINE = hub_offline if ds_env is None else _env_true(ds_env)
    if (ev := sys.modules.get("evaluate.config")) is not None:
        ev.HF_EVALUATE_OFFLINE = _env_true(env.get("HF_EVALUATE_OFFLINE"))
