"""Cells of notebooks/bon_analysis.ipynb: Best-of-N ASR curves (paper Figure 1, claim C1)."""

CELLS = [
    ("md", "# Best-of-N analysis (paper Figure 1, claim C1)\n\n"
           "For each model and eval set (ID harmful + every OOD attack) we draw `n` samples per prompt in "
           "one sampling pass and judge each. ASR@N, the chance that *all* of N samples are unsafe (the "
           "attack fails as soon as one of N responses is safe), is estimated for every N <= n without "
           "bias as C(u, N) / C(n, N) (u = unsafe samples of that prompt), averaged over prompts; CIs by "
           "bootstrap over prompts. Greedy ASR is drawn as a dotted line.\n\n"
           "**Scale caveat.** Embedded default: a 135M model, n = 8 (paper: 8B, n = 128) and a keyword "
           "judge (paper: Llama-Guard-3-8B). The keyword judge counts every non-refusal as unsafe, so an "
           "incoherent answer counts as a successful attack."),
    ("params", """# Parameters (papermill overrides these)
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
paper_relative_drop = 0.6"""),
    ("code", """from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from srg import bon, plotting
from srg.claims import Claim, evidence_path, verdict_from_ci, write_claims_fragment
from srg.io import read_jsonl

plotting.set_theme()
R = Path(results_dir)

def evidence(path):
    return evidence_path(path, R)

def unsafe_counts(model, evalset):
    rows = pd.DataFrame(read_jsonl(R / "judgements" / model / f"{evalset}.sample.jsonl"))
    per_prompt = rows.groupby("prompt_id")["unsafe"].agg(["sum", "size"])
    if (per_prompt["size"] != n).any():
        raise ValueError(f"{model}/{evalset}: expected {n} samples per prompt, got {sorted(set(per_prompt['size']))}")
    return per_prompt["sum"]

def greedy_flags(model, evalset, index):
    rows = pd.DataFrame(read_jsonl(R / "judgements" / model / f"{evalset}.greedy.jsonl")).set_index("prompt_id")
    return rows.loc[index, "unsafe"].astype(int).to_numpy()"""),
    ("md", "## ASR@N tables\nOne tidy CSV per model: `results/bon/<model>.csv`."),
    ("code", """tables = {}
for model in models:
    parts = []
    for evalset in model_evalsets.get(model, evalsets):
        counts = unsafe_counts(model, evalset)
        flags = greedy_flags(model, evalset, counts.index)
        parts.append(bon.tidy_bon_table(model, evalset, counts.to_numpy(), n, flags,
                                        n_boot=n_bootstrap, ci=ci, seed=seed))
    tables[model] = pd.concat(parts, ignore_index=True)
    out = R / "bon" / f"{model}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    tables[model].to_csv(out, index=False)
bon_all = pd.concat(tables.values(), ignore_index=True)
summary = bon_all[bon_all["N"].isin([1, n])].pivot_table(index=["model", "evalset"], columns="N", values="asr")
summary["greedy"] = bon_all.groupby(["model", "evalset"])["greedy_asr"].first()
summary.round(3)"""),
    ("md", "## Figure 1: ASR@N vs N"),
    ("code", """fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4.2), sharey=True, squeeze=False)
for ax, model in zip(axes[0], models):
    plotting.bon_curves(tables[model], ax=ax, hue="evalset", title=f"{model}: ASR@N (n={n}, T={temperature}, top_p={top_p})")
    ax.set_ylim(-0.02, 1.02)
fig.tight_layout()
plotting.save_figure(fig, str(Path(figure).with_suffix("")))
plt.show()"""),
    ("md", "## Claim C1: for the RT model, ASR@n is well below greedy ASR on each OOD attack\n"
           "Statistic: relative drop (greedy ASR - ASR@n) / greedy ASR, paired bootstrap over prompts. "
           "Supported when the whole CI is above 0; refuted when it is below 0; inconclusive otherwise or "
           "when greedy ASR is 0 (nothing to drop). The summary pools prompts over all OOD attacks "
           f"(the paper reports about a 60% drop at n = 128)."),
    ("code", """claims, rows = [], []
model = "rt" if "rt" in models else models[-1]
pooled_flags, pooled_counts = [], []
c1_sets = [e for e in ood_evalsets if e in model_evalsets.get(model, evalsets)]
for evalset in c1_sets:
    counts = unsafe_counts(model, evalset)
    flags = greedy_flags(model, evalset, counts.index)
    pooled_flags.append(flags); pooled_counts.append(counts.to_numpy())
    value, lo, hi = bon.relative_drop(flags, counts.to_numpy(), n, n_boot=n_bootstrap, seed=seed, ci=ci)
    verdict = verdict_from_ci(lo, hi, 0.0, "greater") if np.isfinite(value) else "inconclusive"
    g = flags.mean(); asr_n = bon.bon_curve(counts.to_numpy(), n, [n])[n]
    rows.append({"attack": evalset, "greedy_asr": g, f"asr@{n}": asr_n, "relative_drop": value,
                 "ci_low": lo, "ci_high": hi, "verdict": verdict})
    claims.append(Claim(
        id=f"C1.{evalset}", statement=f"For {model}, ASR@{n} on the {evalset} attack is below its greedy ASR",
        statistic=f"relative drop (greedy ASR - ASR@{n}) / greedy ASR; greedy {g:.3f}, ASR@{n} {asr_n:.3f}",
        value=float(value), ci=(float(lo), float(hi)), verdict=verdict, evidence=evidence(R / "bon" / f"{model}.csv")))
if c1_sets:
    flags, counts = np.concatenate(pooled_flags), np.concatenate(pooled_counts)
    value, lo, hi = bon.relative_drop(flags, counts, n, n_boot=n_bootstrap, seed=seed, ci=ci)
    verdict = verdict_from_ci(lo, hi, 0.0, "greater") if np.isfinite(value) else "inconclusive"
    claims.append(Claim(
        id="C1.summary", statement=f"For {model}, ASR@{n} pooled over its {len(c1_sets)} sampled OOD attacks is well below greedy ASR "
                                   f"(paper: ~{paper_relative_drop:.0%} relative drop at n=128)",
        statistic=f"pooled relative drop (greedy ASR - ASR@{n}) / greedy ASR over {len(flags)} attacked prompts",
        value=float(value), ci=(float(lo), float(hi)), verdict=verdict, evidence=evidence(R / "bon" / f"{model}.csv")))
    rows.append({"attack": "pooled", "greedy_asr": flags.mean(), f"asr@{n}": bon.bon_curve(counts, n, [n])[n],
                 "relative_drop": value, "ci_low": lo, "ci_high": hi, "verdict": verdict})
write_claims_fragment(claims_out, claims)
pd.DataFrame(rows).round(3)"""),
]
