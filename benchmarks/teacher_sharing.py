"""The scaffolded teacher's three ways of asking for its lines, on the DAG's own teacher prompts.

    python benchmarks/teacher_sharing.py [--results results] [--queries 16] [--threads 1]
                                         [--out results/benchmarks/teacher_sharing.json]

Without ``chain`` every guideline line of a query is written from the query alone, so
- ``per_candidate`` (before session 11): one request per candidate and line; emulated exactly by
  repeating each teacher record ``k`` times with ``k = 1``;
- ``shared_requests``: the ``k`` candidates of a query share one request (``k`` x
  ``line_samples`` samples, one prefill per query and line);
- ``branches`` (what the DAG runs on the ``hf`` backend): ``HFBackend.generate_branches``
  prefills each query once and reuses its KV cache for every guideline's header.
All run the same settings (``config/default.yaml``'s ``synthesis.scaffold``) on the first
``--queries`` teacher prompts (half harmful, half benign). The JSON reports wall time, generated
tokens and the usable-line rate per guideline of each; ``shared_requests`` makes the same rows in
the same order as ``per_candidate``, so its seeded draws and candidates are identical
(``identical_shared_vs_per_candidate``); ``branches`` draws in another order (same distribution).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def run(backend, records, rt, guidelines, settings, fmt) -> dict:
    from srg.scaffold import candidates_for_rt_rows, line_yield

    t0 = time.perf_counter()
    rows = candidates_for_rt_rows(backend, records, rt, guidelines, settings, fmt)
    wall = time.perf_counter() - t0
    return {
        "responses": [r["response"] for r in rows],
        "wall_s": round(wall, 1),
        "candidates": len(rows),
        "generated_tokens": sum(r["n_tokens"] for r in rows),
        "ok_rate": {g: round(d["ok_rate"], 3) for g, d in line_yield(rows).items()},
    }


def main(argv=None) -> int:
    import dataclasses

    import torch
    import yaml

    from srg.backends import make_backend
    from srg.config import validate
    from srg.io import read_jsonl, write_json
    from srg.models import base_model_ref, resolve_dtype
    from srg.provenance import machine_info
    from srg.reasoning import ReasoningFormat
    from srg.scaffold import ScaffoldSettings
    from srg.synthesis import load_guidelines

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--queries", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = validate(yaml.safe_load((ROOT / "config" / "default.yaml").read_text()))
    s = cfg["synthesis"]
    rt = {r["id"]: r for r in read_jsonl(Path(a.results) / "data" / "rt_train.jsonl")}
    prompts = max((Path(a.results) / "synthesis" / "teacher").glob("*/prompts.jsonl"), key=lambda p: len(p.read_text()))
    teacher = read_jsonl(prompts)
    by_kind = {k: [r for r in teacher if rt[r["id"]]["kind"] == k] for k in ("harmful", "benign")}
    records = by_kind["harmful"][: a.queries // 2] + by_kind["benign"][: a.queries - a.queries // 2]
    guidelines = load_guidelines(ROOT / "config" / "guidelines.yaml")
    guidelines = [g for g in guidelines if g.id in cfg["guidelines"]["use"]] if cfg["guidelines"]["use"] else guidelines
    base = base_model_ref(cfg["model"]["base"], cfg["paths"]["resources"])
    dtype = resolve_dtype(cfg["model"]["dtype"])
    backend = make_backend("hf", model_path=base.path, dtype=dtype, batch_size=cfg["generation"]["batch_size"])
    knobs = {**s["scaffold"], "k": s["k"], "temperature": s["temperature"], "top_p": s["top_p"], "seed": cfg["seed"]}
    settings = ScaffoldSettings(**knobs)
    fmt = ReasoningFormat(**cfg["reasoning"])

    class OneLineAtATime:
        """The backend without generate_branches: one call per guideline line."""

        def generate(self, *args, **kwargs):
            return backend.generate(*args, **kwargs)

    branches = run(backend, records, rt, guidelines, settings, fmt)
    shared = run(OneLineAtATime(), records, rt, guidelines, settings, fmt)
    repeated = [r for r in records for _ in range(settings.k)]
    per_candidate = run(OneLineAtATime(), repeated, rt, guidelines, dataclasses.replace(settings, k=1), fmt)
    branches.pop("responses")
    same = shared.pop("responses") == per_candidate.pop("responses")
    out = {
        "teacher_prompts": str(prompts),
        "queries": len(records),
        "settings": dataclasses.asdict(settings),
        "threads": a.threads,
        "dtype": dtype,
        "branches": branches,
        "shared_requests": shared,
        "per_candidate": per_candidate,
        "speedup_branches": round(per_candidate["wall_s"] / branches["wall_s"], 2),
        "speedup_shared_requests": round(per_candidate["wall_s"] / shared["wall_s"], 2),
        "identical_shared_vs_per_candidate": same,
        "machine": machine_info(cfg),
    }
    path = Path(a.out or Path(a.results) / "benchmarks" / "teacher_sharing.json")
    write_json(path, out)
    print(json.dumps({k: out[k] for k in out if k not in ("machine", "settings")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
