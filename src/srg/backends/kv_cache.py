"""A KV cache whose decode step, row changes and merges write in place instead of copying it.

transformers' ``DynamicLayer`` appends a step's key/value states with ``torch.cat``: a copy of
the layer's whole cache at every step, in every layer (O(length) per token). ``GrowingLayer``
keeps each layer's keys and values as a view (rows ``[0, rows)``, columns ``[start, end)``) of
buffers with spare rows and columns:

- a decode step writes the new token's states into the spare columns (``update``);
- dropping finished rows moves only the rows after the new end into the holes (``compact``)
  and dropping leading columns no row attends to moves the view's start (no copy);
- new rows are written into the spare rows, right-aligned with the running ones (``append_rows``).

The buffers are copied only when they are full or when a caller replaced ``keys``/``values``
(e.g. ``batch_select_indices``). Buffers are allocated uninitialised; every operation that
widens the view writes or zeroes the cells it adds, so a masked column never holds NaN."""

from __future__ import annotations

from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

SPARE = 64  # positions of room added when a buffer is (re)allocated


class GrowingLayer(DynamicLayer):
    """``DynamicLayer`` with in-place appends, row moves and merges: ``keys``/``values`` are the
    view ``[:rows, :, start:end]`` of ``_buffers``."""

    _buffers: tuple | None = None
    _span: tuple[int, int, int] = (0, 0, 0)  # rows, start, end of the view
    _views: tuple | None = None  # the tensors this layer last set, to tell a caller's replacement

    @staticmethod
    def _alloc(like, rows: int, heads: int, width: int, dim: int) -> tuple:
        """Uninitialised key and value buffers of (rows, heads, width, dim)."""
        return tuple(like.new_empty((rows, heads, width, dim)) for _ in range(2))

    def _set(self, bufs: tuple, rows: int, start: int, end: int) -> None:
        self._buffers, self._span = bufs, (rows, start, end)
        self.keys, self.values = bufs[0][:rows, :, start:end], bufs[1][:rows, :, start:end]
        self._views = (self.keys, self.values)

    def owns(self) -> bool:
        """Whether ``keys``/``values`` are still this layer's views of its buffers."""
        return self._views is not None and self.keys is self._views[0] and self.values is self._views[1]

    def reserve(self, rows: int, width: int, front: int = 0) -> None:
        """Copy the current states into buffers of ``rows`` rows and ``width`` + SPARE columns,
        placed after ``front`` masked (zeroed) columns."""
        k, v = self.keys, self.values
        b, h, t, d = k.shape
        bufs = self._alloc(k, max(rows, b), h, max(width, front + t) + SPARE, d)
        for buf, x in zip(bufs, (k, v)):
            buf[:b, :, :front] = 0
            buf[:b, :, front : front + t] = x
        self._set(bufs, b, 0, front + t)

    def update(self, key_states, value_states, *args, **kwargs):
        import torch

        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        b, _, t, _ = key_states.shape
        rows, start, end = self._span
        if not (self.owns() and rows == b and end + t <= self._buffers[0].shape[-2]):
            if self.keys.numel():
                self.reserve(b, self.keys.shape[-2] + t)
            else:
                h, d = key_states.shape[1], key_states.shape[3]
                self._set(self._alloc(key_states, b, h, t + SPARE, d), b, 0, 0)
            rows, start, end = self._span
        with torch.no_grad():
            self._buffers[0][:rows, :, end : end + t] = key_states
            self._buffers[1][:rows, :, end : end + t] = value_states
        self._set(self._buffers, rows, start, end + t)
        return self.keys, self.values

    def compact(self, dst: list[int], src: list[int], rows: int, drop_columns: int) -> None:
        """Keep ``rows`` rows: row ``src[i]`` moves to row ``dst[i]`` (the others stay where they
        are), and the first ``drop_columns`` columns leave the view."""
        import torch

        if not self.owns():
            self.reserve(self.keys.shape[0], self.keys.shape[-2])
        _, start, end = self._span
        if dst:
            d = torch.tensor(dst, device=self.keys.device)
            s = torch.tensor(src, device=self.keys.device)
            for buf in self._buffers:
                view = buf[:, :, start + drop_columns : end]
                view.index_copy_(0, d, view.index_select(0, s))
        self._set(self._buffers, rows, start + drop_columns, end)

    def append_rows(self, keys, values, row_capacity: int = 0) -> int:
        """Add ``keys``/``values`` (b, h, t, d) as rows after the current ones, right-aligned with
        them; returns how many masked columns the view gained on the left."""
        b, _, t, _ = keys.shape
        if not self.owns():
            self.reserve(self.keys.shape[0] + b, self.keys.shape[-2])
        rows, start, end = self._span
        width = end - start
        grow = max(0, t - width)
        if rows + b > self._buffers[0].shape[0] or start < grow:
            self.reserve(max(rows + b, row_capacity), width + grow, front=grow)
            rows, start, end = self._span
        else:
            start -= grow
            for buf in self._buffers:  # the columns the running rows gain, masked
                buf[:rows, :, start : start + grow] = 0
        for buf, x in zip(self._buffers, (keys, values)):
            buf[rows : rows + b, :, start : end - t] = 0  # the new rows' masked columns
            buf[rows : rows + b, :, end - t : end] = x
        self._set(self._buffers, rows + b, start, end)
        return grow


class GrowingCache(DynamicCache):
    """A ``DynamicCache`` of ``GrowingLayer`` s (one per decoder layer, created on first use)."""

    def __init__(self) -> None:
        Cache.__init__(self, layer_class_to_replicate=GrowingLayer)
