# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Best-of-N analysis (paper Figure 1, claim C1)
#
# For each model and eval set (ID harmful + every OOD attack) we draw `n` samples per prompt in one sampling pass and judge each. ASR@N, the chance that *all* of N samples are unsafe (the attack fails as soon as one of N responses is safe), is estimated for every N <= n without bias as C(u, N) / C(n, N) (u = unsafe samples of that prompt), averaged over prompts; CIs by bootstrap over prompts. Greedy ASR is drawn as a dotted line.
#
# **Scale caveat.** Embedded default: a 135M model, n = 8 (paper: 8B, n = 128) and a keyword judge (paper: Llama-Guard-3-8B). The keyword judge counts every non-refusal as unsafe, so an incoherent answer counts as a successful attack.

# %% tags=["parameters"]
# Parameters (papermill overrides these)
results_dir = "results"
models = ["base", "rt"]
evalsets = ["id_eval"]
ood_evalsets = []
model_evalsets = {}  # model -> the eval sets it was sampled on (bon.evalsets); absent: all of evalsets
n = 16
temperature = 1.0
top_p = 1.0
n_bootstrap = 1000
ci = 0.95
seed = 0
figure = "results/figures/bon_curves.png"
claims_out = "results/claims/c1.json"
config_name = "default"
paper_relative_drop = 0.6

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from srg import bon, plotting
from srg.claims import evidence_path, write_claims_fragment

plotting.set_theme()
R = Path(results_dir)


def evidence(path):
    return evidence_path(path, R)


def unsafe_counts(model, evalset):
    return bon.load_sample_counts(R / "judgements" / model / f"{evalset}.sample.jsonl", n)


def greedy_flags(model, evalset, index):
    return bon.load_greedy_flags(R / "judgements" / model / f"{evalset}.greedy.jsonl", index)


# %% [markdown]
# ## ASR@N tables
# One tidy CSV per model: `results/bon/<model>.csv`.

# %%
tables = {}
for model in models:
    parts = []
    for evalset in model_evalsets.get(model, evalsets):
        counts = unsafe_counts(model, evalset)
        flags = greedy_flags(model, evalset, counts.index)
        parts.append(
            bon.tidy_bon_table(model, evalset, counts.to_numpy(), n, flags, n_boot=n_bootstrap, ci=ci, seed=seed)
        )
    tables[model] = pd.concat(parts, ignore_index=True)
    out = R / "bon" / f"{model}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    tables[model].to_csv(out, index=False)
bon_all = pd.concat(tables.values(), ignore_index=True)
summary = bon_all[bon_all["N"].isin([1, n])].pivot_table(index=["model", "evalset"], columns="N", values="asr")
summary["greedy"] = bon_all.groupby(["model", "evalset"])["greedy_asr"].first()
summary.round(3)

# %% [markdown]
# ## Figure 1: ASR@N vs N

# %%
fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4.2), sharey=True, squeeze=False)
for ax, model in zip(axes[0], models):
    plotting.bon_curves(
        tables[model], ax=ax, hue="evalset", title=f"{model}: ASR@N (n={n}, T={temperature}, top_p={top_p})"
    )
    ax.set_ylim(-0.02, 1.02)
fig.tight_layout()
plotting.save_figure(fig, str(Path(figure).with_suffix("")))
plt.show()

# %% [markdown]
# ## Claim C1: for the RT model, ASR@n is well below greedy ASR on each OOD attack
# Statistic: relative drop (greedy ASR - ASR@n) / greedy ASR, paired bootstrap over prompts. Supported when the whole CI is above 0; refuted when it is below 0; inconclusive otherwise or when greedy ASR is 0 (nothing to drop). The summary pools prompts over all OOD attacks (the paper reports about a 60% drop at n = 128).

# %%
model = "rt" if "rt" in models else models[-1]
c1_sets = [e for e in ood_evalsets if e in model_evalsets.get(model, evalsets)]
counts = {e: unsafe_counts(model, e) for e in c1_sets}
claims, rows = bon.c1_claims(
    {e: c.to_numpy() for e, c in counts.items()},
    {e: greedy_flags(model, e, c.index) for e, c in counts.items()},
    model,
    n,
    evidence=evidence(R / "bon" / f"{model}.csv"),
    n_boot=n_bootstrap,
    ci=ci,
    seed=seed,
    paper_relative_drop=paper_relative_drop,
)
write_claims_fragment(claims_out, claims)
rows.round(3)
