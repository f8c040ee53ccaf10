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


@dataclass(frozen=True)
class ReasoningBudget:
    """Budgeted decoding of a reasoning model (README "Reasoning budget"): the assistant turn is
    prefilled with the opening tag; the model writes its reasoning until it writes the closing tag
    itself or ``reasoning_tokens`` run out (then the closing tag is appended for it); the answer
    after the closed block gets ``answer_tokens``, the answer budget of every plain model."""

    open_tag: str = "<reasoning>"
    close_tag: str = "</reasoning>"
    reasoning_tokens: int = 168
    answer_tokens: int = 24

    def __post_init__(self) -> None:
        if self.reasoning_tokens < 1 or self.answer_tokens < 1:
            raise ValueError(f"reasoning budget: token budgets must be >= 1, got {self}")
        if not self.open_tag or not self.close_tag:
            raise ValueError(f"reasoning budget: tags must be non-empty, got {self}")


CLOSED_BY = ("model", "budget", "eos")  # who closed a budgeted reasoning block


@dataclass
class BudgetedCompletion:
    """A reasoning output decoded under a :class:`ReasoningBudget`: the whole text (tags
    included), and who closed the block: the model (it wrote the closing tag), the budget (the
    reasoning tokens ran out) or ``eos`` (the model ended its turn inside the block)."""

    text: str
    n_tokens: int
    finished: bool
    closed_by: str
    reasoning_tokens: int
    answer_tokens: int


def generate_budgeted(
    backend: Backend, requests: Sequence[Request], params: SamplingParams, budget: ReasoningBudget, progress=None
) -> list[list[BudgetedCompletion]]:
    """n budgeted reasoning outputs per request (two backend calls: reasoning, then answer).

    Every backend supports it: an assistant prefill and stop strings are all it needs."""
    from dataclasses import replace

    opening = f"{budget.open_tag}\n"
    think = replace(params, max_new_tokens=budget.reasoning_tokens, stop=(budget.close_tag,))
    first = backend.generate([replace(r, prefill=r.prefill + opening) for r in requests], think, progress)
    flat = [(i, c) for i, comps in enumerate(first) for c in comps]
    heads = [f"{opening}{c.text.strip()}\n{budget.close_tag}\n" for _, c in flat]
    answer = replace(params, n=1, max_new_tokens=budget.answer_tokens, stop=())
    answers = backend.generate(
        [replace(requests[i], prefill=requests[i].prefill + h) for (i, _), h in zip(flat, heads)], answer
    )
    out: list[list[BudgetedCompletion]] = [[] for _ in requests]
    for (i, c), h, (a,) in zip(flat, heads, answers):
        closed = c.hit_stop if c.hit_stop is not None else c.finished
        by = "model" if closed else ("eos" if c.finished else "budget")
        out[i].append(BudgetedCompletion(h + a.text, c.n_tokens + a.n_tokens, a.finished, by, c.n_tokens, a.n_tokens))
    return out


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
    budget: ReasoningBudget | None = None  # reasoning models: budgeted decoding (generate_budgeted)


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
            **({"budget": asdict(job.budget)} if job.budget else {}),
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
            if job.budget:
                outs = generate_budgeted(backend, reqs, params, job.budget, progress=bar.update)
            else:
                outs = backend.generate(reqs, params, progress=bar.update)
            rows = []
            for r, comps in zip(chunk, outs):
                for j, c in enumerate(comps):
                    row = {
                        "prompt_id": r["id"],
                        "sample": j,
                        "response": c.text,
                        "n_tokens": c.n_tokens,
                        "finished": c.finished,
                        "model": job.model_name,
                        "evalset": job.evalset,
                        "mode": job.mode,
                    }
                    if isinstance(c, BudgetedCompletion):
                        row |= {
                            "reasoning_closed": c.closed_by,
                            "reasoning_tokens": c.reasoning_tokens,
                            "answer_tokens": c.answer_tokens,
                        }
                    rows.append(row)
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
