"""Sharded, resumable generation runs: one (model, prompt set, decoding mode) job written as
JSONL shards under a content key, then merged; several such runs of one model share one loaded
backend (:func:`run_generations`). Decoding itself is a backend's job (``srg.backends``)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from srg.backends import Backend, Request, SamplingParams, make_backend
from srg.config import content_hash
from srg.io import read_jsonl, shard_dir_for, write_jsonl


@dataclass
class GenerationJob:
    """One (model, prompt set, decoding mode) run, written as JSONL shards then merged."""

    prompts: str
    out: str
    model_path: str
    model_name: str
    evalset: str
    mode: str  # "greedy" or "sample"
    sampling: SamplingParams
    backend: str = "hf"
    backend_options: dict = field(default_factory=dict)
    shard_size: int = 128


def shard_key(job: GenerationJob) -> str:
    """Hash of everything that changes a shard's content: the model's weights and tokenizer
    (``models.model_fingerprint``), the prompt file's bytes, the decoding and backend settings.
    A retrained model or an edited prompt set never resumes from shards of the old one; paths
    do not enter the key."""
    from srg.models import model_fingerprint
    from srg.sources import sha256_of

    return content_hash(
        {
            "sampling": asdict(job.sampling),
            "model": model_fingerprint(job.model_path),
            "prompts": sha256_of(job.prompts),
            "backend": job.backend,
            "opts": job.backend_options,
            "shard": job.shard_size,
        }
    )


def shard_dir(job: GenerationJob) -> Path:
    """Where the job's shards live: beside the output, named by ``shard_key``."""
    return shard_dir_for(job.out, shard_key(job), create=False)


def run_generation(job: GenerationJob, backend: Backend | None = None, log=print) -> dict:
    """Generate every missing shard, then merge into ``job.out`` (the shards are kept, under their
    content key, for the next run). Returns run statistics."""
    from tqdm.auto import tqdm

    records = read_jsonl(job.prompts)
    if not records:
        raise ValueError(f"prompt set {job.prompts} is empty")
    shards = shard_dir_for(job.out, shard_key(job))  # also drops stale shards of other keys
    n_shards = math.ceil(len(records) / job.shard_size)
    todo = [i for i in range(n_shards) if not (shards / f"{i:05d}.jsonl").exists()]
    log(
        f"{job.model_name}/{job.evalset}/{job.mode}: {len(records)} prompts x n={job.sampling.n}, "
        f"{n_shards} shards ({n_shards - len(todo)} already done)"
    )
    t0, n_tokens = time.perf_counter(), 0
    if todo:
        backend = backend or make_backend(job.backend, model_path=job.model_path, **job.backend_options)
        remaining = sum(len(records[i * job.shard_size : (i + 1) * job.shard_size]) for i in todo)
        bar = tqdm(
            total=remaining * job.sampling.n,
            desc=f"{job.model_name}/{job.evalset}/{job.mode}",
            unit="seq",
            mininterval=5,
        )
        for i in todo:
            chunk = records[i * job.shard_size : (i + 1) * job.shard_size]
            reqs = [Request(r["prompt"], (r.get("meta") or {}).get("system")) for r in chunk]
            params = SamplingParams(**{**asdict(job.sampling), "seed": job.sampling.seed + i})
            outs = backend.generate(reqs, params, progress=bar.update)
            rows = []
            for r, comps in zip(chunk, outs):
                for j, c in enumerate(comps):
                    rows.append(
                        {
                            "prompt_id": r["id"],
                            "sample": j,
                            "response": c.text,
                            "n_tokens": c.n_tokens,
                            "finished": c.finished,
                            "model": job.model_name,
                            "evalset": job.evalset,
                            "mode": job.mode,
                        }
                    )
                    n_tokens += c.n_tokens
            write_jsonl(shards / f"{i:05d}.jsonl", rows)
        bar.close()
    merged = [row for i in range(n_shards) for row in read_jsonl(shards / f"{i:05d}.jsonl")]
    write_jsonl(job.out, merged)
    # the shards stay (small, content-keyed): when a multi-set job reruns because one of its sets
    # changed, every unchanged set is merged again from them without generating
    wall = time.perf_counter() - t0
    return {
        "rows": len(merged),
        "generated_tokens": n_tokens,
        "wall_s": round(wall, 2),
        "tokens_per_s": round(n_tokens / wall, 1) if todo and wall > 0 else None,
        "resumed_shards": n_shards - len(todo),
    }


def run_generations(jobs: Sequence[GenerationJob], log=print) -> list[dict]:
    """Run several jobs of one model and backend in one process: the backend (model load, and
    the process's imports before it) is built once, on the first job with a missing shard, and
    shared; each job keeps its own content-keyed shards and output, so a changed prompt set
    regenerates only its own shards."""
    if not jobs:
        return []
    first = jobs[0]
    for j in jobs[1:]:
        if (j.model_path, j.backend, j.backend_options) != (first.model_path, first.backend, first.backend_options):
            raise ValueError(f"{j.out}: jobs of one run must share model path, backend and backend options")
    backend = None

    class _Lazy:
        """Builds the shared backend on first use (a run whose shards all exist loads no model)."""

        def generate(self, *args, **kwargs):
            nonlocal backend
            if backend is None:
                backend = make_backend(first.backend, model_path=first.model_path, **first.backend_options)
            return backend.generate(*args, **kwargs)

    return [run_generation(job, backend=_Lazy(), log=log) for job in jobs]
