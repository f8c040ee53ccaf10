# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Domain-adaptation analysis (claim C2)
#
# Does refusal training (RT) learn a harmful-vs-benign boundary that only holds in its own input domain? If so, attacked (OOD) harmful prompts should be represented *like benign prompts*: a probe trained on in-distribution (ID) data should transfer badly, and OOD points should sit nearer the benign centroid.
#
# **Design.** The probe (standardised L2 logistic regression), the two centroids (in the probe's standardised space) and the PCA space of the divergence measure are fit on the training prompts only: ID harmful = `train_harmful` (what RT was refusal-trained on) vs ID benign = `train_benign`. The **control** is the plain held-out `id_eval` prompts; every attack set transforms exactly those prompts, so each attacked prompt is compared with its own plain version (paired by source prompt): C2.transfer = recall on attacked minus recall on plain, same prompts. Divergence = MMD^2 (RBF kernel, median bandwidth, 10 PCs of the standardised training states) between the attacked and plain states of the same prompts, with a paired permutation p-value; its null reference `mmd_null` is ID vs ID (two halves of `train_harmful`). Position t = 0 at the benign centroid, 1 at the harmful centroid. The 2-D figure is a RepE-style projection fit on the training prompts only.

# %% tags=["parameters"]
# Parameters (papermill overrides these)
results_dir = "results"
config_name = "default"
seed = 0
models = ["base", "rt"]
id_harm = "train_harmful"
id_benign = "train_benign"
plain_set = "id_eval"  # the control: plain held-out prompts the attack sets transform
prompts = {}  # {set name: prompts .jsonl} (source prompt ids of attacked sets)
ood_sets = []
states = {}  # {model: {set name: hidden-states .npz}}
representations_fig = "results/figures/representations.png"
probe_transfer_fig = "results/figures/probe_transfer.png"
metrics_csv = "results/probing/metrics.csv"
claims_json = "results/claims/c2.json"
claim_model = "rt"
bon_dir = "results/bon"  # optional: <model>.csv BoN tables (srg.bon.tidy_bon_table), read if present
main_table = "results/tables/main.csv"  # optional: greedy ASR per model and eval set, read if present
layer = 20
pooling = "last"
projection = "pca"
n_bootstrap = 1000
ci = 0.95
test_frac = 0.3
probe_C = 1.0
cv = 5
max_points = 200

# %% [markdown]
# > **Caveats at the 135M scale (read before the numbers).** The embedded default model is SmolLM2-135M-Instruct, a tiny model whose refusal behaviour is weak and brittle, fine-tuned with LoRA on a few hundred prompts. Its representations may not separate harmful from benign intent at all; a ciphered or encoded prompt (base64, Morse, Caesar) may simply be noise to it, so "OOD sits near benign" can reflect *not understanding the prompt* rather than the paper's domain shift. Sets are small (tens to hundreds of prompts), so CIs are wide; attack sets are derived from the same `id_eval` prompts, so pooled statistics resample whole source prompts. The layer was fixed a priori in the config, not chosen on these results; per-layer curves show every layer. **Treat these results as a test of the pipeline and of direction, not as evidence about 7-8B models.**

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy.stats import spearmanr

from srg import plotting, probing
from srg.claims import evidence_path, write_claims_fragment
from srg.hidden_states import load_meta, load_states
from srg.io import read_jsonl

plotting.set_theme()
if pooling not in ("last", "mean"):
    raise ValueError(f"pooling must be 'last' or 'mean', got {pooling!r}")
ID_SETS = [id_harm, id_benign, plain_set]
LABEL = {id_harm: "ID harmful", id_benign: "ID benign", plain_set: "plain held-out"}


def evidence(path):
    return evidence_path(path, results_dir)


X, metas, SRC = {}, {}, {}
for m in models:
    X[m] = {}
    for s in ID_SETS + list(ood_sets):
        ids, last, mean = load_states(states[m][s])
        X[m][s] = (last if pooling == "last" else mean).astype(np.float32)
        metas[(m, s)] = load_meta(states[m][s])
        src = {r["id"]: r.get("meta", {}).get("source_id", r["id"]) for r in read_jsonl(prompts[s])}
        SRC.setdefault(s, [str(src[i]) for i in ids])
n_states = X[models[0]][id_harm].shape[1]
li = layer if layer >= 0 else n_states + layer
if not 0 <= li < n_states:
    raise ValueError(f"layer {layer} out of range: the states have {n_states} (embeddings + blocks)")
sizes = pd.DataFrame(
    [
        {
            "model": m,
            "set": s,
            "n": len(v),
            "layers": v.shape[1],
            "dim": v.shape[2],
            "truncated": metas[(m, s)]["truncated"],
        }
        for m in models
        for s, v in X[m].items()
    ]
)
min_n = int(sizes["n"].min())
cv_eff = max(2, min(cv, min_n))
if cv_eff != cv:
    print(f"note: the probe's CV accuracy uses {cv_eff} folds (smallest set has {min_n} prompts; config asks {cv})")
