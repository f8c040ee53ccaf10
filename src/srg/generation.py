"""Generation backends behind one interface, and sharded, resumable generation runs.

Backends: ``hf`` (transformers; batched, left padding, length-sorted batches, KV cache, and
for n > 1 one shared prefill per prompt whose cache is repeated n times), ``vllm`` and
``openai`` (registered by the paper-scale stages; import-guarded).
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from srg.config import content_hash
from srg.io import read_jsonl, shard_dir_for, write_jsonl


@dataclass(frozen=True)
class SamplingParams:
    """How to decode. ``greedy`` ignores temperature/top_p; top_k=0 means no top-k cut."""

    n: int = 1
    greedy: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1 or self.max_new_tokens < 1:
            raise ValueError(f"n and max_new_tokens must be >= 1, got {self.n}, {self.max_new_tokens}")
        if self.greedy and self.n != 1:
            raise ValueError("greedy decoding with n > 1 would repeat the same answer; use n=1")


@dataclass
class Completion:
    text: str
    n_tokens: int
    finished: bool  # stopped on EOS rather than the token limit


@dataclass(frozen=True)
class Request:
    """One prompt: the user turn and an optional system message."""

    user: str
    system: str | None = None


class Backend(Protocol):
    name: str

    def generate(self, requests: Sequence[Request], params: SamplingParams,
                 progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
        """n completions for each request, in request order."""


BACKENDS: dict[str, Callable[..., Backend]] = {}


def register_backend(name: str):
    def deco(factory):
        BACKENDS[name] = factory
        return factory
    return deco


def make_backend(name: str, **kwargs) -> Backend:
    if name not in BACKENDS and name in ("vllm", "openai"):
        try:  # these register themselves on import (gpu / api extras)
            __import__(f"srg.{name}_backend")
        except ImportError as exc:
            raise ValueError(f"generation backend {name!r} is not available here ({exc}); "
                             f"available: {sorted(BACKENDS)}") from exc
    if name not in BACKENDS:
        raise ValueError(f"unknown generation backend {name!r}; available: {sorted(BACKENDS)}")
    return BACKENDS[name](**kwargs)


@register_backend("hf")
class HFBackend:
    """transformers backend: length-bucketed batches, left padding, KV cache, shared prefill for n
    samples, and a decode loop that drops rows as they finish."""

    name = "hf"

    def __init__(self, model_path: str, dtype: str = "bfloat16", batch_size: int = 32,
                 max_prompt_tokens: int = 1024, system_prompt: str | None = None,
                 threads: int = 0, model=None, tokenizer=None, bucket_ratio: float = 0.6):
        import torch

        from srg import models

        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = tokenizer or models.load_tokenizer(model_path)
        self.model = model or models.load_model(model_path, dtype)
        self.batch_size = batch_size
        self.max_prompt_tokens = max_prompt_tokens
        self.default_system = system_prompt
        self.bucket_ratio = bucket_ratio  # see length_buckets
        self.truncated = 0

    def _encode(self, requests: Sequence[Request]) -> list[list[int]]:
        from srg.models import chat_prompt

        ids = []
        for r in requests:
            text = chat_prompt(self.tokenizer, r.user, r.system or self.default_system)
            toks = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(toks) > self.max_prompt_tokens:  # keep the end: the request and the generation prompt
                toks = toks[-self.max_prompt_tokens:]
                self.truncated += 1
            ids.append(toks)
        return ids

    def generate(self, requests, params, progress=None):
        import torch

        encoded = self._encode(requests)
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        results: list[list[Completion] | None] = [None] * len(encoded)
        for b, idx in enumerate(length_buckets([len(encoded[i]) for i in order], max(1, self.batch_size // params.n),
                                               self.bucket_ratio)):
            idx = [order[i] for i in idx]
            torch.manual_seed(params.seed * 1_000_003 + b)
            outs = self._generate_batch([encoded[i] for i in idx], params)
            for i, comps in zip(idx, outs):
                results[i] = comps
            if progress:
                progress(len(idx) * params.n)
        return results  # type: ignore[return-value]

    def _generate_batch(self, batch_ids: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        """Prefill once, repeat the cache n times, then decode only rows that have not hit EOS.

        Finished rows leave the batch (their KV cache rows are dropped), so no step is spent on
        padding after EOS; for n > 1 each prompt is prefilled once.
        """
        import torch

        from srg.models import left_pad

        tok, model = self.tokenizer, self.model
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        input_ids, mask = left_pad(batch_ids, tok.pad_token_id, model.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        n = params.n
        with torch.inference_mode():
            out = model(input_ids=input_ids, attention_mask=mask, position_ids=pos, use_cache=True)
            cache, logits = out.past_key_values, out.logits[:, -1, :]
            next_pos = pos[:, -1] + 1
            if n > 1:
                cache.batch_repeat_interleave(n)
                logits, mask, next_pos = (x.repeat_interleave(n, 0) for x in (logits, mask, next_pos))
            rows = logits.shape[0]
            active = torch.arange(rows, device=model.device)
            generated: list[list[int]] = [[] for _ in range(rows)]
            finished = [False] * rows
            for step in range(params.max_new_tokens):
                picked = pick_tokens(logits, params)
                keep = []
                for j, (r, t) in enumerate(zip(active.tolist(), picked.tolist())):
                    if t in eos_ids:
                        finished[r] = True
                    else:
                        generated[r].append(t)
                        keep.append(j)
                if not keep or step == params.max_new_tokens - 1:
                    break
                if len(keep) < len(active):
                    sel = torch.tensor(keep, device=model.device)
                    cache.batch_select_indices(sel)
                    active, mask, next_pos, picked = active[sel], mask[sel], next_pos[sel], picked[sel]
                mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
                out = model(input_ids=picked[:, None], attention_mask=mask, position_ids=next_pos[:, None],
                            past_key_values=cache, use_cache=True)
                logits, next_pos = out.logits[:, -1, :], next_pos + 1
        comps = [Completion(tok.decode(g, skip_special_tokens=True).strip(), len(g), f)
                 for g, f in zip(generated, finished)]
        return [comps[i * n:(i + 1) * n] for i in range(len(batch_ids))]


def length_buckets(lengths: Sequence[int], max_rows: int, ratio: float = 0.0) -> list[list[int]]:
    """Split positions of a length-sorted (descending) list into batches of at most ``max_rows``.

    A new batch also starts when a prompt is shorter than ``ratio`` x the batch's longest, so
    left padding stays below 1 - ratio of each row (``ratio`` 0 = fixed-size batches).
    """
    batches: list[list[int]] = []
    for i, n in enumerate(lengths):
        if not batches or len(batches[-1]) >= max_rows or n < ratio * lengths[batches[-1][0]]:
            batches.append([])
        batches[-1].append(i)
    return batches


def pick_tokens(logits, params: SamplingParams):
    """Next token per row: argmax (greedy), else temperature, top-k and top-p (nucleus) sampling."""
    import torch

    if params.greedy:
        return logits.argmax(-1)
    scores = logits.float() / params.temperature
    if params.top_k and params.top_k < scores.shape[-1]:
        kth = torch.topk(scores, params.top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
        probs = sorted_scores.softmax(-1)
        outside = probs.cumsum(-1) - probs >= params.top_p  # tokens after the nucleus is full
        sorted_scores = sorted_scores.masked_fill(outside, float("-inf"))
        scores = torch.full_like(scores, float("-inf")).scatter(-1, order, sorted_scores)
    return torch.multinomial(scores.softmax(-1), 1)[:, 0]


# --- sharded, resumable runs -------------------------------------------------------------------

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

    return content_hash({"sampling": asdict(job.sampling), "model": model_fingerprint(job.model_path),
                         "prompts": sha256_of(job.prompts), "backend": job.backend,
                         "opts": job.backend_options, "shard": job.shard_size})


def shard_dir(job: GenerationJob) -> Path:
    """Where the job's shards live: beside the output, named by ``shard_key``."""
    return shard_dir_for(job.out, shard_key(job), create=False)


