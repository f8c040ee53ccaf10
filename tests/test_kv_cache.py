"""``GrowingLayer``: appends, row moves and merges in place keep every row's states."""

import random

import pytest
import torch

from srg.backends.kv_cache import SPARE, GrowingLayer

H, D = 2, 3


def states(b: int, t: int) -> torch.Tensor:
    return torch.randn(b, H, t, D, dtype=torch.bfloat16)


@pytest.fixture
def nan_buffers(monkeypatch):
    """Buffers allocated NaN-filled: a view cell nothing wrote or zeroed shows as NaN."""
    monkeypatch.setattr(
        GrowingLayer,
        "_alloc",
        staticmethod(lambda like, *shape: tuple(like.new_full(shape, float("nan")) for _ in "kv")),
    )


def check(layer: GrowingLayer, ref: list[torch.Tensor]) -> None:
    """Row r's last len(ref[r]) columns are its states (right-aligned); nothing is NaN."""
    assert layer.keys.shape[0] == len(ref)
    assert not torch.isnan(layer.keys).any() and not torch.isnan(layer.values).any()
    for r, (k, v) in enumerate(ref):
        t = k.shape[1]
        assert layer.keys.shape[2] >= t
        assert torch.equal(layer.keys[r, :, -t:], k.to(layer.keys.dtype))
        assert torch.equal(layer.values[r, :, -t:], v.to(layer.values.dtype))


def test_random_appends_drops_and_merges_keep_every_row(nan_buffers):
    """Random decode steps, drops of finished rows and merges of new ones, against a list of
    each row's states; no cell of the view is ever uninitialised (NaN-filled buffers)."""
    torch.manual_seed(0)
    rng = random.Random(0)
    layer = GrowingLayer()
    k, v = states(3, 5), states(3, 5)
    layer.update(k, v)
    ref = [(k[r], v[r]) for r in range(3)]
    check(layer, ref)
    layer.reserve(8, layer.keys.shape[-2])
    for step in range(200):
        op = rng.choice(["step", "step", "drop", "merge"])
        if op == "step":
            k, v = states(len(ref), 1), states(len(ref), 1)
            layer.update(k, v)
            ref = [(torch.cat([rk, k[r]], 1), torch.cat([rv, v[r]], 1)) for r, (rk, rv) in enumerate(ref)]
        elif op == "drop" and len(ref) > 1:
            idx = sorted(rng.sample(range(len(ref)), rng.randint(1, len(ref) - 1)))
            holes = [p for p in range(len(idx)) if p not in set(idx)]
            movers = [p for p in idx if p >= len(idx)]
            fill = dict(zip(holes, movers))
            order = [fill.get(d, d) for d in range(len(idx))]
            # the leading columns no kept row uses
            width, longest = layer.keys.shape[-2], max(ref[p][0].shape[1] for p in idx)
            layer.compact(holes, movers, len(idx), width - longest)
            ref = [ref[p] for p in order]
            assert layer.keys.shape[-2] == longest
        elif op == "merge" and len(ref) < 12:
            b, t = rng.randint(1, 3), rng.randint(1, 40)
            k, v = states(b, t), states(b, t)
            layer.append_rows(k, v, row_capacity=8)
            ref += [(k[r], v[r]) for r in range(b)]
        check(layer, ref)


def test_steady_state_writes_in_place():
    """With spare rows and columns, a decode step, a drop and a merge reuse the buffers."""
    layer = GrowingLayer()
    layer.update(states(4, 10), states(4, 10))
    layer.reserve(8, 10)
    buf = layer._buffers[0].data_ptr()
    layer.update(states(4, 1), states(4, 1))
    layer.compact([1], [3], 3, 2)
    layer.append_rows(states(2, 5), states(2, 5))
    layer.update(states(5, 1), states(5, 1))
    assert layer._buffers[0].data_ptr() == buf and layer.keys.shape[0] == 5
    for _ in range(SPARE):  # the spare columns run out: one copy into larger buffers
        layer.update(states(5, 1), states(5, 1))
    assert layer._buffers[0].data_ptr() != buf


def test_a_replaced_view_is_copied_not_written_through():
    """A caller's replacement of ``keys`` (``batch_select_indices``) is not the buffer: the next
    update copies it instead of writing into buffers it no longer views."""
    layer = GrowingLayer()
    k, v = states(3, 4), states(3, 4)
    layer.update(k, v)
    layer.batch_select_indices(torch.tensor([2, 0]))
    k2, v2 = states(2, 1), states(2, 1)
    layer.update(k2, v2)
    assert torch.equal(layer.keys, torch.cat([k[[2, 0]], k2], 2))
    assert torch.equal(layer.values, torch.cat([v[[2, 0]], v2], 2))


def test_a_merge_that_widens_the_view_masks_the_running_rows_new_columns(nan_buffers):
    """Columns left of the view that a longer merged row brings in are zeroed for the rows
    already running (one of which never had them written)."""
    layer = GrowingLayer()
    k, v = states(2, 10), states(2, 10)
    layer.update(k, v)
    layer.reserve(8, 10)
    layer.compact([0], [1], 1, 6)  # row 1 moves to row 0; the view starts at column 6
    k1, v1 = states(2, 3), states(2, 3)
    layer.append_rows(k1, v1)  # rows 1 and 2 (never written before) get columns 6..10 only
    k2, v2 = states(1, 8), states(1, 8)
    layer.append_rows(k2, v2)  # 8 > 4 columns: the view gains 4 columns on the left
    check(layer, [(k[1, :, 6:], v[1, :, 6:]), (k1[0], v1[0]), (k1[1], v1[1]), (k2[0], v2[0])])