print(f"pooling={pooling}, layer index {li} of {n_states} (0 = embeddings), projection={projection}")
sizes.pivot(index="set", columns="model", values="n")

# %% [markdown]
# ## 2-D projections (fit on ID only, OOD projected in)
# One panel per model at the configured layer; at most `max_points` points per set are drawn (seeded subsample). The projection is fit on *all* ID prompts of both classes.

# %%
rng = np.random.default_rng(seed)


def sub(P):
    return P if len(P) <= max_points else P[np.sort(rng.choice(len(P), max_points, replace=False))]


fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 4.4), squeeze=False)
for ax, m in zip(axes[0], models):
    H, B = X[m][id_harm][:, li], X[m][id_benign][:, li]
    proj = probing.fit_id_projection(H, B, method=projection)
    pts = {LABEL[id_harm]: sub(proj.transform(H)), LABEL[id_benign]: sub(proj.transform(B))}
    pts.update({s: sub(proj.transform(X[m][s][:, li])) for s in [plain_set, *ood_sets]})
    plotting.projection_panel(
        ax, pts, f"{m} (layer {li}, {pooling} token)", id_harm_key=LABEL[id_harm], id_benign_key=LABEL[id_benign]
    )
    ev = proj.explained_variance / max(np.trace(np.cov(np.vstack([H, B]).T)), 1e-12)
    ax.set_xlabel(f"{'PC1' if projection == 'pca' else 'harmful - benign'} ({ev[0]:.0%} of ID var.)")
    ax.set_ylabel(f"PC{'2' if projection == 'pca' else '1 of residual'} ({ev[1]:.0%})")
fig.suptitle("Hidden states: ID harmful vs ID benign, OOD attacks projected in")
fig.tight_layout()
plotting.save_figure(fig, str(Path(representations_fig).with_suffix("")))
plt.show()

# %% [markdown]
# ## Per-layer metrics
# `probing.layer_metrics` per model: cross-validated probe accuracy on the training prompts, recall (share the probe calls harmful) on the plain held-out prompts and on each attack set, paired MMD^2 of each attack set against the plain prompts (ID-vs-ID null beside it), mean centroid position and share closer to benign, with prompt-bootstrap CIs (MMD: none).


# %%
def informative_layers(m):
    # Layers where ID prompts differ at all: with last-token pooling the embedding layer (0) holds
    # the same token (end of the generation prompt) for every prompt, so nothing can be fit there.
    ID = np.concatenate([X[m][id_harm], X[m][id_benign]])
    keep = [i for i in range(n_states) if np.ptp(ID[:, i], axis=0).max() > 0]
    if len(keep) < n_states:
        print(
            f"note: {m}: layers {sorted(set(range(n_states)) - set(keep))} skipped (identical states for all ID prompts)"
        )
    return keep


frames = []
for m in models:
    df = probing.layer_metrics(
        X[m],
        id_harm,
        id_benign,
        list(ood_sets),
        plain_key=plain_set,
        sources=SRC,
        seed=seed,
        C=probe_C,
        cv=cv_eff,
        n_boot=n_bootstrap,
        ci=ci,
        layers=informative_layers(m),
    )
    frames.append(df.assign(model=m))
metrics = pd.concat(frames, ignore_index=True)
metrics.insert(0, "model", metrics.pop("model"))
metrics["pooling"] = pooling
metrics["config"] = config_name
Path(metrics_csv).parent.mkdir(parents=True, exist_ok=True)
metrics.to_csv(metrics_csv, index=False)
at = metrics[metrics["layer"] == li]
if at.empty:
    raise ValueError(f"configured layer {li} is uninformative (see the note above); choose another")
at.pivot_table(index=["model", "evalset"], columns="metric", values="value").round(3)