def run_generation(job: GenerationJob, backend: Backend | None = None, log=print) -> dict:
    """Generate every missing shard, then merge into ``job.out``. Returns run statistics."""
    from tqdm.auto import tqdm

    records = read_jsonl(job.prompts)
    if not records:
        raise ValueError(f"prompt set {job.prompts} is empty")
    shards = shard_dir_for(job.out, shard_key(job))  # also drops stale shards of other keys
    n_shards = math.ceil(len(records) / job.shard_size)
    todo = [i for i in range(n_shards) if not (shards / f"{i:05d}.jsonl").exists()]
    log(f"{job.model_name}/{job.evalset}/{job.mode}: {len(records)} prompts x n={job.sampling.n}, "
        f"{n_shards} shards ({n_shards - len(todo)} already done)")
    t0, n_tokens = time.perf_counter(), 0
    if todo:
        backend = backend or make_backend(job.backend, model_path=job.model_path, **job.backend_options)
        remaining = sum(len(records[i * job.shard_size:(i + 1) * job.shard_size]) for i in todo)
        bar = tqdm(total=remaining * job.sampling.n, desc=f"{job.model_name}/{job.evalset}/{job.mode}",
                   unit="seq", mininterval=5)
        for i in todo:
            chunk = records[i * job.shard_size:(i + 1) * job.shard_size]
            reqs = [Request(r["prompt"], (r.get("meta") or {}).get("system")) for r in chunk]
            params = SamplingParams(**{**asdict(job.sampling), "seed": job.sampling.seed + i})
            outs = backend.generate(reqs, params, progress=bar.update)
            rows = []
            for r, comps in zip(chunk, outs):
                for j, c in enumerate(comps):
                    rows.append({"prompt_id": r["id"], "sample": j, "response": c.text,
                                 "n_tokens": c.n_tokens, "finished": c.finished,
                                 "model": job.model_name, "evalset": job.evalset, "mode": job.mode})
                    n_tokens += c.n_tokens
            write_jsonl(shards / f"{i:05d}.jsonl", rows)
        bar.close()
    merged = [row for i in range(n_shards) for row in read_jsonl(shards / f"{i:05d}.jsonl")]
    write_jsonl(job.out, merged)
    shutil.rmtree(shards)
    wall = time.perf_counter() - t0
    return {"rows": len(merged), "generated_tokens": n_tokens, "wall_s": round(wall, 2),
            "tokens_per_s": round(n_tokens / wall, 1) if todo and wall > 0 else None,
            "resumed_shards": n_shards - len(todo)}
