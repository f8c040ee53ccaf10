"""Predict ASR@N beyond the n samples drawn (the paper samples N = 128; the embedded default 8).

Two models of the per-prompt unsafe probability q:

* **Beta-binomial**: q ~ Beta(a, b), fitted by maximum likelihood to the per-prompt unsafe counts
  u ~ BetaBinomial(n, a, b). Then ASR@N = E[q^N] = B(a + N, b) / B(a, b) in closed form (with q the
  *safe* rate instead, this is the B(a, b + N) / B(a, b) of the issue text).
* **Power law** of -log ASR@N in N (as in Best-of-N jailbreaking): log(-log ASR@N) = log c + k log N,
  least squares over the unbiased ASR@N curve for N = 1..n.

CIs resample prompts (clusters) and refit. ``validate`` fits on the first n/2 samples of every
prompt and predicts ASR@n, which the full n samples measure without bias: the error says how far
to trust the extrapolation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln
from scipy.stats import betabinom

from srg.bon import bon_curve
from srg.stats import cluster_codes, percentile_ci

__all__ = ["fit_beta_binomial", "beta_asr", "fit_power_law", "power_asr", "extrapolate", "validate"]

_BOUNDS = (-7.0, 7.0)  # log a, log b


def fit_beta_binomial(u: np.ndarray, n: int, weights: np.ndarray | None = None) -> tuple[float, float]:
    """MLE (a, b) of a Beta-binomial with n trials; ``weights`` repeat rows (bootstrap)."""
    u = np.asarray(u, dtype=int)
    w = np.ones(len(u)) if weights is None else np.asarray(weights, dtype=float)
    values, inv = np.unique(u, return_inverse=True)
    counts = np.bincount(inv, weights=w)

    def nll(theta):
        a, b = np.exp(theta)
        return -float(counts @ betabinom.logpmf(values, n, a, b))

    mean = float(np.clip((w @ u) / (w.sum() * n), 0.02, 0.98))
    start = np.log([mean * 2.0, (1 - mean) * 2.0])
    res = minimize(nll, start, method="L-BFGS-B", bounds=[_BOUNDS, _BOUNDS])
    a, b = np.exp(res.x)
    return float(a), float(b)


def beta_asr(a: float, b: float, N: int | np.ndarray) -> np.ndarray:
    """ASR@N = E[q^N] for q ~ Beta(a, b)."""
    return np.exp(betaln(a + np.asarray(N, dtype=float), b) - betaln(a, b))


def fit_power_law(Ns: Sequence[int], asr: Sequence[float]) -> tuple[float, float]:
    """(c, k) of -log ASR@N = c N^k by least squares in log-log; NaN when fewer than two points
    have 0 < ASR@N < 1."""
    N, y = np.asarray(Ns, dtype=float), np.asarray(asr, dtype=float)
    ok = (y > 0) & (y < 1)
    if ok.sum() < 2:
        return float("nan"), float("nan")
    k, logc = np.polyfit(np.log(N[ok]), np.log(-np.log(y[ok])), 1)
    return float(np.exp(logc)), float(k)


def power_asr(c: float, k: float, N: int | np.ndarray) -> np.ndarray:
    return np.exp(-c * np.asarray(N, dtype=float) ** k)


def _predict(u: np.ndarray, n: int, Ns: np.ndarray, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    if weights is None:
        weights = np.ones(len(u))
    keep = weights > 0
    uu, ww = u[keep], weights[keep]
    a, b = fit_beta_binomial(uu, n, ww)
    curve = bon_curve(np.repeat(uu, ww.astype(int)), n)
    c, k = fit_power_law(list(curve), list(curve.values()))
    return {"beta_binomial": beta_asr(a, b, Ns), "power_law": power_asr(c, k, Ns), "params": (a, b, c, k)}


def extrapolate(
    u: np.ndarray,
    n: int,
    Ns: Sequence[int],
    clusters: Sequence | None = None,
    n_boot: int = 200,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Predicted ASR@N for every N in ``Ns`` by both methods, with cluster-bootstrap CIs.

    Columns: method, N, asr, ci_low, ci_high, and the fitted parameters (a, b | c, k).
    """
    u = np.asarray(u, dtype=int)
    Ns = np.asarray(sorted(set(int(N) for N in Ns)))
    point = _predict(u, n, Ns)
    codes, k_cl = cluster_codes(clusters if clusters is not None else np.arange(len(u)))
    rng = np.random.default_rng(seed)
    reps = {"beta_binomial": [], "power_law": []}
    for _ in range(n_boot):
        w = rng.multinomial(k_cl, np.full(k_cl, 1.0 / k_cl))[codes].astype(float)
        pr = _predict(u, n, Ns, w)
        for m in reps:
            reps[m].append(pr[m])
    a, b, c, k = point["params"]
    rows = []
    for m in reps:
        R = np.asarray(reps[m])
        for j, N in enumerate(Ns):
            lo, hi = percentile_ci(R[:, j], ci)
            rows.append(
                {
                    "method": m,
                    "N": int(N),
                    "asr": float(point[m][j]),
                    "ci_low": lo,
                    "ci_high": hi,
                    "param_1": a if m == "beta_binomial" else c,
                    "param_2": b if m == "beta_binomial" else k,
                }
            )
    return pd.DataFrame(rows)


def validate(samples: np.ndarray) -> dict[str, dict[str, float]]:
    """Fit on the first n/2 samples of every prompt, predict ASR@n, compare with the unbiased
    ASR@n of all n samples. ``samples``: prompts x n array of 0/1 unsafe flags."""
    S = np.asarray(samples, dtype=int)
    n = S.shape[1]
    half = n // 2
    if half < 2:
        raise ValueError(f"validation needs n >= 4 samples per prompt, got {n}")
    observed = bon_curve(S.sum(axis=1), n, [n])[n]
    pred = _predict(S[:, :half].sum(axis=1), half, np.array([n]))
    return {
        m: {
            "n_fit": half,
            "N": n,
            "predicted": float(pred[m][0]),
            "observed": observed,
            "error": float(pred[m][0] - observed),
        }
        for m in ("beta_binomial", "power_law")
    }
