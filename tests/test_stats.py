"""Inference helpers (srg.stats) and the BoN extrapolation (srg.bon_extrapolation)."""

import numpy as np
import pytest
from scipy.stats import binomtest

from srg import bon, bon_extrapolation, stats


def test_sign_flip_on_one_binary_pair_per_prompt_is_the_exact_sign_test():
    d = np.array([1] * 9 + [-1] * 2 + [0] * 9, dtype=float)  # 9 vs 2 discordant pairs, 9 ties
    p = stats.sign_flip_p(d, [f"s{i}" for i in range(len(d))], "greater")
    assert p == pytest.approx(binomtest(9, 11, 0.5, alternative="greater").pvalue)
    assert stats.sign_flip_p(np.zeros(5), list("abcde"), "less") == 1.0


def test_sign_flip_permutes_whole_clusters():
    d = np.array([1.0, 1.0, 1.0, 1.0])
    assert stats.sign_flip_p(d, ["a", "b", "c", "d"], "greater") == pytest.approx(1 / 16)
    assert stats.sign_flip_p(d, ["a", "a", "b", "b"], "greater") == pytest.approx(1 / 4)


def test_cluster_bootstrap_keeps_clusters_together():
    v = np.array([1.0, 1.0, 0.0, 0.0])
    reps = stats.cluster_bootstrap_means(v, ["a", "a", "b", "b"], n_boot=500, seed=0)
    assert set(np.round(reps, 6)) <= {0.0, 0.5, 1.0}  # two clusters: only three possible means
    reps_rows = stats.cluster_bootstrap_means(v, ["a", "b", "c", "d"], n_boot=500, seed=0)
    assert len(set(np.round(reps_rows, 6))) > 3


def test_seed_bootstrap_reduces_to_cluster_bootstrap_and_widens_with_seed_spread():
    rng = np.random.default_rng(0)
    clusters = [f"s{i % 20}" for i in range(60)]
    a0, b = rng.integers(0, 2, 60).astype(float), rng.integers(0, 2, 60).astype(float)
    one = stats.seed_cluster_bootstrap_diffs(a0, b, clusters, 400, 3)
    assert np.array_equal(one, stats.cluster_bootstrap_means(a0 - b, clusters, 400, 3))
    # two seeds that agree: the seed draws change nothing
    same = stats.seed_cluster_bootstrap_diffs(np.c_[a0, a0], b, clusters, 400, 3)
    assert np.allclose(same, one)
    # two seeds that disagree (one all-safe, one all-unsafe): the CI must cover the seed spread
    split = stats.seed_cluster_bootstrap_diffs(np.c_[np.zeros(60), np.ones(60)], b, clusters, 400, 3)
    lo, hi = stats.percentile_ci(split)
    cond = stats.percentile_ci(stats.cluster_bootstrap_means(0.5 - b, clusters, 400, 3))
    assert (hi - lo) > 2 * (cond[1] - cond[0])
    assert lo <= -b.mean() + 0.05 and hi >= 1 - b.mean() - 0.05  # both seeds' values inside


def test_holm_and_bootstrap_p():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert np.isnan(stats.holm([np.nan, 0.01])[0])
    reps = np.linspace(-1, 1, 1001)
    assert stats.bootstrap_p(reps, 0.0, "greater") == pytest.approx(502 / 1002)
    assert stats.bootstrap_p(reps + 5, 0.0, "greater") == pytest.approx(1 / 1002)


def test_beta_binomial_fit_recovers_known_parameters():
    rng = np.random.default_rng(0)
    a, b, n = 0.6, 1.8, 16
    u = rng.binomial(n, rng.beta(a, b, size=5000))
    fa, fb = bon_extrapolation.fit_beta_binomial(u, n)
    assert fa == pytest.approx(a, rel=0.1) and fb == pytest.approx(b, rel=0.1)
    # the closed form agrees with the unbiased estimator at N <= n
    assert bon_extrapolation.beta_asr(fa, fb, n) == pytest.approx(bon.bon_curve(u, n, [n])[n], abs=0.01)


def test_extrapolation_and_its_validation():
    rng = np.random.default_rng(1)
    n, k = 8, 300
    S = (rng.random((k, n)) < rng.beta(0.8, 1.2, size=k)[:, None]).astype(int)
    df = bon_extrapolation.extrapolate(S.sum(axis=1), n, [1, n, 128], n_boot=50)
    bb = df[df["method"] == "beta_binomial"].set_index("N")
    truth_128 = bon_extrapolation.beta_asr(0.8, 1.2, 128)
    assert bb.loc[128, "ci_low"] <= truth_128 * 3 and bb.loc[128, "asr"] < bb.loc[n, "asr"] < bb.loc[1, "asr"]
    assert (df["ci_low"] <= df["asr"] + 1e-12).all() and (df["asr"] <= df["ci_high"] + 1e-12).all()
    val = bon_extrapolation.validate(S)
    assert abs(val["beta_binomial"]["error"]) < 0.05
    assert val["beta_binomial"]["n_fit"] == n // 2


def test_power_law_fit():
    Ns = np.arange(1, 9)
    c, k = bon_extrapolation.fit_power_law(Ns, np.exp(-0.3 * Ns**0.5))
    assert c == pytest.approx(0.3) and k == pytest.approx(0.5)
    assert np.isnan(bon_extrapolation.fit_power_law([1, 2], [1.0, 1.0])[0])
