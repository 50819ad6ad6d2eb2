"""A key/value cache for decoding that grows in place: transformers' `DynamicLayer` concatenates every new position
onto its keys and values (`torch.cat`), which copies the whole cache at every step of every layer; on a 2-core CPU
that copy was a quarter of a 16-row summary's decoding time (profiled). `GrowingLayer` keeps them in a buffer with
room for the answer and writes each step into it; attention gets a view of the filled part, so it sees exactly the
keys and values `DynamicLayer` would give it (same values, same order: tests/eval/test_kvcache.py).

Everything else is `DynamicLayer`'s own: after an operation that replaces the tensors (crop, batch selection,
reordering, repeating rows) the next update copies them into a fresh buffer. It is used only where `generate()` would
build a plain `DynamicCache` itself (`takes_dynamic_cache`); other models keep the cache transformers gives them.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class GrowingLayer(DynamicLayer):
    """A `DynamicLayer` whose keys and values are views of a preallocated buffer with `reserve` free positions."""

    def __init__(self, reserve: int = 0) -> None:
        super().__init__()
        self.reserve = reserve
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        filled, new = self.get_seq_length(), key_states.shape[-2]
        if not self._holds_current() or filled + new > self._key_buffer.shape[-2]:
            self._rebuffer(key_states, value_states, filled, max(filled + new + self.reserve, 2 * filled))
        self._key_buffer[..., filled : filled + new, :] = key_states
        self._value_buffer[..., filled : filled + new, :] = value_states
        self.keys = self._key_buffer[..., : filled + new, :]
        self.values = self._value_buffer[..., : filled + new, :]
        return self.keys, self.values

    def _holds_current(self) -> bool:
        """Whether keys/values are still the views this layer handed out (nothing replaced them since)."""
        return (
            self._key_buffer is not None
            and self.keys is not None
            and self.keys.data_ptr() == self._key_buffer.data_ptr()
            and self.keys.shape[:-2] == self._key_buffer.shape[:-2]
            and self.keys.stride() == self._key_buffer.stride()
        )

    def _rebuffer(self, key_states: torch.Tensor, value_states: torch.Tensor, filled: int, capacity: int) -> None:
        """New buffers of `capacity` positions holding the current keys and values (as `key_states` is laid out
        when there are none yet)."""
        keys = self.keys if filled else key_states[..., :0, :]
        values = self.values if filled else value_states[..., :0, :]
        self._key_buffer = keys.new_empty((*keys.shape[:-2], capacity, keys.shape[-1]))
        self._value_buffer = values.new_empty((*values.shape[:-2], capacity, values.shape[-1]))
        self._key_buffer[..., :filled, :] = keys
        self._value_buffer[..., :filled, :] = values


def growing(cache: DynamicCache, reserve: int) -> DynamicCache:
    """`cache` with each plain `DynamicLayer` (full attention) made a `GrowingLayer` holding the same keys and values
    (other layer types, e.g. sliding windows, stay as they are). In place; returns `cache`."""
    for i, layer in enumerate(cache.layers):
        if type(layer) is DynamicLayer:
            grown = GrowingLayer(reserve)
            if layer.is_initialized:
                grown.lazy_initialization(layer.keys, layer.values)
                grown.keys, grown.values = layer.keys, layer.values
            cache.layers[i] = grown
    return cache


def takes_dynamic_cache(model) -> bool:
    """Whether `generate()` would give `model` a plain `DynamicCache` (the condition it checks itself), so one can be
    passed in its place: a decoder-only model that supports it, whose generation config asks for no other cache
    (Gemma's "hybrid", "static", "quantized", ...: passing a cache beside those is an error)."""
    supports = getattr(model, "_supports_default_dynamic_cache", None)
    return (
        supports is not None
        and supports()
        and not getattr(model.config, "is_encoder_decoder", False)
        and "mamba" not in type(model).__name__.lower()
        and getattr(getattr(model, "generation_config", None), "cache_implementation", None) in (None, "dynamic")
    )


def empty_growing_cache(model, reserve: int) -> DynamicCache:
    """An empty cache for `model` (its layer types, as `generate()` lays them out) that grows in place."""
    return growing(DynamicCache(config=model.config.get_text_config(decoder=True)), reserve)
