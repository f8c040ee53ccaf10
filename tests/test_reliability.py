"""Reliability: cached shards keyed by content, same seed same bytes, kill -9 loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from srg import backends as be_api
from srg import generation as g
from srg.io import read_jsonl, write_jsonl

PROMPTS = [
    {"id": f"p{i}", "prompt": f"Count to {i}.", "source": "t", "category": "", "split": "test", "meta": {}}
    for i in range(6)
]


def _job(tmp_path, model, out="out.jsonl", greedy=False):
    prompts = tmp_path / "p.jsonl"
    if not prompts.exists():
        write_jsonl(prompts, PROMPTS)
    sampling = (
        be_api.SamplingParams(n=1, greedy=True, max_new_tokens=6)
        if greedy
        else be_api.SamplingParams(n=3, greedy=False, temperature=1.0, top_k=0, max_new_tokens=6, seed=7)
    )
    return g.GenerationJob(
        prompts=str(prompts),
        out=str(tmp_path / out),
        model_path=str(model),
        model_name="m",
        evalset="t",
        mode="greedy" if greedy else "sample",
        sampling=sampling,
        shard_size=2,
        backend_options={"dtype": "float32", "batch_size": 8, "threads": 1},
    )


class Killed(Exception):
    pass


def _interrupted(job, after_batches=1):
    """Run ``job`` like a process killed after ``after_batches`` shards were written."""
    backend = be_api.make_backend("hf", model_path=job.model_path, **job.backend_options)
    calls = {"n": 0}
    real = backend.generate

    def generate(*a, **kw):
        if calls["n"] == after_batches:
            raise Killed
        calls["n"] += 1
        return real(*a, **kw)

    backend.generate = generate
    with pytest.raises(Killed):
        g.run_generation(job, backend=backend, log=lambda *_: None)


def test_retrained_model_regenerates_shards_unchanged_model_reuses_them(tmp_path, save_tiny_llama):
    model = save_tiny_llama(tmp_path / "model", seed=0)
    job = _job(tmp_path, model)
    _interrupted(job)
    done = sorted(p.name for p in g.shard_dir(job).glob("*.jsonl"))
    assert done == ["00000.jsonl"]
    # same weights: the finished shard is reused byte for byte
    shard0 = (g.shard_dir(job) / "00000.jsonl").read_bytes()
    stats = g.run_generation(job, log=lambda *_: None)
    assert stats["resumed_shards"] == 1
    assert (tmp_path / "out.jsonl").read_bytes().startswith(shard0)
    # the finished run keeps its shards (content-keyed); "retrain" with another seed into the
    # same directory: the old model's shards must never be merged
    old_dir = g.shard_dir(job)
    assert sorted(p.name for p in old_dir.glob("*.jsonl")) == [f"{i:05d}.jsonl" for i in range(3)]
    save_tiny_llama(tmp_path / "model", seed=1)
    assert g.shard_dir(job) != old_dir  # the key follows the weights, not the path
    stats = g.run_generation(job, log=lambda *_: None)
    assert stats["resumed_shards"] == 0
    assert not old_dir.exists()  # stale shards of the old model are removed, never merged
    (tmp_path / "fresh").mkdir()
    fresh = _job(tmp_path / "fresh", model)
    g.run_generation(fresh, log=lambda *_: None)
    assert (tmp_path / "out.jsonl").read_bytes() == (tmp_path / "fresh" / "out.jsonl").read_bytes()


def test_edited_prompt_file_regenerates_shards(tmp_path, save_tiny_llama):
    model = save_tiny_llama(tmp_path / "model")
    job = _job(tmp_path, model)
    before = g.shard_dir(job)
    write_jsonl(job.prompts, [{**PROMPTS[0], "prompt": "Count to ten."}, *PROMPTS[1:]])
    assert g.shard_dir(job) != before


@pytest.mark.parametrize("greedy", [True, False])
def test_same_seed_same_bytes(tmp_path, save_tiny_llama, resources, greedy):
    """Two runs of one job on one machine write byte-identical generations and judgements."""
    model = save_tiny_llama(tmp_path / "model")
    a, b = _job(tmp_path, model, "a.jsonl", greedy), _job(tmp_path, model, "b.jsonl", greedy)
    g.run_generation(a, log=lambda *_: None)
    g.run_generation(b, log=lambda *_: None)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    if not greedy:  # real sampling: the samples of one prompt differ
        rows = read_jsonl(tmp_path / "a.jsonl")
        assert len({r["response"] for r in rows if r["prompt_id"] == "p3"}) > 1
    judged = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.judged.jsonl"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "srg",
                "judge",
                "--prompts",
                str(tmp_path / "p.jsonl"),
                "--generations",
                str(tmp_path / f"{name}.jsonl"),
                "--out",
                str(out),
                "--params",
                json.dumps({"name": "keyword"}),
                "--resources",
                str(resources),
            ],
            check=True,
            capture_output=True,
        )
        judged.append(out.read_bytes())
    assert judged[0] == judged[1] and judged[0]


def test_bf16_only_where_native():
    from srg import models

    avx2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
    amx = "flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
    assert not models.cpu_has_native_bf16(avx2) and models.cpu_has_native_bf16(amx)
    assert models.resolve_dtype("float32") == "float32" and models.resolve_dtype("bfloat16") == "bfloat16"
    assert models.resolve_dtype("bfloat16_if_native") in ("bfloat16", "float32")
