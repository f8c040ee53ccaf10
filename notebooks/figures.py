# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Final figures and tables
#
# Everything here is *read* from files the DAG wrote under `results/` and only reshaped (`srg.report_tables`) and drawn (`srg.plotting`); no statistic is recomputed. Each panel says which file it reads. A panel whose file or rows do not exist yet (e.g. before the SRG stage has run) is skipped with a printed message, and its figure file then only states what is missing, so the notebook runs on any subset of the results.
#
# | panel | reads | writes |
# | --- | --- | --- |
# | (a) Best-of-N curves per model | `bon/<model>.csv` | `figures/final_bon.png/.pdf` |
# | (b) representation summary | `probing/metrics.csv` | `figures/final_representations.png/.pdf` |
# | (c) main table + heatmap | `tables/main.csv` | `figures/final_main.png/.pdf` |
# | (d) ablations | `tables/ablations.csv` or ablation rows of `tables/main.csv` | `figures/final_ablations.png/.pdf` |
# | (e) claims summary | `claims.json` | `tables/claims_summary.csv`, `figures/final_claims.png/.pdf` |

# %% tags=["parameters"]
# Parameters (papermill overrides these)
results_dir = "results"
config_name = "default"
models = ["base", "rt", "srg"]  # display order; panels draw only those present in the files
bon_tables = {"base": "results/bon/base.csv", "rt": "results/bon/rt.csv", "srg": "results/bon/srg.csv"}
probing_metrics = "results/probing/metrics.csv"
main_table = "results/tables/main.csv"
ablations_table = "results/tables/ablations.csv"
claims_json = "results/claims.json"
evalset_order = ["id_eval"]  # column order of tables: ID first, then the OOD attacks, then the rest
ood_sets = []
id_harm = "train_harmful"
probe_layer = 20
main_metric = "asr_compliance"
ablation_models = []  # empty: every model in main.csv named srg_* (plus srg itself)
ablation_metric = "asr_compliance"
fig_bon = "results/figures/final_bon.png"
fig_representations = "results/figures/final_representations.png"
fig_main = "results/figures/final_main.png"
fig_ablations = "results/figures/final_ablations.png"
fig_claims = "results/figures/final_claims.png"
claims_summary_csv = "results/tables/claims_summary.csv"
digits = 2

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from srg import plotting
from srg import report_tables as rt_tables

plotting.set_theme()
pd.set_option("display.max_colwidth", 120)
R = Path(results_dir)


def rel(path):
    p = Path(path)
    return p.relative_to(R).as_posix() if p.is_relative_to(R) else str(p)


def save(fig, png_path):
    out = plotting.save_figure(fig, str(Path(png_path).with_suffix("")))
    plt.show()
    print("wrote", ", ".join(rel(p) for p in out))


def skip(png_path, reason):
    """A skipped panel: say so, and write a figure that says so (the DAG declares every file)."""
    print(f"SKIPPED {Path(png_path).stem}: {reason}")
    fig = plotting.placeholder_figure(f"Not available in this run ({config_name}):\n{reason}")
    save(fig, png_path)


# %% [markdown]
# ## (a) Best-of-N: ASR@N vs N per model
# One panel per model with a `bon/<model>.csv` (base, RT, SRG side by side); one line per eval set, bootstrap CI bands, log2 N axis; dotted lines: greedy ASR. Paper Figure 1 compares RT and SRG: SRG's curves should start lower and stay low as N grows.

# %%
bon = {}
for m in rt_tables.ordered(list(bon_tables), models):
    df = rt_tables.read_optional_csv(bon_tables[m], required=["N", "asr", "ci_low", "ci_high", "evalset"])
    if df is None:
        print(f"no BoN table for {m}: {rel(bon_tables[m])} does not exist (yet)")
    else:
        bon[m] = df
if not bon:
    skip(fig_bon, "no bon/<model>.csv table")
