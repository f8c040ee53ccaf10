"""Domain-adaptation analysis of hidden states: is an OOD (attacked) harmful prompt represented
like an in-distribution (ID) harmful prompt, or does it drift towards benign ones?

All inputs are ``n_prompts x hidden_dim`` arrays for one layer (``layer_metrics`` loops over
layers of ``n x L x d`` arrays). Everything that is *fit* (projections, probes, centroids) uses
ID harmful / ID benign data only; OOD sets are only projected or scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from srg.bon import bootstrap_mean_ci

__all__ = [
    "Projection",
    "fit_id_projection",
    "make_probe",
    "probe_transfer",
    "proxy_a_distance",
    "centroid_position",
    "closer_to_benign_mask",
    "closer_to_benign_fraction",
    "layer_metrics",
    "METRICS",
]

METRICS = ("probe_id_acc", "probe_transfer_acc", "pad", "mean_position", "closer_to_benign")


def _as_2d(X: np.ndarray, name: str, min_rows: int = 1) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_prompts x hidden_dim), got shape {X.shape}")
    if X.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {X.shape[0]}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains non-finite values")
    return X


def _same_dim(*arrays: tuple[str, np.ndarray]) -> int:
    dims = {name: a.shape[1] for name, a in arrays}
    if len(set(dims.values())) != 1:
        raise ValueError(f"hidden dims differ: {dims}")
    return next(iter(dims.values()))


# --------------------------------------------------------------------------- projection


@dataclass(frozen=True)
class Projection:
    """Affine 2-D projection ``(X - mean) @ components.T`` fit on ID data only."""

    mean: np.ndarray  # (d,)
    components: np.ndarray  # (2, d), orthonormal rows
    method: str = "pca"
    explained_variance: np.ndarray = field(default_factory=lambda: np.full(2, np.nan))

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.mean.shape[0]:
            raise ValueError(f"expected (n, {self.mean.shape[0]}) array, got shape {X.shape}")
        return (X - self.mean) @ self.components.T


def _top_pc(Xc: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k right singular vectors of a centred matrix and their variances."""
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    comps = np.zeros((k, Xc.shape[1]))
    var = np.zeros(k)
    m = min(k, vt.shape[0])
    comps[:m] = vt[:m]
    var[:m] = s[:m] ** 2 / max(Xc.shape[0] - 1, 1)
    return comps, var


def _fix_sign(v: np.ndarray) -> np.ndarray:
    """Deterministic sign: the largest-magnitude loading is positive."""
    j = int(np.argmax(np.abs(v)))
    return -v if v[j] < 0 else v


def fit_id_projection(X_harm: np.ndarray, X_benign: np.ndarray, method: str = "pca") -> Projection:
    """Fit a 2-D projection on ID harmful ∪ benign states only.

    ``"pca"``: PCA of the pooled ID states, centred but *not* standardised (hidden units share a
    scale; standardising would inflate near-constant dimensions). Axis 1 is oriented so that the
    harmful centroid lies on its positive side.
    ``"diff"``: axis 1 is the unit harmful-minus-benign centroid direction, axis 2 the top PC of
    the pooled states after removing axis 1 (hence orthogonal to it).
    OOD states are later passed to ``Projection.transform`` only; they never influence the fit.
    """
    Xh = _as_2d(X_harm, "X_harm")
    Xb = _as_2d(X_benign, "X_benign")
    d = _same_dim(("X_harm", Xh), ("X_benign", Xb))
    if d < 2:
        raise ValueError("hidden_dim must be >= 2 for a 2-D projection")
    X = np.vstack([Xh, Xb])
    mean = X.mean(axis=0)
    Xc = X - mean
    diff = Xh.mean(axis=0) - Xb.mean(axis=0)
    if method == "pca":
        comps, var = _top_pc(Xc, 2)
        comps[0] = -comps[0] if comps[0] @ diff < 0 else comps[0]
        comps[1] = _fix_sign(comps[1])
    elif method == "diff":
        norm = np.linalg.norm(diff)
        if norm == 0:
            raise ValueError("harmful and benign centroids coincide: 'diff' axis undefined")
        axis1 = diff / norm
        resid = Xc - np.outer(Xc @ axis1, axis1)
        pc, pvar = _top_pc(resid, 1)
        comps = np.vstack([axis1, _fix_sign(pc[0])])
        var = np.array([np.var(Xc @ axis1, ddof=1) if len(Xc) > 1 else 0.0, pvar[0]])
    else:
        raise ValueError(f"method must be 'pca' or 'diff', got {method!r}")
    return Projection(mean=mean, components=comps, method=method, explained_variance=var)


