"""Sharded, resumable generation runs: one (model, prompt set, decoding mode) job written as
JSONL shards under a content key, then merged; several such runs of one model share one loaded
backend (:func:`run_generations`). Decoding itself is a backend's job (``srg.backends``)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from srg.backends import Backend, Completion, Request, SamplingParams, make_backend
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

    @property
    def opening(self) -> str:
        """The assistant prefill of the reasoning step."""
        return f"{self.open_tag}\n"

    def answer_prefill(self, reasoning: str) -> str:
        """The assistant prefill of the answer step: the reasoning (stripped), closed."""
        return f"{self.opening}{reasoning.strip()}\n{self.close_tag}\n"


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


def assemble_budgeted(reasoning: Completion, answer: Completion, budget: ReasoningBudget) -> BudgetedCompletion:
    """One budgeted output from its reasoning step (stopped at the closing tag) and its answer
    step, and who closed the block."""
    closed = reasoning.hit_stop if reasoning.hit_stop is not None else reasoning.finished
    by = "model" if closed else ("eos" if reasoning.finished else "budget")
    return BudgetedCompletion(
        budget.answer_prefill(reasoning.text) + answer.text,
        reasoning.n_tokens + answer.n_tokens,
        answer.finished,
        by,
        reasoning.n_tokens,
        answer.n_tokens,
    )


def generate_budgeted(
    backend: Backend, requests: Sequence[Request], params: SamplingParams, budget: ReasoningBudget, progress=None
) -> list[list[BudgetedCompletion]]:
    """n budgeted reasoning outputs per request: a backend with its own ``generate_budgeted``
    (``hf``: one pass, nothing prefilled twice) runs it; any other takes two calls
    (:func:`generate_budgeted_two_calls`)."""
    native = getattr(backend, "generate_budgeted", None)
    if native is not None:
        return native(requests, params, budget, progress)
    return generate_budgeted_two_calls(backend, requests, params, budget, progress)


def generate_budgeted_two_calls(
    backend: Backend, requests: Sequence[Request], params: SamplingParams, budget: ReasoningBudget, progress=None
) -> list[list[BudgetedCompletion]]:
    """Budgeted decoding with any backend (an assistant prefill and stop strings are all it
    needs): the reasoning call (opening tag prefilled, stopped at the closing tag or the
    reasoning budget), then one answer call per output, on the closed block, with the answer
    budget."""
    from dataclasses import replace

    think = replace(params, max_new_tokens=budget.reasoning_tokens, stop=(budget.close_tag,))
    first = backend.generate([replace(r, prefill=r.prefill + budget.opening) for r in requests], think, progress)
    flat = [(i, c) for i, comps in enumerate(first) for c in comps]
    answer = replace(params, n=1, max_new_tokens=budget.answer_tokens, stop=())
    answers = backend.generate(
        [replace(requests[i], prefill=requests[i].prefill + budget.answer_prefill(c.text)) for i, c in flat], answer
    )
    out: list[list[BudgetedCompletion]] = [[] for _ in requests]
    for (i, c), (a,) in zip(flat, answers):
        out[i].append(assemble_budgeted(c, a, budget))
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

    @classmethod
    def from_params(
        cls, params: dict, *, prompts: str, out: str, model_path: str, model_name: str, evalset: str, mode: str
    ) -> GenerationJob:
        """A job from the DAG's generation params (``sampling``, ``backend``, ``backend_options``,
        ``shard_size``, optional ``budget``): what the ``generate`` rule and the training gate pass."""
        return cls(
            prompts=prompts,
            out=out,
            model_path=model_path,
            model_name=model_name,
            evalset=evalset,
            mode=mode,
            sampling=SamplingParams(**params["sampling"]),
            backend=params["backend"],
            backend_options=params.get("backend_options", {}),
            shard_size=params["shard_size"],
            budget=ReasoningBudget(**params["budget"]) if params.get("budget") else None,
        )


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
    """Generate every missing shard of one job, then merge into ``job.out`` (:func:`run_generations`)."""
    return run_generations([job], log=log, backend=backend)[0]


@dataclass
class _Shard:
    """One missing shard of a job: its records and where it goes."""

    job: int
    index: int
    records: list[dict]
    path: Path


def _rows(job: GenerationJob, records: list[dict], outs: list[list]) -> list[dict]:
    """Output rows of one shard: one per (prompt, sample)."""
    rows = []
    for r, comps in zip(records, outs):
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
    return rows


def _calls(jobs: Sequence[GenerationJob], shards: list[_Shard]) -> list[list[_Shard]]:
    """Group missing shards into backend calls. A sampled shard is its own call (its seed is the
    job's seed + shard index, so its samples never depend on which other shards were missing).
    Greedy shards of jobs with the same decoding settings share calls of up to ``shard_size``
    prompts: a continuous-batching backend keeps its batch full across the sets instead of
    draining it at the end of every small set, and a killed run loses at most one call."""
    calls: list[list[_Shard]] = []
    open_calls: dict[str, list[_Shard]] = {}
    for sh in shards:
        job = jobs[sh.job]
        if not job.sampling.greedy:
            calls.append([sh])
            continue
        key = content_hash({"sampling": asdict(job.sampling), "budget": asdict(job.budget) if job.budget else None})
        call = open_calls.get(key)
        if call is None or sum(len(x.records) for x in call) + len(sh.records) > job.shard_size:
            call = open_calls[key] = []
            calls.append(call)
        call.append(sh)
    return calls


def run_generations(jobs: Sequence[GenerationJob], log=print, backend: Backend | None = None) -> list[dict]:
    """Run several jobs of one model and backend in one process: the backend (model load, and
    the process's imports before it) is built once, when the first missing shard needs it, and
    shared; greedy shards of several jobs are decoded together (:func:`_calls`); each job keeps
    its own content-keyed shards and output, so a changed prompt set regenerates only its own
    shards (the shards stay after the merge, so an unchanged set is merged again without
    generating). Returns each job's statistics; ``wall_s`` is the whole run's."""
    from tqdm.auto import tqdm

    if not jobs:
        return []
    first = jobs[0]
    for j in jobs[1:]:
        if (j.model_path, j.backend, j.backend_options) != (first.model_path, first.backend, first.backend_options):
            raise ValueError(f"{j.out}: jobs of one run must share model path, backend and backend options")
    t0 = time.perf_counter()
    dirs, missing, new_tokens = [], [], [0] * len(jobs)
    for k, job in enumerate(jobs):
        recs = read_jsonl(job.prompts)
        if not recs:
            raise ValueError(f"prompt set {job.prompts} is empty")
        d = shard_dir_for(job.out, shard_key(job))  # also drops stale shards of other keys
        n_shards = math.ceil(len(recs) / job.shard_size)
        todo = [i for i in range(n_shards) if not (d / f"{i:05d}.jsonl").exists()]
        log(
            f"{job.model_name}/{job.evalset}/{job.mode}: {len(recs)} prompts x n={job.sampling.n}, "
            f"{n_shards} shards ({n_shards - len(todo)} already done)"
        )
        dirs.append((d, n_shards, len(todo)))
        missing += [
            _Shard(k, i, recs[i * job.shard_size : (i + 1) * job.shard_size], d / f"{i:05d}.jsonl") for i in todo
        ]
    if missing:
        backend = backend or make_backend(first.backend, model_path=first.model_path, **first.backend_options)
        bar = tqdm(
            total=sum(len(sh.records) * jobs[sh.job].sampling.n for sh in missing),
            desc=f"{first.model_name}/{first.mode}",
            unit="seq",
            mininterval=5,
        )
        for call in _calls(jobs, missing):
            job = jobs[call[0].job]
            params = SamplingParams(**{**asdict(job.sampling), "seed": job.sampling.seed + call[0].index})
            reqs = [Request(r["prompt"], (r.get("meta") or {}).get("system")) for sh in call for r in sh.records]
            if job.budget:
                outs = generate_budgeted(backend, reqs, params, job.budget, progress=bar.update)
            else:
                outs = backend.generate(reqs, params, progress=bar.update)
            for sh in call:
                rows = _rows(jobs[sh.job], sh.records, outs[: len(sh.records)])
                write_jsonl(sh.path, rows)
                new_tokens[sh.job] += sum(r["n_tokens"] for r in rows)
                outs = outs[len(sh.records) :]
        bar.close()
    wall = round(time.perf_counter() - t0, 2)
    stats = []
    for job, (d, n_shards, n_todo), tokens in zip(jobs, dirs, new_tokens):
        merged = [row for i in range(n_shards) for row in read_jsonl(d / f"{i:05d}.jsonl")]
        write_jsonl(job.out, merged)
        stats.append(
            {
                "rows": len(merged),
                "generated_tokens": tokens,
                "wall_s": wall,
                "resumed_shards": n_shards - n_todo,
            }
        )
    return stats