else:
    k = len(bon)
    fig, axes = plt.subplots(1, k, figsize=(5.2 * k, 4.2), sharey=True, squeeze=False)
    for ax, (m, df) in zip(axes[0], bon.items()):
        df = df.assign(evalset=pd.Categorical(df["evalset"], rt_tables.ordered(df["evalset"], evalset_order)))
        df = df.sort_values(["evalset", "N"])
        df["evalset"] = df["evalset"].astype(str)
        plotting.bon_curves(df, ax=ax, hue="evalset", title=f"{m}: ASR@N (n = {int(df['N'].max())})")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0]:
        ax.get_legend().remove()
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.95), frameon=False, fontsize="small")
    fig.tight_layout()
    save(fig, fig_bon)
    last = pd.concat(bon.values(), ignore_index=True)
    last = last[last["N"] == last.groupby(["model", "evalset"])["N"].transform("max")]
    display(
        rt_tables.ci_pivot(
            last.assign(metric="asr@n", value=last["asr"]),
            "asr@n",
            index_order=models,
            column_order=evalset_order,
            digits=digits,
        )
    )

# %% [markdown]
# ## (b) Representations: probe transfer and proxy A-distance per model
# From `probing/metrics.csv` (domain-adaptation notebook). Top: per layer, the unweighted mean over the OOD attack sets of the ID-trained probe's transfer accuracy (share of attacked prompts still classified harmful) and of the paired MMD^2 between each attack set's states and those of the plain prompts it was built from (0 = indistinguishable), one line per model; the dotted line marks the configured layer. Bottom: each attack set at that layer. The paper's reading: RT's OOD prompts drift away from the ID harmful domain (low transfer, high PAD); SRG should narrow that gap.

# %%
metrics = rt_tables.read_optional_csv(probing_metrics, required=["model", "layer", "evalset", "metric", "value"])
if metrics is None:
    skip(fig_representations, f"{rel(probing_metrics)} does not exist")
else:
    sets = [s for s in metrics["evalset"].unique() if s != id_harm and (not ood_sets or s in ood_sets)]
    present = rt_tables.ordered(metrics["model"], models)
    li = probe_layer if probe_layer >= 0 else int(metrics["layer"].max()) + 1 + probe_layer
    panels = [
        ("probe_transfer_acc", "probe transfer accuracy", (-0.02, 1.02)),
        ("mmd", "MMD^2, attacked vs plain prompts", None),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), squeeze=False)
    at_layer = []
    for col, (metric, label, ylim) in enumerate(panels):
        d = rt_tables.layer_summary(metrics, metric, evalsets=sets)
        mean = d.groupby(["model", "layer"], as_index=False)["value"].mean()
        mean["model"] = pd.Categorical(mean["model"], present)
        plotting.layer_lines(
            axes[0][col],
            mean.sort_values(["model", "layer"]).assign(model=lambda x: x["model"].astype(str)),
            hue="model",
            mean_label=None,
            ylabel=f"{label}\n(mean over {len(sets)} sets)",
            title=label,
        )
        axes[0][col].axvline(li, color="0.5", lw=0.8, ls=":")
        if ylim:
            axes[0][col].set_ylim(*ylim)
        axes[0][col].legend(fontsize="small", frameon=False)
        d_li = d[d["layer"] == li]
        at_layer.append(d_li.assign(metric=metric))
        plotting.ci_bars(
            axes[1][col],
            d_li,
            x="evalset",
            hue="model",
            x_order=rt_tables.ordered(d_li["evalset"], evalset_order),
            hue_order=[m for m in present if m in set(d_li["model"])],
        )
        if ylim:
            axes[1][col].set_ylim(*ylim)
        axes[1][col].set_ylabel(f"{label} (layer {li})")
        axes[1][col].legend(
            fontsize="small", frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(present)
        )
    fig.tight_layout()
    save(fig, fig_representations)
    at_layer = pd.concat(at_layer, ignore_index=True)
    for metric, label, _ in panels:
        print(f"{label} at layer {li}:")
        display(rt_tables.ci_pivot(at_layer, metric, index_order=models, column_order=evalset_order, digits=digits))

# %% [markdown]
# ## (c) Main table
# From `tables/main.csv` (evaluation stage): rows = model, columns = eval set, cells = value [95% CI]. First the greedy attack success rate, then every other metric the file has (malformed rate, refusal rate on over-refusal prompts, non-refusal rate, answer log-likelihood).

# %%
main = rt_tables.read_optional_csv(main_table, required=["model", "evalset", "metric", "value"])
if main is None:
    skip(fig_main, f"{rel(main_table)} does not exist (written by the evaluation stage)")
