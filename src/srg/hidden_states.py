"""Hidden states of prompts, for the domain-adaptation analysis (``srg.probing``).

For each prompt we run one forward pass over the exact text the model sees at generation time
(its chat template with ``add_generation_prompt=True``, the record's ``meta.system`` or the run's
system prompt) and keep, at every layer (``hidden_states[0]`` = embeddings, ``[L]`` = the last
block's output after the final norm, as transformers returns it):

* ``last``: the state of the last prompt token, i.e. the final token of the generation prompt
  (the position whose next-token distribution starts the answer);
* ``mean``: the mean over the real (non-pad) prompt tokens.

Both are stored as float16 arrays ``n_prompts x (L+1) x d``. Batches are length-sorted and
left-padded with explicit position ids, so a prompt's states do not depend on its batch.
``run_extraction`` writes resumable, content-keyed shards and merges them into one compressed
``.npz`` (arrays ``last``, ``mean``, ``ids`` and a JSON string ``meta``); the shards are kept, so a
rerun of a job whose other sets changed extracts only the changed ones.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from srg.config import content_hash
from srg.io import atomic_path, read_jsonl, shard_dir_for
from srg.models import left_pad

__all__ = [
    "encode_prompts",
    "extract_hidden_states",
    "run_extraction",
    "shard_dir",
    "load_states",
    "load_meta",
    "main",
]

F16_MAX = float(np.finfo(np.float16).max)


def _system_of(record: dict, default: str | None) -> str | None:
    from srg.models import merge_system

    return merge_system(default, (record.get("meta") or {}).get("system"))


def encode_prompts(
    tokenizer, records: Sequence[dict], max_prompt_tokens: int = 1024, system_prompt: str | None = None
) -> tuple[list[list[int]], int]:
    """Token ids of each record's chat prompt (generation prompt included) and the number of
    prompts truncated to ``max_prompt_tokens`` (cut in the middle of the user text, as in generation)."""
    from srg.models import encode_chat

    out, truncated = [], 0
    for r in records:
        toks, cut = encode_chat(tokenizer, r["prompt"], _system_of(r, system_prompt), max_prompt_tokens)
        truncated += cut
        if not toks:
            raise ValueError(f"prompt {r.get('id')!r} encodes to zero tokens")
        out.append(toks)
    return out, truncated


def _layer_index(layers, n_states: int) -> list[int]:
    if layers in (None, "all"):
        return list(range(n_states))
    idx = [int(i) + n_states if int(i) < 0 else int(i) for i in layers]
    bad = [i for i in idx if not 0 <= i < n_states]
    if bad or not idx:
        raise ValueError(f"layers {layers!r} out of range for {n_states} hidden states")
    return idx


def _to_f16(a: np.ndarray) -> tuple[np.ndarray, int]:
    """float32 -> float16, clipping to the float16 range; returns the number of clipped values."""
    n_clip = int(np.count_nonzero(np.abs(a) > F16_MAX))
    return np.clip(a, -F16_MAX, F16_MAX).astype(np.float16), n_clip


def extract_hidden_states(
    model,
    tokenizer,
    records: Sequence[dict],
    batch_size: int = 16,
    layers: str | Sequence[int] = "all",
    max_prompt_tokens: int = 1024,
    system_prompt: str | None = None,
    progress: Callable[[int], None] | None = None,
    stats: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(last, mean)``: float16 arrays ``n x n_layers x d`` in record order.

    ``layers="all"`` keeps every hidden state (L+1: embeddings, then each block); a list keeps
    those indices (negative ones count from the end). Pooling is done in float32 and pads are
    excluded from the mean with a mask (never multiplied, so a NaN in a pad row cannot leak).
    ``stats`` (optional dict) receives ``truncated`` and ``clipped_f16`` counts.
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not records:
        raise ValueError("no records to extract")
    encoded, truncated = encode_prompts(tokenizer, records, max_prompt_tokens, system_prompt)
    n_states = model.config.num_hidden_layers + 1
    keep = _layer_index(layers, n_states)
    d = model.config.hidden_size
    last = np.zeros((len(encoded), len(keep), d), dtype=np.float16)
    mean = np.zeros_like(last)
    clipped = 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    device = next(model.parameters()).device
    keep_t = torch.tensor(keep, device=device)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        input_ids, mask = left_pad([encoded[i] for i in idx], pad, device)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: real tokens start at 0
        with torch.inference_mode():
            out = model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=position_ids,
                output_hidden_states=True,
                use_cache=False,
                logits_to_keep=1,  # the states are all we keep: no LM head over every position
            )
            hs = torch.stack(out.hidden_states, dim=1).index_select(1, keep_t).float()  # b x l x t x d
            last_b = hs[:, :, -1, :]  # left padding: the last column is every prompt's last token
            m = mask.bool()[:, None, :, None]
            summed = torch.where(m, hs, torch.zeros((), device=device)).sum(dim=2)
            mean_b = summed / mask.sum(-1).clamp(min=1)[:, None, None].float()
        lb, c1 = _to_f16(last_b.cpu().numpy())
        mb, c2 = _to_f16(mean_b.cpu().numpy())
        clipped += c1 + c2
        last[idx] = lb
        mean[idx] = mb
        if progress:
            progress(len(idx))
    if stats is not None:
        stats.update(truncated=truncated, clipped_f16=clipped)
    return last, mean


# --- sharded, resumable runs -------------------------------------------------------------------


def _records_key(records: Sequence[dict]) -> str:
    return content_hash([[r["id"], r["prompt"], (r.get("meta") or {}).get("system")] for r in records])


def shard_dir(out_npz: str | Path, key_obj: dict, create: bool = False) -> Path:
    """Hidden directory beside the output, named by a hash of everything that changes a shard
    (with ``create``: made, and shards of other keys removed; ``io.shard_dir_for``)."""
    return shard_dir_for(out_npz, content_hash(key_obj), create=create)


def _save_npz(path: Path, compressed: bool = False, **arrays) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: numpy adds no suffix
        (np.savez_compressed if compressed else np.savez)(fh, **arrays)


def run_extraction(
    prompts_jsonl: str | Path,
    model_path: str,
    out_npz: str | Path,
    model_name: str | None = None,
    dtype: str = "float32",
    batch_size: int = 16,
    max_prompt_tokens: int = 1024,
    max_prompts: int | None = None,
    shard_size: int = 64,
    layers: str | Sequence[int] = "all",
    system_prompt: str | None = None,
    threads: int = 0,
    model=None,
    tokenizer=None,
    log: Callable[[str], None] = print,
) -> dict:
    """Extract every missing shard and merge them into ``out_npz`` atomically (shards are kept).

    Records are the first ``max_prompts`` of the set (prompt sets are seeded-shuffled when built).
    ``model``/``tokenizer`` may be passed in (tests); otherwise they are loaded from ``model_path``.
    Returns run statistics.
    """
    from tqdm.auto import tqdm

    records = read_jsonl(prompts_jsonl)
    if max_prompts is not None:
        records = records[:max_prompts]
    if not records:
        raise ValueError(f"prompt set {prompts_jsonl} is empty")
    ids = [str(r["id"]) for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{prompts_jsonl}: duplicate prompt ids")
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    opts = {
        "dtype": dtype,
        "max_prompt_tokens": max_prompt_tokens,
        "system_prompt": system_prompt,
        "layers": layers if layers == "all" else [int(i) for i in layers],
    }
    from srg.models import model_fingerprint

    shards = shard_dir(
        out_npz,
        {"model": model_fingerprint(model_path), "records": _records_key(records), "opts": opts, "shard": shard_size},
        create=True,
    )
    n_shards = math.ceil(len(records) / shard_size)
    todo = [i for i in range(n_shards) if not (shards / f"{i:05d}.npz").exists()]
    name = model_name or Path(str(model_path)).name
    set_name = Path(prompts_jsonl).stem
    log(f"{name}/{set_name}: {len(records)} prompts, {n_shards} shards ({n_shards - len(todo)} already done)")
    t0 = time.perf_counter()
    truncated = clipped = 0
    if todo:
        import torch

        from srg import models

        if threads:
            torch.set_num_threads(threads)
        tokenizer = tokenizer or models.load_tokenizer(str(model_path))
        model = model or models.load_model(str(model_path), dtype)
        todo_n = sum(len(records[i * shard_size : (i + 1) * shard_size]) for i in todo)
        bar = tqdm(total=todo_n, desc=f"hidden {name}/{set_name}", unit="prompt", mininterval=5)
        for i in todo:
            chunk = records[i * shard_size : (i + 1) * shard_size]
            st: dict = {}
            last, mean = extract_hidden_states(
                model, tokenizer, chunk, batch_size, layers, max_prompt_tokens, system_prompt, bar.update, st
            )
            truncated += st["truncated"]
            clipped += st["clipped_f16"]
            _save_npz(
                shards / f"{i:05d}.npz",
                last=last,
                mean=mean,
                ids=np.array([str(r["id"]) for r in chunk]),
                stats=np.array([st["truncated"], st["clipped_f16"]]),
            )
        bar.close()
    parts = [np.load(shards / f"{i:05d}.npz") for i in range(n_shards)]
    last = np.concatenate([p["last"] for p in parts])
    mean = np.concatenate([p["mean"] for p in parts])
    got_ids = [str(x) for p in parts for x in p["ids"]]
    if got_ids != ids:
        raise RuntimeError(f"{shards}: shard ids do not match the prompt set (stale shards?)")
    truncated = int(sum(int(p["stats"][0]) for p in parts))
    clipped = int(sum(int(p["stats"][1]) for p in parts))
    n_states = last.shape[1]
    if model is not None:
        n_blocks = int(model.config.num_hidden_layers)
    else:  # every shard was resumed: the model was never loaded
        n_blocks = n_states - 1 if layers == "all" else None
    meta = {
        "model": name,
        "model_path": str(model_path),
        "prompts": str(prompts_jsonl),
        "n_prompts": len(ids),
        "num_hidden_layers": n_blocks,
        "layers": list(range(n_states)) if layers == "all" else opts["layers"],
        "layer_note": "index 0 = embeddings, i = output of block i (last one after the final norm)",
        "hidden_size": int(last.shape[2]),
        "dtype": dtype,
        "storage_dtype": "float16",
        "pooling": {
            "last": "last prompt token (end of the generation prompt)",
            "mean": "mean over non-pad prompt tokens",
        },
        "max_prompt_tokens": max_prompt_tokens,
        "max_prompts": max_prompts,
        "system_prompt": system_prompt,
        "truncated": truncated,
        "clipped_f16": clipped,
    }
    _save_npz(Path(out_npz), compressed=True, last=last, mean=mean, ids=np.array(ids), meta=np.array(json.dumps(meta)))
    for p in parts:
        p.close()
    # the shards stay (as generation's do): when the job reruns because another of its sets changed,
    # this set is merged from them instead of extracted again
    wall = time.perf_counter() - t0
    done = sum(len(records[i * shard_size : (i + 1) * shard_size]) for i in todo)
    stats = {
        "prompts": len(ids),
        "extracted": done,
        "resumed_shards": n_shards - len(todo),
        "wall_s": round(wall, 2),
        "prompts_per_s": round(done / wall, 2) if done and wall > 0 else None,
        "truncated": truncated,
        "clipped_f16": clipped,
        "shape": list(last.shape),
    }
    log(json.dumps(stats))
    return stats


def load_states(npz: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, last, mean)`` from a merged extraction file (ids as a str array)."""
    with np.load(npz, allow_pickle=False) as f:
        return f["ids"].astype(str), f["last"], f["mean"]