# %%
sets_drawn = list(ood_sets)
colors = dict(zip(sets_drawn, sns.color_palette("Dark2", n_colors=max(len(sets_drawn), 1))))
fig, axes = plt.subplots(len(models), 2, figsize=(11, 3.6 * len(models)), squeeze=False)
for row, m in zip(axes, models):
    d = metrics[metrics["model"] == m]
    ax = row[0]
    ida = d[(d["metric"] == "probe_transfer_acc") & (d["evalset"] == plain_set)].sort_values("layer")
    ax.plot(ida["layer"], ida["value"], color="k", ls="--", label="plain held-out (control)")
    ax.fill_between(ida["layer"], ida["ci_low"], ida["ci_high"], color="k", alpha=0.1, lw=0)
    for s in sets_drawn:
        t = d[(d["metric"] == "probe_transfer_acc") & (d["evalset"] == s)].sort_values("layer")
        ax.plot(t["layer"], t["value"], color=colors[s], label=s)
        ax.fill_between(t["layer"], t["ci_low"], t["ci_high"], color=colors[s], alpha=0.12, lw=0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("probe recall (harmful)")
    ax.set_title(f"{m}: ID probe transfer ({pooling} token)")
    ax = row[1]
    ref = d[(d["metric"] == "mmd_null") & (d["evalset"] == id_harm)].sort_values("layer")
    ax.plot(ref["layer"], ref["value"], color="k", ls="--", label="ID vs ID (null)")
    for s in sets_drawn:
        t = d[(d["metric"] == "mmd") & (d["evalset"] == s)].sort_values("layer")
        ax.plot(t["layer"], t["value"], color=colors[s], label=s)
    ax.set_ylabel("MMD^2 vs the plain prompts")
    ax.set_title(f"{m}: divergence of attacked from plain states")
    for ax in row:
        ax.axvline(li, color="0.5", lw=0.8, ls=":")
        ax.set_xlabel("layer (0 = embeddings)")
    row[1].legend(fontsize="x-small", frameon=False, ncol=2)
    row[0].legend(fontsize="x-small", frameon=False, ncol=2)
fig.tight_layout()
plotting.save_figure(fig, str(Path(probe_transfer_fig).with_suffix("")))
plt.show()

# %% [markdown]
# ## Across models: divergence vs attack success
# Each OOD set of each model becomes one point: representation metric at the configured layer vs that model's greedy ASR on the set (from `main_table`, the evaluation stage's tidy table and a DAG input of this notebook; `bon_dir/<model>.csv` when it is absent), with a Spearman rank correlation.


# %%
def greedy_asr_table():
    rows = []
    if Path(main_table).exists():  # the evaluation stage's tidy table: every model, greedy
        t = pd.read_csv(main_table)
        t = t[(t["metric"] == "asr_compliance") & t["model"].isin(models)]
        rows = [{"model": r.model, "evalset": r.evalset, "greedy_asr": r.value} for r in t.itertuples()]
    for m in models if not rows else []:
        p = Path(bon_dir) / f"{m}.csv"
        if p.exists():
            b = pd.read_csv(p)
            g = b.groupby("evalset", as_index=False)["greedy_asr"].first()
            rows += [{"model": m, "evalset": r.evalset, "greedy_asr": r.greedy_asr} for r in g.itertuples()]
    return pd.DataFrame(rows, columns=["model", "evalset", "greedy_asr"]).dropna()


asr = greedy_asr_table()
wide = (
    at[at["evalset"].isin(ood_sets)]
    .pivot_table(index=["model", "evalset"], columns="metric", values="value")
    .reset_index()
)
joined = wide.merge(asr, on=["model", "evalset"]) if len(asr) else pd.DataFrame()
if len(joined) < 3:
    print(
        f"note: cross-model section skipped: {len(joined)} (model, OOD set) pairs with a greedy ASR "
        f"(looked for {bon_dir}/<model>.csv and {main_table}); need >= 3"
    )
    corr = pd.DataFrame()
else:
    cols = ["mmd", "probe_transfer_acc", "mean_position"]
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.6))
    out = []
    for ax, c in zip(axes, cols):
        sns.scatterplot(data=joined, x=c, y="greedy_asr", hue="model", style="model", ax=ax)
        rho, p = spearmanr(joined[c], joined["greedy_asr"])
        out.append({"metric": c, "spearman_rho": rho, "p_value": p, "n": len(joined)})
        ax.set_title(f"rho = {rho:.2f} (n = {len(joined)})")
        ax.set_ylim(-0.02, 1.02)
    fig.tight_layout()
    plt.show()
    corr = pd.DataFrame(out)
corr

# %% [markdown]
# ## Claims (C2)
# For `claim_model` (RT) at the configured layer and pooling (`probing.c2_claims`):
# * **C2.transfer** (declared primary): recall of the training-prompt probe on attacked prompts minus its recall on the plain versions of the same prompts, pooled over attacks; cluster bootstrap over source prompts, exact sign-flip p; claimed < 0.
# * **C2.position.&lt;attack&gt;**: mean centroid position < 0.5 (closer to ID benign), in the probe's standardised space.
# * **C2.divergence** (when `srg` is among the models): mean over attacks of the paired MMD^2 (attacked vs plain, same prompts) of RT minus SRG's, claimed > 0.
#
# Evidence paths are written as `results/...` relative to the results directory.

# %%
claims = []
if claim_model not in models:
    print(f"note: claim model {claim_model!r} not among {models}: no C2 claims written")
else:
    claims, per_attack = probing.c2_claims(
        {m: X[m] for m in models},
        SRC,
        claim_model,
        list(ood_sets),
        id_harm,
        id_benign,
        plain_set,
        li,
        pooling,
        evidence=evidence(metrics_csv),
        probe_C=probe_C,
        n_boot=n_bootstrap,
        ci=ci,
        seed=seed,
    )
    display(per_attack.round(3))
    if "srg" not in models:
        print("note: C2.divergence skipped: 'srg' is not among the models")
rows = write_claims_fragment(claims_json, claims)
pd.DataFrame(rows)
