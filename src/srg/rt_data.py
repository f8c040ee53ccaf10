"""Refusal-training (RT) data: harmful prompts -> a direct refusal, benign prompts -> a helpful answer.

Harmful targets are short refusals with varied wording (no reasoning), picked per prompt by a
seeded hash. Benign targets at embedded scale are the base model's own greedy answers, trimmed
to their last complete sentence when generation hit the token limit, and dropped when empty,
degenerate (repetitive) or themselves a refusal; at paper scale the teacher's answers come in
through the same function (any generations JSONL).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence

DEFAULT_REFUSALS = (
    "I can't help with that.",
    "Sorry, but I can't assist with that request.",
    "I cannot help with this request.",
    "I'm sorry, but I can't help with that.",
    "I won't help with that.",
    "Sorry, I can't provide assistance with that.",
    "I'm not able to help with this.",
    "I can't assist with that request.",
    "I'm sorry, I cannot do that.",
    "I'm unable to help with that request.",
    "I'm sorry, but I cannot provide that.",
    "I won't be able to assist with this request.",
)


def pick(options: Sequence[str], key: str, seed: int) -> str:
    """Deterministic, well-spread choice (independent of PYTHONHASHSEED)."""
    h = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest(), 16)
    return options[h % len(options)]


def trim_to_sentence(text: str) -> str:
    """Cut an unfinished answer after its last sentence end (., !, ?, or a newline)."""
    m = list(re.finditer(r"[.!?](?=\s|$)|\n", text))
    return text[: m[-1].end()].strip() if m else ""


def is_degenerate(text: str, n: int = 3, min_distinct: float = 0.5) -> bool:
    """True when most word n-grams repeat (loops like 'I'm ready. I'm ready. ...')."""
    words = text.split()
    if len(words) < 2 * n:
        return False
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) < min_distinct


def build_rt_rows(
    harmful: list[dict],
    benign: list[dict],
    benign_generations: list[dict],
    *,
    is_refusal,
    refusals: Sequence[str] | None = None,
    seed: int = 0,
    min_benign_chars: int = 20,
) -> tuple[list[dict], dict]:
    """RT training rows and their statistics (kept / dropped with reasons)."""
    refusals = tuple(refusals or DEFAULT_REFUSALS)
    rows = [
        {
            "id": f"rt-h-{r['id']}",
            "prompt": r["prompt"],
            "completion": pick(refusals, r["id"], seed),
            "system": (r.get("meta") or {}).get("system"),
            "source": r["source"],
            "kind": "harmful",
        }
        for r in harmful
    ]
    answers = {g["prompt_id"]: g for g in benign_generations if g.get("sample", 0) == 0}
    dropped: Counter = Counter()
    trimmed = 0
    for r in benign:
        g = answers.get(r["id"])
        if g is None:
            dropped["missing"] += 1
            continue
        text = g["response"].strip()
        if not g.get("finished", True):
            text, trimmed = trim_to_sentence(text), trimmed + 1
        if len(text) < min_benign_chars:
            dropped["empty_or_short"] += 1
        elif is_degenerate(text):
            dropped["degenerate"] += 1
        elif is_refusal(text):
            dropped["refusal"] += 1
        else:
            rows.append(
                {
                    "id": f"rt-b-{r['id']}",
                    "prompt": r["prompt"],
                    "completion": text,
                    "system": (r.get("meta") or {}).get("system"),
                    "source": r["source"],
                    "kind": "benign",
                }
            )
    n_benign = sum(r["kind"] == "benign" for r in rows)
    stats = {
        "n_rows": len(rows),
        "n_harmful": len(harmful),
        "n_benign_kept": n_benign,
        "n_benign_candidates": len(benign),
        "benign_trimmed": trimmed,
        "benign_dropped": dict(dropped),
        "refusal_templates": len(refusals),
        "refusal_template_counts": dict(Counter(r["completion"] for r in rows if r["kind"] == "harmful")),
        "mean_completion_chars": {
            k: round(
                sum(len(r["completion"]) for r in rows if r["kind"] == k) / max(1, sum(r["kind"] == k for r in rows)), 1
            )
            for k in ("harmful", "benign")
        },
    }
    if n_benign == 0:
        raise ValueError(f"RT data: every benign target was dropped ({dict(dropped)}); check the benign generations")
    return rows, stats
