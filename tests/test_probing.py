import numpy as np
import pytest

from srg import probing

D = 8


def clouds(seed=0, n=60, sep=6.0):
    """ID harmful at +sep/2 e0, ID benign at -sep/2 e0, unit isotropic noise."""
    rng = np.random.default_rng(seed)
    mu_h = np.zeros(D)
    mu_h[0] = sep / 2
    mu_b = -mu_h
    Xh = mu_h + rng.standard_normal((n, D))
    Xb = mu_b + rng.standard_normal((n, D))
    return rng, mu_h, mu_b, Xh, Xb


def test_pad_far_apart_and_identical():
    rng, _, _, Xh, Xb = clouds(sep=10.0)
    assert probing.proxy_a_distance(Xh, Xb) > 1.9
    same_a = rng.standard_normal((80, D))
    same_b = rng.standard_normal((80, D))
    assert probing.proxy_a_distance(same_a, same_b) < 0.5


def test_pad_balances_unequal_sizes_and_validates():
    rng, _, _, Xh, Xb = clouds(sep=10.0)
    assert probing.proxy_a_distance(Xh, Xb[:20]) > 1.9
    with pytest.raises(ValueError):
        probing.proxy_a_distance(Xh[:3], Xb, cv=5)
    with pytest.raises(ValueError):
        probing.proxy_a_distance(Xh, Xb[:, :3])


def test_probe_transfer_at_benign_and_harmful_centroids():
    rng, mu_h, mu_b, Xh, Xb = clouds()
    ood_benign_like = mu_b + 0.5 * rng.standard_normal((40, D))
    ood_harm_like = mu_h + 0.5 * rng.standard_normal((40, D))
    res = probing.probe_transfer(
        Xh[:40], Xb[:40], Xh[40:], Xb[40:], {"shifted": ood_benign_like, "same": ood_harm_like}
    )
    assert res["id_acc"] > 0.95
    assert res["id_correct"].shape == (40,) and res["id_correct"].dtype == bool
    assert res["transfer_acc"]["shifted"] < 0.1
    assert res["transfer_acc"]["same"] > 0.9
    assert res["transfer_correct"]["shifted"].shape == (40,)


def test_centroid_position_and_closer_to_benign():
    rng, mu_h, mu_b, _, _ = clouds()
    at_benign = mu_b + 0.3 * rng.standard_normal((50, D))
    at_harm = mu_h + 0.3 * rng.standard_normal((50, D))
    assert abs(probing.centroid_position(at_benign, mu_h, mu_b).mean()) < 0.1
    assert abs(probing.centroid_position(at_harm, mu_h, mu_b).mean() - 1) < 0.1
    assert probing.closer_to_benign_fraction(at_benign, mu_h, mu_b) == 1.0
    assert probing.closer_to_benign_fraction(at_harm, mu_h, mu_b) == 0.0
    # exact: midpoint -> 0.5, centroids -> 0 and 1
    pts = np.vstack([mu_b, mu_h, (mu_h + mu_b) / 2])
    np.testing.assert_allclose(probing.centroid_position(pts, mu_h, mu_b), [0, 1, 0.5])
    with pytest.raises(ValueError):
        probing.centroid_position(pts, mu_h, mu_h)


@pytest.mark.parametrize("method", ["pca", "diff"])
def test_projection_fit_on_id_only(method):
    rng, mu_h, mu_b, Xh, Xb = clouds()
    proj = probing.fit_id_projection(Xh, Xb, method=method)
    assert proj.components.shape == (2, D) and proj.mean.shape == (D,)
    np.testing.assert_allclose(proj.components @ proj.components.T, np.eye(2), atol=1e-10)
    # deterministic, and depends on ID data only: refitting gives identical projection, and
    # projecting arbitrary OOD sets leaves it unchanged
    ood1 = rng.standard_normal((30, D)) + 100
    before = proj.transform(Xh).copy()
    proj.transform(ood1)
    again = probing.fit_id_projection(Xh, Xb, method=method)
    np.testing.assert_array_equal(again.components, proj.components)
    np.testing.assert_array_equal(proj.transform(Xh), before)
    # axis 1 separates harmful (positive) from benign (negative)
    assert proj.transform(Xh)[:, 0].mean() > 0 > proj.transform(Xb)[:, 0].mean()
    assert proj.transform(ood1).shape == (30, 2)
    with pytest.raises(ValueError):
        proj.transform(np.zeros((3, D + 1)))


def test_projection_diff_axis_and_bad_method():
    _, _, _, Xh, Xb = clouds()
    proj = probing.fit_id_projection(Xh, Xb, method="diff")
    d = Xh.mean(0) - Xb.mean(0)
    np.testing.assert_allclose(proj.components[0], d / np.linalg.norm(d))
    with pytest.raises(ValueError):
        probing.fit_id_projection(Xh, Xb, method="tsne")


