"""Judge-free helpfulness proxy: log-likelihood of MT-Bench reference answers.

For each helpfulness prompt with a reference answer (``meta.reference``), the mean per-token
log-probability the model assigns to the reference as its reply. A reasoning model first gets
its own greedy reasoning block (from its helpfulness generations), so the reference is scored
where the model would put its final answer; when that output has no closed reasoning block an
empty one is used. Higher is better; compare models on the same prompts.
"""

from __future__ import annotations

import argparse
import json
import sys

from srg.io import read_jsonl, write_json
from srg.reasoning import ReasoningFormat, parse


def answer_prefixes(records: list[dict], generations: list[dict] | None, fmt: ReasoningFormat | None) -> dict[str, str]:
    """Text placed before the reference answer: '' for plain models, the reasoning block otherwise."""
    if fmt is None:
        return {r["id"]: "" for r in records}
    own = {g["prompt_id"]: g["response"] for g in generations or [] if g.get("sample", 0) == 0}
    out = {}
    for r in records:
        p = parse(own.get(r["id"], ""), fmt)
        reasoning = p.reasoning if p.reasoning is not None and p.status != "unclosed" else ""
        out[r["id"]] = f"{fmt.open_tag}\n{reasoning}\n{fmt.close_tag}\n"
    return out


def reference_loglik(
    model_path: str,
    records: list[dict],
    prefixes: dict[str, str],
    system_prompt: str | None = None,
    dtype: str = "bfloat16",
) -> list[dict]:
    """Mean and total log-probability of each record's reference answer (teacher-forced)."""
    import torch

    from srg import models

    tok = models.load_tokenizer(model_path)
    model = models.load_model(model_path, dtype)
    rows = []
    for r in records:
        ref = (r.get("meta") or {}).get("reference")
        if not ref:
            continue
        context = models.chat_prompt(tok, r["prompt"], system_prompt) + prefixes.get(r["id"], "")
        ctx_ids = tok(context, add_special_tokens=False)["input_ids"]
        ans_ids = tok(ref.strip(), add_special_tokens=False)["input_ids"]
        ids = torch.tensor([ctx_ids + ans_ids], device=model.device)
        with torch.inference_mode():
            logits = model(input_ids=ids).logits.float()
        logp = torch.log_softmax(logits[0, len(ctx_ids) - 1 : -1], dim=-1)
        tok_lp = logp.gather(1, ids[0, len(ctx_ids) :, None])[:, 0]
        rows.append(
            {
                "prompt_id": r["id"],
                "n_tokens": len(ans_ids),
                "sum_logprob": float(tok_lp.sum()),
                "mean_logprob": float(tok_lp.mean()),
            }
        )
    return rows


PARAM_KEYS = frozenset({"reasoning", "system_prompt", "dtype", "threads"})  # --params the rule may pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--model-path", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--generations")
    ap.add_argument("--params", default="{}")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    p = json.loads(a.params)
    unknown = sorted(set(p) - PARAM_KEYS)
    if unknown:
        ap.error(f"unknown --params keys {unknown}; allowed: {sorted(PARAM_KEYS)}")
    records = read_jsonl(a.prompts)
    fmt = ReasoningFormat(**p["reasoning"]) if p.get("reasoning") else None
    gens = read_jsonl(a.generations) if a.generations else None
    if p.get("threads"):
        import torch

        torch.set_num_threads(p["threads"])
    rows = reference_loglik(
        a.model_path, records, answer_prefixes(records, gens, fmt), p.get("system_prompt"), p.get("dtype", "bfloat16")
    )
    if not rows:
        raise ValueError(f"{a.prompts}: no prompt has a reference answer (meta.reference)")
    write_json(
        a.out,
        {
            "model": a.model,
            "n": len(rows),
            "rows": rows,
            "mean_logprob": sum(r["mean_logprob"] for r in rows) / len(rows),
        },
    )
    print(f"{a.model}: {len(rows)} references, mean log-prob {sum(r['mean_logprob'] for r in rows) / len(rows):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
