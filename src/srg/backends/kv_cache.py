"""A KV cache whose decode step writes in place instead of concatenating.

transformers' ``DynamicLayer`` appends a step's key/value states with ``torch.cat``: a copy of
the layer's whole cache at every step, in every layer (O(length) per token). ``GrowingLayer``
keeps each layer's keys and values as views into buffers with spare room and writes new states
into that room; a buffer is copied only when it is full (grown by ``SPARE`` positions) or when
the caller replaced the tensors (selecting or merging rows of a batch), so a decode step costs
one copy of the new token's states."""

from __future__ import annotations

from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

SPARE = 64  # positions of room added when a buffer is (re)allocated


class GrowingLayer(DynamicLayer):
    """``DynamicLayer`` with in-place appends: ``keys``/``values`` are views of the first
    ``length`` positions of ``_buffers``."""

    _buffers: tuple | None = None

    def update(self, key_states, value_states, *args, **kwargs):
        import torch

        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length = self.keys.shape[-2] if self.keys.numel() else 0
        new = length + key_states.shape[-2]
        bufs = self._buffers
        ours = bufs is not None and self.keys.numel() and self.keys.data_ptr() == bufs[0].data_ptr()
        if not (ours and bufs[0].shape[0] == key_states.shape[0] and new <= bufs[0].shape[-2]):
            b, h, _, d = key_states.shape
            bufs = tuple(key_states.new_empty((b, h, new + SPARE, d)) for _ in range(2))
            if length:
                bufs[0][:, :, :length] = self.keys
                bufs[1][:, :, :length] = self.values
            self._buffers = bufs
        with torch.no_grad():
            bufs[0][:, :, length:new] = key_states
            bufs[1][:, :, length:new] = value_states
        self.keys, self.values = bufs[0][:, :, :new], bufs[1][:, :, :new]
        return self.keys, self.values


class GrowingCache(DynamicCache):
    """A ``DynamicCache`` of ``GrowingLayer`` s (one per decoder layer, created on first use)."""

    def __init__(self) -> None:
        Cache.__init__(self, layer_class_to_replicate=GrowingLayer)