def load_meta(npz: str | Path) -> dict:
    with np.load(npz, allow_pickle=False) as f:
        return json.loads(str(f["meta"]))


def main(argv: Sequence[str] | None = None) -> int:
    """One model, one or more prompt sets (``--prompts`` and ``--out`` pair up in order): the model
    is loaded once for all of them, so a job pays process start, imports and load only once."""
    ap = argparse.ArgumentParser(prog="python -m srg.hidden_states", description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", required=True, nargs="+", help="prompt sets (JSONL records)")
    ap.add_argument("--model-path", required=True)
    ap.add_argument("--model", default=None, help="model name for logs and meta")
    ap.add_argument("--out", required=True, nargs="+", help="output .npz, one per prompt set")
    ap.add_argument("--params", default="{}", help="JSON: run_extraction keyword arguments")
    args = ap.parse_args(argv)
    if len(args.prompts) != len(args.out):
        ap.error(f"{len(args.prompts)} --prompts but {len(args.out)} --out: give one output per prompt set")
    params = json.loads(args.params)
    allowed = {
        "dtype",
        "batch_size",
        "max_prompt_tokens",
        "max_prompts",
        "shard_size",
        "layers",
        "system_prompt",
        "threads",
    }
    unknown = sorted(set(params) - allowed)
    if unknown:
        ap.error(f"unknown --params keys {unknown}; allowed: {sorted(allowed)}")
    loaded: dict = {}
    if len(args.prompts) > 1:
        import torch

        from srg import models

        if params.get("threads"):
            torch.set_num_threads(params["threads"])
        loaded = {
            "model": models.load_model(args.model_path, params.get("dtype", "float32")),
            "tokenizer": models.load_tokenizer(args.model_path),
        }
    for prompts, out in zip(args.prompts, args.out):
        run_extraction(prompts, args.model_path, out, model_name=args.model, **params, **loaded)
    return 0


if __name__ == "__main__":
    sys.exit(main())