# --------------------------------------------------------------------------- probes


def make_probe(C: float = 1.0, seed: int = 0) -> Pipeline:
    """StandardScaler + L2 logistic regression (the probe used throughout)."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))


def probe_transfer(
    X_harm_train: np.ndarray,
    X_benign_train: np.ndarray,
    X_harm_test: np.ndarray,
    X_benign_test: np.ndarray,
    ood: Mapping[str, np.ndarray],
    C: float = 1.0,
    seed: int = 0,
) -> dict:
    """Train a harmful (1) vs benign (0) probe on ID data; score held-out ID and OOD sets.

    Returns a dict with
      ``id_acc`` (float), ``id_correct`` (bool array: harmful test rows, then benign test rows),
      ``transfer_acc`` {name: fraction of OOD prompts classified harmful},
      ``transfer_correct`` {name: per-prompt bool array}, and the fitted ``probe``.
    OOD sets are assumed all harmful (attacked harmful prompts), so "correct" means predicted 1.
    """
    Xh = _as_2d(X_harm_train, "X_harm_train")
    Xb = _as_2d(X_benign_train, "X_benign_train")
    Th = _as_2d(X_harm_test, "X_harm_test")
    Tb = _as_2d(X_benign_test, "X_benign_test")
    oods = {k: _as_2d(v, f"ood[{k!r}]") for k, v in ood.items()}
    _same_dim(
        ("X_harm_train", Xh),
        ("X_benign_train", Xb),
        ("X_harm_test", Th),
        ("X_benign_test", Tb),
        *((f"ood[{k!r}]", v) for k, v in oods.items()),
    )
    probe = make_probe(C, seed)
    probe.fit(np.vstack([Xh, Xb]), np.r_[np.ones(len(Xh)), np.zeros(len(Xb))])
    id_correct = probe.predict(np.vstack([Th, Tb])) == np.r_[np.ones(len(Th)), np.zeros(len(Tb))]
    transfer_correct = {k: probe.predict(v) == 1 for k, v in oods.items()}
    return {
        "id_acc": float(id_correct.mean()),
        "id_correct": id_correct,
        "transfer_acc": {k: float(v.mean()) for k, v in transfer_correct.items()},
        "transfer_correct": transfer_correct,
        "probe": probe,
    }


def proxy_a_distance(X_a: np.ndarray, X_b: np.ndarray, cv: int = 5, seed: int = 0) -> float:
    """Proxy A-distance 2 * (1 - 2 * err), clipped to [0, 2].

    ``err`` is the pooled out-of-fold error of a standardised logistic-regression domain
    classifier (a vs b) under seeded stratified ``cv``-fold cross-validation. If the sets differ
    in size, the larger is subsampled (seeded, without replacement) to the smaller's size, so
    chance error is 0.5 and PAD ~ 0 means indistinguishable domains.
    """
    A = _as_2d(X_a, "X_a")
    B = _as_2d(X_b, "X_b")
    _same_dim(("X_a", A), ("X_b", B))
    rng = np.random.default_rng(seed)
    m = min(len(A), len(B))
    if m < cv:
        raise ValueError(f"each domain needs >= cv={cv} points after balancing, got {m}")
    if len(A) > m:
        A = A[np.sort(rng.choice(len(A), m, replace=False))]
    if len(B) > m:
        B = B[np.sort(rng.choice(len(B), m, replace=False))]
    X = np.vstack([A, B])
    y = np.r_[np.zeros(m), np.ones(m)]
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    pred = cross_val_predict(make_probe(1.0, seed), X, y, cv=folds)
    err = float(np.mean(pred != y))
    return float(np.clip(2.0 * (1.0 - 2.0 * err), 0.0, 2.0))


# --------------------------------------------------------------------------- centroids


def _centroid_args(X, mu_harm, mu_benign) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = _as_2d(X, "X_ood")
    mh = np.asarray(mu_harm, dtype=float).ravel()
    mb = np.asarray(mu_benign, dtype=float).ravel()
    if mh.shape != (X.shape[1],) or mb.shape != (X.shape[1],):
        raise ValueError(f"centroids must have shape ({X.shape[1]},), got {mh.shape}, {mb.shape}")
    return X, mh, mb


def centroid_position(X_ood: np.ndarray, mu_harm: np.ndarray, mu_benign: np.ndarray) -> np.ndarray:
    """Per-point position on the benign->harmful axis: 0 at the benign, 1 at the harmful centroid.

    t = <x - mu_benign, mu_harm - mu_benign> / ||mu_harm - mu_benign||^2 (unbounded).
    """
    X, mh, mb = _centroid_args(X_ood, mu_harm, mu_benign)
    axis = mh - mb
    denom = float(axis @ axis)
    if denom == 0:
        raise ValueError("harmful and benign centroids coincide")
    return (X - mb) @ axis / denom


def closer_to_benign_mask(X_ood: np.ndarray, mu_harm: np.ndarray, mu_benign: np.ndarray) -> np.ndarray:
    """Per-point bool: Euclidean distance to the benign centroid < distance to the harmful one."""
    X, mh, mb = _centroid_args(X_ood, mu_harm, mu_benign)
    return np.linalg.norm(X - mb, axis=1) < np.linalg.norm(X - mh, axis=1)


def closer_to_benign_fraction(X_ood: np.ndarray, mu_harm: np.ndarray, mu_benign: np.ndarray) -> float:
    """Fraction of points closer (Euclidean) to the benign than to the harmful centroid."""
    return float(closer_to_benign_mask(X_ood, mu_harm, mu_benign).mean())


# --------------------------------------------------------------------------- all layers


def split_indices(n: int, test_frac: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices of ``n`` items, ``test_frac`` of them (at least one each) held out."""
    if n < 2:
        raise ValueError(f"need >= 2 ID prompts per class for a train/test split, got {n}")
    n_test = int(round(n * test_frac))
    n_test = min(max(n_test, 1), n - 1)
    perm = rng.permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def layer_metrics(
    states: Mapping[str, np.ndarray],
    id_harm_key: str,
    id_benign_key: str,
    ood_keys: Sequence[str],
    test_frac: float = 0.3,
    seed: int = 0,
    C: float = 1.0,
    cv: int = 5,
    n_boot: int = 0,
    ci: float = 0.95,
    layers: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Tidy per-layer metrics: columns layer, evalset, metric, value, ci_low, ci_high.

    ``states[key]`` is ``n_prompts x L x d``. ID harmful and ID benign are each split once
    (seeded, same split for every layer) into train/test; the probe and the centroids use the
    train parts only. Rows per layer:

    * evalset = ``id_harm_key``: ``probe_id_acc`` (held-out ID harmful+benign accuracy),
      ``pad`` (ID harmful vs ID benign, a separability reference), ``mean_position`` and
      ``closer_to_benign`` of the held-out ID harmful prompts.
    * evalset = each OOD key: ``probe_transfer_acc`` (fraction classified harmful), ``pad``
      (OOD vs all ID harmful), ``mean_position``, ``closer_to_benign``.

    With ``n_boot > 0`` the per-prompt metrics get a prompt-bootstrap CI; ``pad`` and all
    metrics when ``n_boot == 0`` have NaN CI columns.
    """
    if not 0.0 < test_frac < 1.0:
        raise ValueError(f"test_frac must be in (0, 1), got {test_frac}")
    keys = [id_harm_key, id_benign_key, *ood_keys]
    missing = [k for k in keys if k not in states]
    if missing:
        raise KeyError(f"states lacks {missing}")
    arrs = {k: np.asarray(states[k], dtype=float) for k in keys}
    shapes = {k: a.shape for k, a in arrs.items()}
    if any(a.ndim != 3 for a in arrs.values()) or len({s[1:] for s in shapes.values()}) != 1:
        raise ValueError(f"states must be n x L x d with equal L and d, got {shapes}")
    n_layers = arrs[id_harm_key].shape[1]
    layer_ids = range(n_layers) if layers is None else list(layers)
    rng = np.random.default_rng(seed)
    h_tr, h_te = split_indices(len(arrs[id_harm_key]), test_frac, rng)
    b_tr, b_te = split_indices(len(arrs[id_benign_key]), test_frac, rng)

    rows: list[dict] = []

    def add(layer: int, evalset: str, metric: str, value: float, per_item=None) -> None:
        lo = hi = float("nan")
        if n_boot > 0 and per_item is not None:
            lo, hi = bootstrap_mean_ci(np.asarray(per_item, dtype=float), n_boot, ci, seed)
        rows.append(dict(layer=int(layer), evalset=evalset, metric=metric, value=float(value), ci_low=lo, ci_high=hi))

    for layer in layer_ids:
        H = arrs[id_harm_key][:, layer, :]
        B = arrs[id_benign_key][:, layer, :]
        ood = {k: arrs[k][:, layer, :] for k in ood_keys}
        res = probe_transfer(H[h_tr], B[b_tr], H[h_te], B[b_te], ood, C=C, seed=seed)
        mu_h, mu_b = H[h_tr].mean(axis=0), B[b_tr].mean(axis=0)

        add(layer, id_harm_key, "probe_id_acc", res["id_acc"], res["id_correct"])
        add(layer, id_harm_key, "pad", proxy_a_distance(H, B, cv=cv, seed=seed))
        pos = centroid_position(H[h_te], mu_h, mu_b)
        add(layer, id_harm_key, "mean_position", pos.mean(), pos)
        near = closer_to_benign_mask(H[h_te], mu_h, mu_b)
        add(layer, id_harm_key, "closer_to_benign", near.mean(), near)
        for k, X in ood.items():
            tc = res["transfer_correct"][k]
            add(layer, k, "probe_transfer_acc", tc.mean(), tc)
            add(layer, k, "pad", proxy_a_distance(X, H, cv=cv, seed=seed))
            pos = centroid_position(X, mu_h, mu_b)
            add(layer, k, "mean_position", pos.mean(), pos)
            near = closer_to_benign_mask(X, mu_h, mu_b)
            add(layer, k, "closer_to_benign", near.mean(), near)

    return pd.DataFrame(rows, columns=["layer", "evalset", "metric", "value", "ci_low", "ci_high"])


# --------------------------------------------------------------------------- claim C2


def c2_claims(
    at_layer: pd.DataFrame,
    states: Mapping[str, Mapping[str, np.ndarray]],
    claim_model: str,
    ood_sets: Sequence[str],
    id_harm: str,
    id_benign: str,
    layer: int,
    pooling: str,
    *,
    evidence: str,
    test_frac: float = 0.3,
    probe_C: float = 1.0,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> tuple[list, dict]:
    """Claims C2 for ``claim_model`` at ``layer``: ``C2.position.<attack>`` (mean centroid position
    below 0.5, i.e. closer to ID benign), ``C2.transfer`` (pooled OOD probe accuracy minus
    held-out ID accuracy below 0; the split of ``layer_metrics``) and, when ``srg``'s states are
    given, ``C2.divergence`` (mean over attacks of PAD(claim_model) - PAD(srg) above 0).

    ``at_layer``: the ``layer_metrics`` rows of that layer for every model; ``states[model][set]``:
    pooled states ``n x layers x d``. Returns the claims and the accuracies behind C2.transfer.
    """
    from srg.bon import bootstrap_means
    from srg.claims import Claim, verdict_from_ci

    claims, info = [], {}
    cm = at_layer[at_layer["model"] == claim_model]
    for s in ood_sets:
        r = cm[(cm["evalset"] == s) & (cm["metric"] == "mean_position")].iloc[0]
        claims.append(
            Claim(
                id=f"C2.position.{s}",
                statement=f"{claim_model}: {s} prompts sit closer to ID benign than ID harmful (layer {layer}, {pooling} token)",
                statistic="mean relative position t on the benign(0)->harmful(1) centroid axis, prompt-bootstrap CI",
                value=float(r["value"]),
                ci=(float(r["ci_low"]), float(r["ci_high"])),
                verdict=verdict_from_ci(r["ci_low"], r["ci_high"], 0.5, "less"),
                evidence=evidence,
            )
        )
    if ood_sets:
        Xm = states[claim_model]
        split_rng = np.random.default_rng(seed)  # the same split as layer_metrics
        h_tr, h_te = split_indices(len(Xm[id_harm]), test_frac, split_rng)
        b_tr, b_te = split_indices(len(Xm[id_benign]), test_frac, split_rng)
        H, B = Xm[id_harm][:, layer], Xm[id_benign][:, layer]
        res = probe_transfer(
            H[h_tr], B[b_tr], H[h_te], B[b_te], {s: Xm[s][:, layer] for s in ood_sets}, C=probe_C, seed=seed
        )
        pooled = np.concatenate([res["transfer_correct"][s] for s in ood_sets]).astype(float)
        idc = res["id_correct"].astype(float)
        reps = bootstrap_means(pooled, n_boot, seed) - bootstrap_means(idc, n_boot, seed + 1)
        lo, hi = np.nanpercentile(reps, [50 * (1 - ci), 100 - 50 * (1 - ci)])
        info = {"id_acc": float(idc.mean()), "n_id": len(idc), "ood_acc": float(pooled.mean()), "n_ood": len(pooled)}
        claims.append(
            Claim(
                id="C2.transfer",
                statement=f"{claim_model}: the ID-trained harmful/benign probe transfers worse to OOD attacks than to "
                f"held-out ID prompts (layer {layer}, {pooling} token)",
                statistic="pooled OOD accuracy - held-out ID accuracy, bootstrap CI",
                value=float(pooled.mean() - idc.mean()),
                ci=(float(lo), float(hi)),
                verdict=verdict_from_ci(lo, hi, 0.0, "less"),
                evidence=evidence,
            )
        )
    if "srg" in states and ood_sets:
        pad = at_layer[at_layer["metric"] == "pad"].pivot_table(index="evalset", columns="model", values="value")
        d = (pad.loc[list(ood_sets), claim_model] - pad.loc[list(ood_sets), "srg"]).to_numpy()
        lo, hi = bootstrap_mean_ci(d, n_boot, ci, seed)
        claims.append(
            Claim(
                id="C2.divergence",
                statement=f"divergence between ID harmful and OOD attacks is larger for {claim_model} than for srg "
                f"(layer {layer}, {pooling} token)",
                statistic="mean over attacks of PAD(rt) - PAD(srg), bootstrap over attacks",
                value=float(d.mean()),
                ci=(lo, hi),
                verdict=verdict_from_ci(lo, hi, 0.0, "greater"),
                evidence=evidence,
            )
        )
    return claims, info
