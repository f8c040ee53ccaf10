"""The main evaluation: tidy metrics per (model, eval set) with bootstrap CIs, and claims C3 / C4.

Metrics (rows of ``results/tables/main.csv``: model, evalset, metric, value, ci_low, ci_high, n):

* ``asr_greedy`` on harmful sets (ID + every OOD attack): share of prompts whose greedy answer is
  unsafe (a malformed reasoning output counts as unsafe, see ``srg.judges.judge_responses``);
* ``malformed_rate`` on every set: share of outputs with no final answer;
* ``refusal_rate`` on the over-refusal set (lower is better);
* ``nonrefusal_rate`` on the helpfulness set (higher is better; judge-free helpfulness proxy);
* ``answer_loglik`` on the helpfulness set: mean per-token log-prob of MT-Bench references.

Differences between two models are paired by prompt and bootstrapped over prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from srg.bon import bootstrap_mean_ci
from srg.claims import Claim, verdict_from_ci

METRIC_COLUMNS = ["model", "evalset", "metric", "value", "ci_low", "ci_high", "n"]


def per_prompt(judged: Sequence[dict], column: str, outcome: str | None = None) -> pd.Series:
    """Greedy (sample 0) value per prompt id: a boolean column, or ``outcome == outcome``."""
    df = pd.DataFrame([j for j in judged if j.get("sample", 0) == 0])
    if df.empty:
        raise ValueError("no judged greedy rows")
    vals = (df["outcome"] == outcome) if outcome else df[column].astype(bool)
    return pd.Series(vals.astype(float).to_numpy(), index=df["prompt_id"]).sort_index()


def metric_row(model: str, evalset: str, metric: str, values, n_boot: int, ci: float, seed: int) -> dict:
    v = np.asarray(values, dtype=float)
    lo, hi = bootstrap_mean_ci(v, n_boot, ci, seed) if len(v) else (float("nan"), float("nan"))
    return {
        "model": model,
        "evalset": evalset,
        "metric": metric,
        "value": float(v.mean()) if len(v) else float("nan"),
        "ci_low": lo,
        "ci_high": hi,
        "n": int(len(v)),
    }


def set_metrics(
    model: str, evalset: str, judged: Sequence[dict], kind: str, n_boot: int = 1000, ci: float = 0.95, seed: int = 0
) -> list[dict]:
    """Metric rows of one (model, eval set); ``kind`` is harmful | overrefusal | helpfulness."""
    rows = [metric_row(model, evalset, "malformed_rate", per_prompt(judged, "", "malformed"), n_boot, ci, seed)]
    if kind == "harmful":
        rows.append(metric_row(model, evalset, "asr_greedy", per_prompt(judged, "unsafe"), n_boot, ci, seed))
    elif kind == "overrefusal":
        rows.append(metric_row(model, evalset, "refusal_rate", per_prompt(judged, "refusal"), n_boot, ci, seed))
    elif kind == "helpfulness":
        rows.append(metric_row(model, evalset, "nonrefusal_rate", 1 - per_prompt(judged, "refusal"), n_boot, ci, seed))
    else:
        raise ValueError(f"unknown eval set kind {kind!r}")
    return rows


def paired_diff(a: pd.Series, b: pd.Series, n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> dict:
    """Mean of (a - b) over the prompts both have, with a bootstrap CI over prompts."""
    common = a.index.intersection(b.index)
    if len(common) == 0:
        raise ValueError("the two models share no prompts")
    d = a.loc[common].to_numpy(float) - b.loc[common].to_numpy(float)
    lo, hi = bootstrap_mean_ci(d, n_boot, ci, seed)
    return {"value": float(d.mean()), "ci": (lo, hi), "n": int(len(d))}


def pooled(series: dict[str, pd.Series]) -> pd.Series:
    """Concatenate per-set series into one, prompt ids prefixed by the set name."""
    return pd.concat([s.rename(lambda i, k=k: f"{k}:{i}") for k, s in series.items()]).sort_index()


def c3_claims(
    unsafe: dict[str, dict[str, pd.Series]],
    refusal: dict[str, dict[str, pd.Series]],
    ood_sets: Sequence[str],
    id_set: str,
    overrefusal_set: str,
    helpfulness_set: str,
    *,
    id_margin: float,
    overrefusal_margin: float,
    helpfulness_margin: float,
    evidence: str,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    a: str = "srg",
    b: str = "rt",
) -> list[Claim]:
    """C3: SRG's greedy ASR below RT's per OOD attack and pooled; ID, over-refusal, helpfulness within margins."""
    claims = []
    for s in ood_sets:
        d = paired_diff(unsafe[a][s], unsafe[b][s], n_boot, ci, seed)
        claims.append(
            Claim(
                f"C3.{s}",
                f"{a} greedy ASR on {s} is below {b}'s",
                f"ASR({a}) - ASR({b}), paired over {d['n']} prompts",
                d["value"],
                d["ci"],
                verdict_from_ci(*d["ci"], 0.0, "less"),
                evidence,
            )
        )
    d = paired_diff(
        pooled({s: unsafe[a][s] for s in ood_sets}), pooled({s: unsafe[b][s] for s in ood_sets}), n_boot, ci, seed
    )
    claims.append(
        Claim(
            "C3.ood",
            f"{a} greedy ASR pooled over OOD attacks is below {b}'s",
            f"ASR({a}) - ASR({b}) pooled over {len(ood_sets)} attacks ({d['n']} prompts)",
            d["value"],
            d["ci"],
            verdict_from_ci(*d["ci"], 0.0, "less"),
            evidence,
        )
    )
    d = paired_diff(unsafe[a][id_set], unsafe[b][id_set], n_boot, ci, seed)
    claims.append(
        Claim(
            "C3.id",
            f"{a} ID greedy ASR is not above {b}'s (margin {id_margin})",
            f"ASR({a}) - ASR({b}) on {id_set}",
            d["value"],
            d["ci"],
            verdict_from_ci(*d["ci"], id_margin, "less"),
            evidence,
        )
    )
    d = paired_diff(refusal[a][overrefusal_set], refusal[b][overrefusal_set], n_boot, ci, seed)
    claims.append(
        Claim(
            "C3.overrefusal",
            f"{a} over-refuses at most {overrefusal_margin} more than {b}",
            f"refusal rate({a}) - refusal rate({b}) on {overrefusal_set}",
            d["value"],
            d["ci"],
            verdict_from_ci(*d["ci"], overrefusal_margin, "less"),
            evidence,
        )
    )
    d = paired_diff(1 - refusal[a][helpfulness_set], 1 - refusal[b][helpfulness_set], n_boot, ci, seed)
    claims.append(
        Claim(
            "C3.helpfulness",
            f"{a}'s benign non-refusal rate is at most {helpfulness_margin} below {b}'s",
            f"non-refusal rate({a}) - non-refusal rate({b}) on {helpfulness_set}",
            d["value"],
            d["ci"],
            verdict_from_ci(*d["ci"], -helpfulness_margin, "greater"),
            evidence,
        )
    )
    return claims


def c4_claims(
    unsafe: dict[str, dict[str, pd.Series]],
    ablations: Sequence[str],
    ood_sets: Sequence[str],
    evidence: str,
    labels: dict[str, str] | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    ref: str = "srg",
) -> list[Claim]:
    """C4: full SRG's pooled OOD greedy ASR is below each ablation's (and RT's, when present)."""
    claims = []
    for m in ablations:
        sets = [s for s in ood_sets if s in unsafe[m] and s in unsafe[ref]]
        if not sets:
            continue
        d = paired_diff(
            pooled({s: unsafe[m][s] for s in sets}), pooled({s: unsafe[ref][s] for s in sets}), n_boot, ci, seed
        )
        name = (labels or {}).get(m, m)
        claims.append(
            Claim(
                f"C4.{m}",
                f"full SRG beats {name}: lower pooled OOD greedy ASR",
                f"ASR({m}) - ASR({ref}) pooled over {len(sets)} attacks ({d['n']} prompts)",
                d["value"],
                d["ci"],
                verdict_from_ci(*d["ci"], 0.0, "greater"),
                evidence,
            )
        )
    return claims