def test_layer_metrics_shapes_and_values():
    rng = np.random.default_rng(7)
    n, L = 40, 3
    mu = np.zeros(D)
    mu[0] = 3.0

    def stack(center):
        return center + rng.standard_normal((n, L, D))

    states = {
        "harm": stack(mu),
        "benign": stack(-mu),
        "plain": stack(mu),
        "ood_benignish": stack(-mu),
        "ood_harmish": stack(mu),
    }
    src = {k: [f"s{i}" for i in range(n)] for k in ("plain", "ood_benignish", "ood_harmish")}
    df = probing.layer_metrics(
        states, "harm", "benign", ["ood_benignish", "ood_harmish"], plain_key="plain", sources=src, cv=3, n_boot=100
    )
    assert list(df.columns) == ["layer", "evalset", "metric", "value", "ci_low", "ci_high"]
    assert sorted(df["layer"].unique()) == [0, 1, 2]
    assert len(df) == L * (2 + 3 + 2 * 4)
    assert set(df["metric"]) == set(probing.METRICS)
    v = df.set_index(["layer", "evalset", "metric"])["value"]
    for layer in range(L):
        assert v[(layer, "harm", "probe_cv_acc")] > 0.9
        assert v[(layer, "plain", "probe_transfer_acc")] > 0.8
        assert v[(layer, "ood_benignish", "probe_transfer_acc")] < 0.2
        assert v[(layer, "ood_harmish", "probe_transfer_acc")] > 0.8
        assert v[(layer, "ood_benignish", "closer_to_benign")] > 0.8
        # divergence: a shifted set is far from its plain prompts, an unshifted one near the ID-vs-ID null
        assert v[(layer, "ood_benignish", "mmd")] > 5 * v[(layer, "ood_harmish", "mmd")]
        assert v[(layer, "ood_harmish", "mmd")] < 3 * max(v[(layer, "harm", "mmd_null")], 0.05)
    per_prompt = df[~df["metric"].isin(["mmd", "mmd_null", "probe_cv_acc"])]
    assert per_prompt[["ci_low", "ci_high"]].notna().all().all()
    with pytest.raises(KeyError):
        probing.layer_metrics(states, "harm", "benign", ["missing"])


def test_projection_panel_smoke(tmp_path):
    import matplotlib.pyplot as plt

    from srg import plotting

    _, _, _, Xh, Xb = clouds()
    proj = probing.fit_id_projection(Xh, Xb)
    fig, ax = plt.subplots()
    pts = {"id_harmful": proj.transform(Xh), "id_benign": proj.transform(Xb), "ood": proj.transform(Xh[:10] * 0.1)}
    plotting.projection_panel(ax, pts, "layer 0")
    paths = plotting.save_figure(fig, tmp_path / "proj")
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    plt.close(fig)


def test_c2_claims_both_ways():
    """Attacked states that sit with ID benign support C2.position / C2.transfer against the plain
    control; attacked states equal in distribution to the plain ones do not; C2.divergence compares
    the paired MMD of two models on the same prompts."""
    rng = np.random.default_rng(3)
    n, L = 30, 2
    mu = np.zeros(D)
    mu[0] = 3.0

    def stack(center, k=n):
        return center + rng.standard_normal((k, L, D))

    def model_states(ood_center):
        return {"harm": stack(mu), "benign": stack(-mu), "plain": stack(mu), "attack": stack(ood_center)}

    states = {"rt": model_states(-mu), "srg": model_states(mu)}
    sources = {"harm": [f"h{i}" for i in range(n)], "benign": [f"b{i}" for i in range(n)]}
    sources.update({k: [f"s{i}" for i in range(n)] for k in ("plain", "attack")})
    args = dict(
        ood_sets=["attack"],
        id_harm="harm",
        id_benign="benign",
        plain="plain",
        layer=1,
        pooling="last",
        evidence="results/x",
        n_boot=200,
        n_perm=99,
    )
    rt, table = probing.c2_claims(states, sources, "rt", **args)
    got = {c.id: c for c in rt}
    assert {k: c.verdict for k, c in got.items()} == {
        "C2.position.attack": "supported",
        "C2.transfer": "supported",
        "C2.divergence": "supported",
    }
    assert got["C2.transfer"].p_value < 0.01 and got["C2.transfer"].n_clusters == n
    assert table["recall_plain"].iloc[0] > 0.9 and table["recall_attacked"].iloc[0] < 0.2
    assert table["mmd2_p"].iloc[0] < 0.05
    srg, table = probing.c2_claims({"srg": states["srg"]}, sources, "srg", **args)
    got = {c.id: c.verdict for c in srg}
    assert got["C2.position.attack"] == "refuted" and got["C2.transfer"] != "supported"
    assert table["mmd2_p"].iloc[0] > 0.05  # attacked ~ plain: the permutation null holds
