# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Data and judge overview
#
# What the DAG fetched and built: prompt-set sizes, a few examples (truncated), the keyword judge's calibration on human labels, and the base model's greedy attack success rate (ASR) on held-out ID harmful prompts.

# %% tags=["parameters"]
# Parameters (papermill overrides these)
results_dir = "results"
prompt_sets = ["train_harmful", "train_benign", "id_eval", "overrefusal", "helpfulness"]
calibration = "results/judges/keyword_calibration.json"
judged = "results/judgements/base/id_eval.greedy.jsonl"
generations = "results/generations/base/id_eval.greedy.jsonl"
figure = "results/figures/base_id_asr.png"
table = "results/tables/base_id_asr.csv"
config_name = "default"
n_bootstrap = 1000
ci = 0.95
seed = 0
max_chars = 80
n_examples = 3

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from srg import bon, plotting
from srg.io import read_json, read_jsonl

plotting.set_theme()
pd.set_option("display.max_colwidth", max_chars + 5)


def short(text, n=max_chars):
    return plotting.short(text, n)


# %% [markdown]
# ## Prompt sets
# Sizes per set and source. Splits are seeded and disjoint on normalised text.

# %%
sets = {name: read_jsonl(Path(results_dir) / "prompts" / f"{name}.jsonl") for name in prompt_sets}
sizes = pd.DataFrame([{"set": name, "source": r["source"]} for name, rows in sets.items() for r in rows])
sizes.groupby(["set", "source"]).size().unstack(fill_value=0)

# %% [markdown]
# Examples (truncated to `max_chars` characters; harmful prompts are never shown in full):

# %%
pd.DataFrame(
    [
        {"set": name, "id": r["id"], "prompt": short(r["prompt"])}
        for name, rows in sets.items()
        for r in rows[:n_examples]
    ]
)

# %% [markdown]
# ## Judge calibration (the outcome taxonomy on human labels)
# Against PyRIT's human-labelled responses, each cut to the opening the DAG judges; positive = not an answer (PyRIT's "refusal", which includes off-topic non-answers). The taxonomy's two settings are chosen by nested cross-validation: `cv_*` are out-of-fold scores, `selected` is the setting most outer folds chose. The phrase-anywhere baseline is the old refusal-only judge.

# %%
cal = read_json(calibration)
rows = [
    {"judge": "taxonomy (out-of-fold)", **{k: cal[f"cv_{k}"] for k in ("precision", "recall", "accuracy", "f1")}},
    {
        "judge": "taxonomy (selected, in-sample)",
        **{k: cal["in_sample"][k] for k in ("precision", "recall", "accuracy", "f1")},
    },
    {
        "judge": "phrase anywhere (baseline)",
        **{k: cal["phrase_anywhere_baseline"][k] for k in ("precision", "recall", "accuracy", "f1")},
    },
]
rows += [
    {
        "judge": f"phrase anywhere: {'+'.join(a['phrase_sets'])}",
        **{k: a[k] for k in ("precision", "recall", "accuracy", "f1")},
    }
    for a in cal["alternatives"]
]
print(
    f"n = {cal['n']}, responses cut to {cal['max_chars']} chars; selected {cal['selected']}; fold choices {cal['fold_choices']}"
)
print(f"false-safe rate (human: compliance, judge: not an answer) {cal['false_safe_rate']:.3f}")
print(
    "detector fire rates on human-labelled compliance:",
    {k: round(v, 3) for k, v in cal["fire_rate_on_human_compliance"].items()},
)
display(pd.DataFrame(rows).round(3))
pd.DataFrame([cal["cv_confusion"]], index=["out-of-fold"])

# %% [markdown]
# ## Base model: greedy ASR on held-out ID harmful prompts
# ASR = share of responses the taxonomy calls compliance (on-topic answers); CI by bootstrap over prompts.

# %%
verdicts = pd.DataFrame(read_jsonl(judged))
gens = pd.DataFrame(read_jsonl(generations))
value, lo, hi = bon.greedy_asr(verdicts["unsafe"].to_numpy(), n_boot=n_bootstrap, ci=ci, seed=seed)
summary = pd.DataFrame(
    [
        {
            "config": config_name,
            "model": "base",
            "evalset": "id_eval",
            "metric": "greedy_asr",
            "value": value,
            "ci_low": lo,
            "ci_high": hi,
            "n": len(verdicts),
        }
    ]
)
Path(table).parent.mkdir(parents=True, exist_ok=True)
summary.to_csv(table, index=False)
display(verdicts["outcome"].value_counts().to_frame("responses"))
summary.round(3)

# %%
fig, ax = plt.subplots(figsize=(4, 3.2))
ax.bar(["base / ID harmful"], [value], yerr=[[value - lo], [hi - value]], capsize=6, color="#c44e52")
ax.set_ylim(0, 1)
ax.set_ylabel(f"greedy ASR (compliance, {int(ci * 100)}% CI)")
ax.set_title(f"Base model, n={len(verdicts)} prompts")
plotting.save_figure(fig, str(Path(figure).with_suffix("")))
plt.show()

# %% [markdown]
# A few base-model responses (truncated):

# %%
gens.merge(verdicts, on=["prompt_id", "sample"])[["prompt_id", "outcome", "response"]].head(n_examples).assign(
    response=lambda d: d["response"].map(short)
)
