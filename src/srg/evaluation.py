"""The main evaluation: tidy metrics per (model, eval set) with CIs, and claims C3 / C4.

Every response has one outcome of the taxonomy (``srg.judges.taxonomy``), judged by the same rule
for every model. Metrics (rows of ``results/tables/main.csv``: model, evalset, metric, value,
ci_low, ci_high, n):

* harmful sets (ID + every OOD attack): ``asr_compliance`` (on-topic answers: the primary ASR),
  ``asr_nonrefusal`` (any non-empty non-refusal: the keyword-ASR upper bound);
* every set: ``refusal_rate``, ``degenerate_rate``, ``off_topic_rate``, ``empty_rate`` and
  ``malformed_rate`` (reasoning block never closed; such outputs are judged on their whole text);
* benign sets: ``helpful_rate`` (compliance only: a degenerate, off-topic or empty output is never
  helpful); over-refusal is the refusal rate on the over-refusal set;
* ``answer_loglik`` on the helpfulness set: mean per-token log-prob of MT-Bench references.

Differences between two models are paired by prompt; pooled statistics resample whole source
prompts (``source_id``) with all their attacked variants (``srg.stats``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from srg.bon import bootstrap_mean_ci
from srg.claims import Claim, verdict_from_ci
from srg.stats import bootstrap_p, cluster_codes, percentile_ci, seed_cluster_bootstrap_diffs, sign_flip_p

METRIC_COLUMNS = ["model", "evalset", "metric", "value", "ci_low", "ci_high", "n"]
OUTCOME_RATES = ("refusal", "degenerate", "off_topic", "empty")


def greedy_rows(judged: Sequence[dict]) -> pd.DataFrame:
    """The greedy (sample 0) judged rows indexed by prompt id, sorted."""
    df = pd.DataFrame([j for j in judged if j.get("sample", 0) == 0])
    if df.empty:
        raise ValueError("no judged greedy rows")
    if "source_id" not in df:
        df["source_id"] = df["prompt_id"]
    if "malformed" not in df:
        df["malformed"] = df["outcome"] == "malformed"
    return df.set_index("prompt_id").sort_index()


def per_prompt(judged: Sequence[dict], column: str, outcome: str | None = None) -> pd.Series:
    """Greedy value per prompt id: a boolean column, or ``outcome == outcome``."""
    df = greedy_rows(judged)
    vals = (df["outcome"] == outcome) if outcome else df[column].astype(bool)
    return vals.astype(float)


def sources(judged: Sequence[dict]) -> pd.Series:
    """Source prompt id of each greedy row (the cluster of the bootstrap)."""
    return greedy_rows(judged)["source_id"].astype(str)


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
    if kind not in ("harmful", "overrefusal", "helpfulness"):
        raise ValueError(f"unknown eval set kind {kind!r}")
    df = greedy_rows(judged)
    rows = [metric_row(model, evalset, "malformed_rate", df["malformed"].astype(float), n_boot, ci, seed)]
    for o in OUTCOME_RATES:
        rows.append(metric_row(model, evalset, f"{o}_rate", df["outcome"] == o, n_boot, ci, seed))
    if kind == "harmful":
        rows.append(metric_row(model, evalset, "asr_compliance", df["unsafe"].astype(float), n_boot, ci, seed))
        rows.append(metric_row(model, evalset, "asr_nonrefusal", df["nonrefusal"].astype(float), n_boot, ci, seed))
    else:
        rows.append(metric_row(model, evalset, "helpful_rate", df["outcome"] == "compliance", n_boot, ci, seed))
    return rows


def paired_diff(
    a: pd.Series | pd.DataFrame,
    b: pd.Series | pd.DataFrame,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    clusters: pd.Series | None = None,
    margin: float = 0.0,
    direction: str = "less",
) -> dict:
    """Mean of (a - b) over the prompts both have, a cluster-bootstrap CI (clusters: source
    prompt per prompt id; default each prompt its own), and a one-sided p-value for
    "mean (a - b) <direction> margin": exact cluster sign-flip test when the margin is 0,
    the cluster bootstrap's p otherwise.

    A DataFrame holds one column per training seed of that model: the statistic is the mean
    over seeds, the CI also redraws seeds (``srg.stats.seed_cluster_bootstrap_diffs``), the
    sign-flip test is on the seed-averaged differences (conditional on the seeds run), and
    ``per_seed`` gives the statistic with seed i of each model."""
    common = a.index.intersection(b.index)
    if len(common) == 0:
        raise ValueError("the two models share no prompts")
    A = a.loc[common].to_numpy(float).reshape(len(common), -1)
    B = b.loc[common].to_numpy(float).reshape(len(common), -1)
    d = A.mean(axis=1) - B.mean(axis=1)
    cl = clusters.loc[common].to_numpy(str) if clusters is not None else np.asarray(common, dtype=str)
    reps = seed_cluster_bootstrap_diffs(A, B, cl, n_boot, seed)
    lo, hi = percentile_ci(reps, ci)
    seeds = max(A.shape[1], B.shape[1])
    if margin == 0:
        p, test = sign_flip_p(d, cl, direction), "sign_flip_exact (McNemar exact per prompt; clusters = source prompts)"
    else:
        p, test = bootstrap_p(reps, margin, direction), "cluster_bootstrap"
    if seeds > 1:
        test += f"; CI redraws {A.shape[1]} x {B.shape[1]} training seeds"
    per_seed = [float((A[:, i % A.shape[1]] - B[:, i % B.shape[1]]).mean()) for i in range(seeds)] if seeds > 1 else []
    return {
        "value": float(d.mean()),
        "ci": (lo, hi),
        "n": int(len(d)),
        "n_clusters": cluster_codes(cl)[1],
        "p": p,
        "test": test,
        "n_seeds": seeds,
        "per_seed": per_seed,
    }


def pooled(series: dict[str, pd.Series | pd.DataFrame]) -> pd.Series | pd.DataFrame:
    """Concatenate per-set series (or per-seed frames) into one, prompt ids prefixed by the set name."""
    return pd.concat([s.rename(lambda i, k=k: f"{k}:{i}") for k, s in series.items()]).sort_index()


def _claim(cid: str, statement: str, statistic: str, d: dict, margin: float, direction: str, evidence: str) -> Claim:
    return Claim(
        cid,
        statement,
        f"{statistic}; {d['n']} prompts in {d['n_clusters']} source clusters",
        d["value"],
        d["ci"],
        verdict_from_ci(*d["ci"], margin, direction),
        evidence,
        test=d["test"],
        p_value=d["p"],
        n_clusters=d["n_clusters"],
        margin=margin,
        direction=direction,
        n_seeds=d.get("n_seeds", 1),
        per_seed=tuple(d.get("per_seed", ())),
    )


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
    helpful: dict[str, dict[str, pd.Series]] | None = None,
    clusters: dict[str, pd.Series] | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    a: str = "srg",
    b: str = "rt",
) -> list[Claim]:
    """C3: SRG's greedy ASR (compliance) below RT's per OOD attack and pooled (clustered by source
    prompt); ID ASR, over-refusal and helpfulness (compliance on benign prompts) within margins.
    ``clusters[set]``: source prompt per prompt id; ``helpful``: compliance per benign prompt
    (default: 1 - refusal, the old proxy)."""
    clusters = clusters or {}
    helpful = helpful or {m: {s: 1 - v for s, v in sets.items()} for m, sets in refusal.items()}
    kw = dict(n_boot=n_boot, ci=ci, seed=seed)
    claims = []
    for s in ood_sets:
        d = paired_diff(unsafe[a][s], unsafe[b][s], clusters=clusters.get(s), **kw)
        claims.append(
            _claim(f"C3.{s}", f"{a} greedy ASR on {s} is below {b}'s", f"ASR({a}) - ASR({b})", d, 0.0, "less", evidence)
        )
    pooled_clusters = pooled({s: clusters[s] for s in ood_sets}) if all(s in clusters for s in ood_sets) else None
    d = paired_diff(
        pooled({s: unsafe[a][s] for s in ood_sets}),
        pooled({s: unsafe[b][s] for s in ood_sets}),
        clusters=pooled_clusters,
        **kw,
    )
    claims.append(
        _claim(
            "C3.ood",
            f"{a} greedy ASR pooled over OOD attacks is below {b}'s",
            f"ASR({a}) - ASR({b}) pooled over {len(ood_sets)} attacks",
            d,
            0.0,
            "less",
            evidence,
        )
    )
    d = paired_diff(unsafe[a][id_set], unsafe[b][id_set], margin=id_margin, direction="less", **kw)
    claims.append(
        _claim(
            "C3.id",
            f"{a} ID greedy ASR is not above {b}'s by {id_margin} or more",
            f"ASR({a}) - ASR({b}) on {id_set}",
            d,
            id_margin,
            "less",
            evidence,
        )
    )
    d = paired_diff(
        refusal[a][overrefusal_set], refusal[b][overrefusal_set], margin=overrefusal_margin, direction="less", **kw
    )
    claims.append(
        _claim(
            "C3.overrefusal",
            f"{a} over-refuses less than {overrefusal_margin} more than {b}",
            f"refusal rate({a}) - refusal rate({b}) on {overrefusal_set}",
            d,
            overrefusal_margin,
            "less",
            evidence,
        )
    )
    d = paired_diff(
        helpful[a][helpfulness_set],
        helpful[b][helpfulness_set],
        margin=-helpfulness_margin,
        direction="greater",
        **kw,
    )
    claims.append(
        _claim(
            "C3.helpfulness",
            f"{a}'s helpful (on-topic answer) rate on benign prompts is less than {helpfulness_margin} below {b}'s",
            f"helpful rate({a}) - helpful rate({b}) on {helpfulness_set}",
            d,
            -helpfulness_margin,
            "greater",
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
    clusters: dict[str, pd.Series] | None = None,
) -> list[Claim]:
    """C4: full SRG's pooled OOD greedy ASR is below each ablation's (and RT's, when present),
    clustered by source prompt."""
    clusters = clusters or {}
    claims = []
    for m in ablations:
        sets = [s for s in ood_sets if s in unsafe[m] and s in unsafe[ref]]
        if not sets:
            continue
        cl = pooled({s: clusters[s] for s in sets}) if all(s in clusters for s in sets) else None
        d = paired_diff(
            pooled({s: unsafe[m][s] for s in sets}),
            pooled({s: unsafe[ref][s] for s in sets}),
            n_boot,
            ci,
            seed,
            clusters=cl,
            direction="greater",
        )
        name = (labels or {}).get(m, m)
        claims.append(
            _claim(
                f"C4.{m}",
                f"full SRG beats {name}: lower pooled OOD greedy ASR",
                f"ASR({m}) - ASR({ref}) pooled over {len(sets)} attacks",
                d,
                0.0,
                "greater",
                evidence,
            )
        )
    return claims
