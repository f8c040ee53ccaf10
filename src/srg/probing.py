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
    "paired_mmd2",
    "paired_mmd_p",
    "reduced_space",
    "standardised_centroids",
    "c2_claims",
    "METRICS",
]

METRICS = ("probe_cv_acc", "probe_transfer_acc", "mmd", "mmd_null", "mean_position", "closer_to_benign")


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


def standardised_centroids(probe: Pipeline, X_harm: np.ndarray, X_benign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ID harmful and benign centroids in the probe's standardised space."""
    sc = probe[0]
    return sc.transform(X_harm).mean(axis=0), sc.transform(X_benign).mean(axis=0)


def reduced_space(X_fit: np.ndarray, k: int = 10):
    """A function mapping states to the top-``k`` PCs of the standardised fit states, and the RBF
    bandwidth (median squared distance among the fit states) for MMD there."""
    sc = StandardScaler().fit(X_fit)
    Z = sc.transform(X_fit)
    mean = Z.mean(axis=0)
    comps, _ = _top_pc(Z - mean, min(k, Z.shape[0] - 1, Z.shape[1]))

    def transform(X):
        return (sc.transform(X) - mean) @ comps.T

    R = transform(X_fit)
    d2 = ((R[:, None, :] - R[None, :, :]) ** 2).sum(-1)
    bw = float(np.median(d2[np.triu_indices(len(R), 1)])) or 1.0
    return transform, bw


def _rbf(A: np.ndarray, B: np.ndarray, bw: float) -> np.ndarray:
    return np.exp(-((A[:, None, :] - B[None, :, :]) ** 2).sum(-1) / bw)


def paired_mmd2(Za: np.ndarray, Zp: np.ndarray, bw: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Squared MMD (V-statistic, RBF kernel) between rows of ``Za`` and ``Zp`` (row i of each from
    the same source prompt); ``weights`` (B x m, e.g. cluster-bootstrap counts) give one value each."""
    m = len(Za)
    W = np.ones((1, m)) if weights is None else np.asarray(weights, dtype=float)
    W = W / W.sum(axis=1, keepdims=True)
    Kaa, Kpp, Kap = _rbf(Za, Za, bw), _rbf(Zp, Zp, bw), _rbf(Za, Zp, bw)
    q = lambda K: np.einsum("bi,ij,bj->b", W, K, W)  # noqa: E731
    return q(Kaa) + q(Kpp) - 2 * q(Kap)


def paired_mmd_p(Za: np.ndarray, Zp: np.ndarray, bw: float, n_perm: int = 500, seed: int = 0) -> float:
    """Permutation p-value of ``paired_mmd2``: swap each pair's two members at random (the null:
    attacked and plain states of a prompt are exchangeable)."""
    obs = paired_mmd2(Za, Zp, bw)[0]
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_perm):
        swap = rng.random(len(Za)) < 0.5
        A = np.where(swap[:, None], Zp, Za)
        P = np.where(swap[:, None], Za, Zp)
        hits += paired_mmd2(A, P, bw)[0] >= obs - 1e-12
    return float((hits + 1) / (n_perm + 1))


def layer_metrics(
    states: Mapping[str, np.ndarray],
    id_harm_key: str,
    id_benign_key: str,
    ood_keys: Sequence[str],
    plain_key: str | None = None,
    sources: Mapping[str, Sequence[str]] | None = None,
    seed: int = 0,
    C: float = 1.0,
    cv: int = 5,
    n_boot: int = 0,
    ci: float = 0.95,
    layers: Sequence[int] | None = None,
    pca_k: int = 10,
) -> pd.DataFrame:
    """Tidy per-layer metrics: columns layer, evalset, metric, value, ci_low, ci_high.

    ``states[key]`` is ``n_prompts x L x d``. The probe (standardised logistic regression), the
    centroids (in the probe's standardised space) and the PCA space of the MMD are fit on the ID
    training prompts (``id_harm_key`` vs ``id_benign_key``) only. Rows per layer:

    * ``id_harm_key``: ``probe_cv_acc`` (cross-validated two-class accuracy on the training prompts)
      and ``mmd_null`` (MMD^2 between two random halves of the ID harmful prompts: ID vs ID);
    * ``plain_key`` (held-out plain harmful prompts, the control) and each OOD key:
      ``probe_transfer_acc`` (share classified harmful: recall), ``mean_position`` (0 = benign,
      1 = harmful centroid) and ``closer_to_benign``; OOD keys also ``mmd`` (MMD^2 against the plain
      states of the same source prompts, ``sources[key]`` aligning rows; requires ``plain_key``).
    """
    keys = [id_harm_key, id_benign_key, *([plain_key] if plain_key else []), *ood_keys]
    missing = [k for k in keys if k not in states]
    if missing:
        raise KeyError(f"states lacks {missing}")
    arrs = {k: np.asarray(states[k], dtype=float) for k in keys}
    shapes = {k: a.shape for k, a in arrs.items()}
    if any(a.ndim != 3 for a in arrs.values()) or len({s[1:] for s in shapes.values()}) != 1:
        raise ValueError(f"states must be n x L x d with equal L and d, got {shapes}")
    n_layers = arrs[id_harm_key].shape[1]
    layer_ids = range(n_layers) if layers is None else list(layers)
    rows: list[dict] = []

    def add(layer: int, evalset: str, metric: str, value: float, per_item=None) -> None:
        lo = hi = float("nan")
        if n_boot > 0 and per_item is not None:
            lo, hi = bootstrap_mean_ci(np.asarray(per_item, dtype=float), n_boot, ci, seed)
        rows.append(dict(layer=int(layer), evalset=evalset, metric=metric, value=float(value), ci_low=lo, ci_high=hi))

    rng = np.random.default_rng(seed)
    half = rng.permutation(len(arrs[id_harm_key]))
    for layer in layer_ids:
        H, B = arrs[id_harm_key][:, layer, :], arrs[id_benign_key][:, layer, :]
        X, y = np.vstack([H, B]), np.r_[np.ones(len(H)), np.zeros(len(B))]
        folds = StratifiedKFold(n_splits=min(cv, len(H), len(B)), shuffle=True, random_state=seed)
        add(
            layer,
            id_harm_key,
            "probe_cv_acc",
            float(np.mean(cross_val_predict(make_probe(C, seed), X, y, cv=folds) == y)),
        )
        probe = make_probe(C, seed).fit(X, y)
        mu_h, mu_b = standardised_centroids(probe, H, B)
        transform, bw = reduced_space(X, pca_k)
        a, b = half[: len(half) // 2], half[len(half) // 2 : 2 * (len(half) // 2)]
        add(layer, id_harm_key, "mmd_null", paired_mmd2(transform(H[a]), transform(H[b]), bw)[0])
        plain_z = None
        if plain_key:
            P = arrs[plain_key][:, layer, :]
            plain_z = dict(zip(map(str, (sources or {}).get(plain_key, range(len(P)))), transform(P)))
        for k in [*([plain_key] if plain_key else []), *ood_keys]:
            Xk = arrs[k][:, layer, :]
            hit = probe.predict(Xk) == 1
            add(layer, k, "probe_transfer_acc", hit.mean(), hit)
            pos = centroid_position(probe[0].transform(Xk), mu_h, mu_b)
            add(layer, k, "mean_position", pos.mean(), pos)
            near = closer_to_benign_mask(probe[0].transform(Xk), mu_h, mu_b)
            add(layer, k, "closer_to_benign", near.mean(), near)
            if plain_z is not None and k != plain_key:
                src = list(map(str, (sources or {}).get(k, range(len(Xk)))))
                keep = [i for i, s_ in enumerate(src) if s_ in plain_z]
                if keep:
                    Za = transform(Xk[keep])
                    Zp = np.stack([plain_z[src[i]] for i in keep])
                    add(layer, k, "mmd", paired_mmd2(Za, Zp, bw)[0])
    return pd.DataFrame(rows, columns=["layer", "evalset", "metric", "value", "ci_low", "ci_high"])


# --------------------------------------------------------------------------- claim C2


def c2_claims(
    states: Mapping[str, Mapping[str, np.ndarray]],
    sources: Mapping[str, Sequence[str]],
    claim_model: str,
    ood_sets: Sequence[str],
    id_harm: str,
    id_benign: str,
    plain: str,
    layer: int,
    pooling: str,
    *,
    evidence: str,
    probe_C: float = 1.0,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    pca_k: int = 10,
    n_perm: int = 500,
    ref_model: str = "srg",
) -> tuple[list, pd.DataFrame]:
    """Claims C2 for ``claim_model`` at ``layer``; probes, centroids and the MMD space fit on the
    ID training prompts (``id_harm`` vs ``id_benign``) only.

    * ``C2.transfer`` (primary): recall of the harmful probe on attacked prompts minus its recall
      on the plain held-out prompts they were built from (``plain``), paired by source prompt and
      pooled over attacks; cluster bootstrap CI, exact cluster sign-flip p; claimed < 0.
    * ``C2.position.<attack>``: mean position on the benign(0)->harmful(1) centroid axis in the
      probe's standardised space, claimed < 0.5 (closer to benign); bootstrap p.
    * ``C2.divergence`` (when ``ref_model``'s states are given): mean over attacks of the paired
      MMD^2 (attacked vs plain states of the same prompts) of ``claim_model`` minus ``ref_model``'s,
      claimed > 0; cluster bootstrap over source prompts.

    ``states[model][set]``: ``n x layers x d``; ``sources[set]``: source prompt of each row.
    Returns the claims and a per-attack table (recall, position, MMD^2 and its permutation p).
    """
    from srg.claims import Claim, verdict_from_ci
    from srg.stats import bootstrap_p, cluster_bootstrap_means, cluster_weights, percentile_ci, sign_flip_p

    def fitted(model):
        Xm = states[model]
        H, B = Xm[id_harm][:, layer], Xm[id_benign][:, layer]
        X = np.vstack([H, B])
        probe = make_probe(probe_C, seed).fit(X, np.r_[np.ones(len(H)), np.zeros(len(B))])
        transform, bw = reduced_space(X, pca_k)
        return probe, standardised_centroids(probe, H, B), transform, bw

    def aligned(model, s):
        """(attacked rows, plain rows) of set s aligned by source prompt, and the source ids."""
        pl = {str(k): i for i, k in enumerate(sources[plain])}
        src = [str(x) for x in sources[s]]
        keep = [i for i, k in enumerate(src) if k in pl]
        return (
            states[model][s][keep, layer],
            states[model][plain][[pl[src[i]] for i in keep], layer],
            [src[i] for i in keep],
        )

    claims, rows = [], []
    probe, (mu_h, mu_b), transform, bw = fitted(claim_model)
    diffs, clus = [], []
    for s in ood_sets:
        A, P, src = aligned(claim_model, s)
        d = (probe.predict(A) == 1).astype(float) - (probe.predict(P) == 1).astype(float)
        diffs.append(d)
        clus += src
        pos = centroid_position(probe[0].transform(states[claim_model][s][:, layer]), mu_h, mu_b)
        reps = cluster_bootstrap_means(pos, [str(x) for x in sources[s]], n_boot, seed)
        lo, hi = percentile_ci(reps, ci)
        mmd = paired_mmd2(transform(A), transform(P), bw)[0]
        rows.append(
            {
                "attack": s,
                "n": len(d),
                "recall_attacked": float((probe.predict(A) == 1).mean()),
                "recall_plain": float((probe.predict(P) == 1).mean()),
                "mean_position": float(pos.mean()),
                "mmd2": float(mmd),
                "mmd2_p": paired_mmd_p(transform(A), transform(P), bw, n_perm, seed),
            }
        )
        claims.append(
            Claim(
                f"C2.position.{s}",
                f"{claim_model}: {s} prompts sit closer to ID benign than ID harmful (layer {layer}, {pooling} token)",
                "mean position on the benign(0)->harmful(1) centroid axis, probe-standardised space",
                float(pos.mean()),
                (lo, hi),
                verdict_from_ci(lo, hi, 0.5, "less"),
                evidence,
                test="cluster_bootstrap",
                p_value=bootstrap_p(reps, 0.5, "less"),
                n_clusters=len(set(map(str, sources[s]))),
                margin=0.5,
                direction="less",
            )
        )
    if ood_sets:
        d, cl = np.concatenate(diffs), np.asarray(clus)
        reps = cluster_bootstrap_means(d, cl, n_boot, seed)
        lo, hi = percentile_ci(reps, ci)
        k = len(set(clus))
        claims.append(
            Claim(
                "C2.transfer",
                f"{claim_model}: the ID-trained harmful probe recognises attacked prompts less often than the plain "
                f"prompts they were built from (layer {layer}, {pooling} token)",
                f"recall(attacked) - recall(plain), same source prompts, pooled over {len(ood_sets)} attacks; "
                f"{len(d)} pairs in {k} source clusters",
                float(d.mean()),
                (lo, hi),
                verdict_from_ci(lo, hi, 0.0, "less"),
                evidence,
                test="sign_flip_exact (clusters = source prompts)",
                p_value=sign_flip_p(d, cl, "less"),
                n_clusters=k,
                margin=0.0,
                direction="less",
            )
        )
    if ref_model in states and ref_model != claim_model and ood_sets:
        fits = {m: fitted(m) for m in (claim_model, ref_model)}
        common = sorted(
            set.intersection(*[set(map(str, sources[s])) for s in ood_sets]) & set(map(str, sources[plain]))
        )
        W = cluster_weights(common, n_boot, seed)
        per_model = {}
        for m, (_, _, tf, bw_m) in fits.items():
            vals, reps_m = [], []
            for s in ood_sets:
                A, P, src = aligned(m, s)
                idx = [src.index(c) for c in common]
                Za, Zp = tf(A[idx]), tf(P[idx])
                vals.append(paired_mmd2(Za, Zp, bw_m)[0])
                reps_m.append(paired_mmd2(Za, Zp, bw_m, W))
            per_model[m] = (np.mean(vals), np.mean(reps_m, axis=0))
        value = per_model[claim_model][0] - per_model[ref_model][0]
        reps = per_model[claim_model][1] - per_model[ref_model][1]
        lo, hi = percentile_ci(reps, ci)
        claims.append(
            Claim(
                "C2.divergence",
                f"attacked prompts diverge more from their plain versions in {claim_model}'s representations than "
                f"in {ref_model}'s (layer {layer}, {pooling} token)",
                f"mean over {len(ood_sets)} attacks of paired MMD^2 (attacked vs plain, same {len(common)} prompts), "
                f"{claim_model} minus {ref_model}; {claim_model} {per_model[claim_model][0]:.3f}, "
                f"{ref_model} {per_model[ref_model][0]:.3f}",
                float(value),
                (lo, hi),
                verdict_from_ci(lo, hi, 0.0, "greater"),
                evidence,
                test="cluster_bootstrap",
                p_value=bootstrap_p(reps, 0.0, "greater"),
                n_clusters=len(common),
                margin=0.0,
                direction="greater",
            )
        )
    return claims, pd.DataFrame(rows)
