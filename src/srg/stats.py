"""Inference for claims: a bootstrap clustered by source prompt, an exact paired sign-flip test
over clusters, bootstrap p-values against a margin, and Holm's step-down adjustment.

Every attack set transforms the same source prompts, so rows of a pooled statistic are not
independent: resampling and permuting whole clusters (``meta.source_id``) keeps every attacked
variant of a prompt together.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

__all__ = [
    "cluster_codes",
    "cluster_weights",
    "cluster_bootstrap_means",
    "seed_cluster_bootstrap_diffs",
    "percentile_ci",
    "sign_flip_p",
    "bootstrap_p",
    "holm",
]


def cluster_codes(clusters: Sequence) -> tuple[np.ndarray, int]:
    """Integer code per row and the number of distinct clusters."""
    _, codes = np.unique(np.asarray(clusters, dtype=str), return_inverse=True)
    return codes, int(codes.max()) + 1 if len(codes) else 0


def cluster_weights(clusters: Sequence, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """(n_boot x n_rows) weights: each replicate draws clusters with replacement; a row's weight is
    how often its cluster was drawn (``srg.bon.bootstrap_weights`` over clusters)."""
    from srg.bon import bootstrap_weights

    codes, k = cluster_codes(clusters)
    if k == 0:
        raise ValueError("no rows to resample")
    return bootstrap_weights(k, n_boot, seed)[:, codes]


def cluster_bootstrap_means(values: np.ndarray, clusters: Sequence, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Replicate means of ``values`` ((n,) -> (n_boot,), (n, k) -> (n_boot, k)) under the
    cluster bootstrap; the columns of a 2-D input share the resamples (paired)."""
    v = np.asarray(values, dtype=float)
    w = cluster_weights(clusters, n_boot, seed)
    if w.shape[1] != v.shape[0]:
        raise ValueError(f"{v.shape[0]} values but {w.shape[1]} cluster labels")
    total = w.sum(axis=1)
    return (w @ v) / (total[:, None] if v.ndim == 2 else total)


def seed_cluster_bootstrap_diffs(
    a: np.ndarray, b: np.ndarray, clusters: Sequence, n_boot: int = 1000, seed: int = 0
) -> np.ndarray:
    """Replicates of mean over prompts of (a's seed mean - b's seed mean), where ``a`` (n, Sa) and
    ``b`` (n, Sb) hold one column per training seed. Each replicate redraws the seeds of each
    model with replacement (the training-run spread) and the source clusters (the prompt spread,
    the same draws as ``cluster_bootstrap_means``). One seed each: exactly the cluster bootstrap."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a, b = (x[:, None] if x.ndim == 1 else x for x in (a, b))
    if a.shape[1] == 1 and b.shape[1] == 1:
        return cluster_bootstrap_means(a[:, 0] - b[:, 0], clusters, n_boot, seed)
    w = cluster_weights(clusters, n_boot, seed)
    if w.shape[1] != a.shape[0] or a.shape[0] != b.shape[0]:
        raise ValueError(f"{a.shape[0]} / {b.shape[0]} rows but {w.shape[1]} cluster labels")
    from srg.bon import bootstrap_weights

    def seed_means(x: np.ndarray, stream: int) -> np.ndarray:  # (n_boot, n): mean of redrawn seed columns
        return bootstrap_weights(x.shape[1], n_boot, seed + stream) @ x.T / x.shape[1]

    d = seed_means(a, 1) - seed_means(b, 2)  # independent seed draws for the two models
    return (w * d).sum(axis=1) / w.sum(axis=1)


def percentile_ci(reps: np.ndarray, ci: float = 0.95) -> tuple[float, float]:
    """Percentile interval of finite replicates (NaN, NaN when none is finite)."""
    r = np.asarray(reps, dtype=float)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return float("nan"), float("nan")
    a = (1 - ci) / 2
    lo, hi = np.percentile(r, [100 * a, 100 * (1 - a)])
    return float(lo), float(hi)


def sign_flip_p(
    diffs: np.ndarray, clusters: Sequence, direction: str, n_perm: int = 100_000, seed: int = 0, exact_max: int = 20
) -> float:
    """One-sided p-value of a paired difference by flipping the sign of whole clusters.

    Under the null that the two models' outcomes are exchangeable within each source prompt,
    each cluster's summed difference is symmetric about 0. Enumerates every sign pattern when at
    most ``exact_max`` clusters have a non-zero sum (exact; for one binary pair per cluster this
    is the exact sign test, i.e. McNemar's exact test), else ``n_perm`` random patterns.
    ``direction`` "greater" tests mean > 0, "less" mean < 0.
    """
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less', got {direction!r}")
    d = np.asarray(diffs, dtype=float)
    codes, k = cluster_codes(clusters)
    sums = np.bincount(codes, weights=d, minlength=k)
    sums = sums[np.abs(sums) > 1e-12]
    if sums.size == 0:
        return 1.0
    observed = sums.sum()
    if sums.size <= exact_max:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=sums.size)))
        null = signs @ sums
        hits = null >= observed - 1e-12 if direction == "greater" else null <= observed + 1e-12
        return float(hits.mean())
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(n_perm, sums.size))
    null = signs @ sums
    hits = null >= observed - 1e-12 if direction == "greater" else null <= observed + 1e-12
    return float((hits.sum() + 1) / (n_perm + 1))


def bootstrap_p(reps: np.ndarray, threshold: float, direction: str) -> float:
    """One-sided bootstrap p-value for "statistic > threshold" ("greater") or "< threshold":
    the share of replicates on or beyond the threshold's null side (dual to the percentile CI)."""
    r = np.asarray(reps, dtype=float)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return float("nan")
    null_side = r <= threshold if direction == "greater" else r >= threshold
    return float((null_side.sum() + 1) / (r.size + 1))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = [i for i in np.argsort(p, kind="stable") if np.isfinite(p[i])]
    m, running = len(idx), 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()