elif main_metric not in set(main["metric"]):
    skip(fig_main, f"{rel(main_table)} has no {main_metric!r} rows")
else:
    core = (
        main[~main["model"].astype(str).str.match(r"^srg_.+")]
        if not ablation_models
        else main[~main["model"].isin(ablation_models)]
    )
    print(f"{main_metric} (value [CI]):")
    display(rt_tables.ci_pivot(core, main_metric, index_order=models, column_order=evalset_order, digits=digits))
    for metric in [m for m in main["metric"].unique() if m != main_metric]:
        print(f"{metric}:")
        display(rt_tables.ci_pivot(core, metric, index_order=models, column_order=evalset_order, digits=digits))
    values = rt_tables.value_pivot(core, main_metric, index_order=models, column_order=evalset_order)
    labels = rt_tables.ci_pivot(core, main_metric, index_order=models, column_order=evalset_order, digits=digits)
    labels = labels.map(lambda s: s.replace(" [", "\n[") if isinstance(s, str) else s)
    fig, ax = plt.subplots(figsize=(1.1 * values.shape[1] + 2.5, 0.75 * values.shape[0] + 1.8))
    plotting.annotated_heatmap(
        ax, values, labels, title=f"{main_metric} per model and eval set ({config_name})", cbar_label=main_metric
    )
    fig.tight_layout()
    save(fig, fig_main)

# %% [markdown]
# ## (d) Ablations
# From `tables/ablations.csv` when it exists, else the ablation models' rows of `tables/main.csv` (`srg` and `srg_*`). Bars: the configured metric per eval set, one bar per variant, CI error bars.

# %%
abl_file = rt_tables.read_optional_csv(ablations_table)
abl, source = rt_tables.ablation_frame(abl_file, main, ablation_models)
if abl is None:
    skip(fig_ablations, source)
elif ablation_metric not in set(abl["metric"]):
    skip(fig_ablations, f"{source} has no {ablation_metric!r} rows")
else:
    print("source:", source)
    display(rt_tables.ci_pivot(abl, ablation_metric, index="variant", column_order=evalset_order, digits=digits))
    d = abl[abl["metric"] == ablation_metric]
    x_order = rt_tables.ordered(d["evalset"], evalset_order)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(x_order) * max(1, d["variant"].nunique() / 3)), 4))
    plotting.ci_bars(ax, d, x="evalset", hue="variant", x_order=x_order)
    ax.set_ylabel(ablation_metric)
    ax.set_title(f"Ablations: {ablation_metric} ({config_name})")
    ax.legend(fontsize="small", frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    save(fig, fig_ablations)

# %% [markdown]
# ## (e) Claims
# Every claim the DAG tested (`claims.json`): statistic, value, CI, verdict, evidence file. Counts per claim group and verdict below; the table is also written to `tables/claims_summary.csv`.

# %%
if not Path(claims_json).exists():
    claims = rt_tables.claims_table({"claims": []})
    print(f"SKIPPED claims table: {rel(claims_json)} does not exist")
else:
    claims = rt_tables.claims_table(claims_json)
Path(claims_summary_csv).parent.mkdir(parents=True, exist_ok=True)
claims.to_csv(claims_summary_csv, index=False)
print("wrote", rel(claims_summary_csv), f"({len(claims)} claims)")
counts = rt_tables.verdict_counts(claims)
display(counts)
shown = claims.assign(
    **{
        "value [CI]": [
            rt_tables.format_ci(v, lo, hi, digits)
            for v, lo, hi in zip(claims["value"], claims["ci_low"], claims["ci_high"])
        ]
    }
)
display(shown[["id", "statement", "statistic", "value [CI]", "verdict", "evidence"]].style.hide(axis="index"))

# %%
if claims.empty:
    skip(fig_claims, "no claims in claims.json")
else:
    by_group = counts.drop(index="total")
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(by_group) + 1.4))
    total = counts.loc["total"]
    plotting.verdict_bars(
        ax,
        by_group,
        title=f"Claim verdicts ({config_name}): " + ", ".join(f"{int(total[v])} {v}" for v in counts.columns),
    )
    fig.tight_layout()
    save(fig, fig_claims)
