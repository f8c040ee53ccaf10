# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Guideline reasoning synthesis
#
# The teacher saw the guidelines and each training query and wrote `k` candidates of reasoning in explicit tags + a final answer (rule `teacher_generate`). Here each candidate is parsed, screened for degenerate text and, with rejection sampling, kept only if its final answer refuses a harmful query / does not refuse a benign one (keyword judge). The SRG training row pairs the **bare query** (guidelines removed: context distillation) with the kept reasoning + answer. Queries without an accepted candidate go to the configured fallback.

# %% tags=["parameters"]
# Parameters (papermill overrides these)
variant = "srg"
guideline_ids = []
guidelines_file = "config/guidelines.yaml"
rejection_sampling = True
context_distillation = True
rt_data = "results/data/rt_train.jsonl"
teacher_prompts = "results/synthesis/teacher/g-x/prompts.jsonl"
candidates = "results/synthesis/teacher/g-x/candidates.jsonl"
out_data = "results/data/srg_train.jsonl"
out_stats = "results/synthesis/srg/stats.json"
out_candidates = "results/synthesis/srg/screened.jsonl"
teacher = {"backend": "hf", "model": "base"}
per_kind = 64
fallback = "template"
min_examples = 16
request_words = 6
n_examples = 3
max_chars = 100
format = {}
resources = "resources"
config_name = "default"

# %%
from dataclasses import asdict

import pandas as pd

from srg import plotting, synthesis
from srg.io import read_jsonl, write_json, write_jsonl
from srg.judges import KeywordJudge
from srg.reasoning import ReasoningFormat

plotting.set_theme()
fmt = ReasoningFormat(**format)
guidelines = synthesis.load_guidelines(guidelines_file)
ids = [g.id for g in guidelines]
v = synthesis.Variant(variant, tuple(guideline_ids), rejection_sampling, context_distillation)


def short(text, n=max_chars):
    return plotting.short(text, n)


print(
    f"variant {variant}: guidelines {list(v.guidelines) or 'none (plain reasoning)'}; "
    f"rejection sampling {rejection_sampling}; context distillation {context_distillation}; "
    f"teacher {teacher['backend']}:{teacher['model']}"
)

# %% [markdown]
# ## Guidelines used

# %%
pd.DataFrame(
    [
        {"id": g.id, "perspective": g.perspective, "instruction": g.instruction}
        for g in synthesis.select(guidelines, v.guidelines)
    ]
)

# %% [markdown]
# ## Teacher candidates
# One teacher prompt (truncated) and the first candidates as generated.

# %%
prompts = read_jsonl(teacher_prompts)
cands = read_jsonl(candidates)
print(f"{len(prompts)} teacher prompts x k -> {len(cands)} candidates")
if prompts:
    print(short(prompts[0]["prompt"], 400))
pd.DataFrame([{"prompt_id": c["prompt_id"], "candidate": short(c["response"])} for c in cands[:n_examples]])

# %% [markdown]
# ## Screening, rejection sampling, fallback

# %%
base_rows = synthesis.subsample(read_jsonl(rt_data), per_kind)
judge = KeywordJudge(resources)
result = synthesis.build_srg_rows(
    base_rows,
    cands,
    v,
    guidelines,
    judge.is_refusal,
    fallback=fallback,
    min_examples=min_examples,
    request_words=request_words,
    fmt=fmt,
)
stats = result.stats
write_jsonl(out_data, result.rows)
write_jsonl(out_candidates, [asdict(c) for c in result.candidates])
write_json(out_stats, {**stats, "teacher": teacher, "fallback": fallback, "config": config_name})
print(
    f"candidate yield {stats['candidate_yield'] if stats['candidate_yield'] is not None else float('nan'):.1%} "
    f"({stats['n_accepted_candidates']}/{stats['n_candidates']}); queries with an accepted teacher "
    f"candidate: {stats['teacher_accepted_queries']}/{len(prompts)} sent to the teacher"
)
pd.Series(stats["rejections"], name="rejected candidates").to_frame()

# %%
by_source = pd.DataFrame(stats["by_source"]).T
by_source["candidate_yield"] = by_source["accepted_candidates"] / by_source["candidates"].where(
    by_source["candidates"] > 0
)
display(by_source)
display(pd.Series(stats["guideline_mention_rate"], name="accepted teacher reasoning naming the perspective").to_frame())
pd.Series(stats["rows_by_origin"], name="training rows by origin").to_frame()

# %%
teacher_rows = stats["rows_by_origin"].get("teacher", 0)
if teacher_rows < stats["rows"] / 2:
    print(
        f"*** LOW TEACHER YIELD: only {teacher_rows} of {stats['rows']} training rows come from the teacher "
        f"({teacher['backend']}:{teacher['model']}). The other {stats['rows'] - teacher_rows} use the explicit "
        f"'{fallback}' fallback: reasoning assembled from each guideline's one-line step in "
        f"{guidelines_file}, final answer from the RT data (a refusal / the base model's own answer). "
        "This is NOT teacher output. At embedded scale the teacher is the 135M base model, which does "
        "not follow the tag format and never refuses; use a strong teacher (config/paper.yaml) for the "
        "paper's method. ***"
    )

# %% [markdown]
# ## Training rows (truncated)

# %%
rows = pd.DataFrame(result.rows)
show = rows.groupby(["kind", "origin"]).head(max(1, n_examples // 2))
display(show[["kind", "origin", "prompt", "completion"]].map(short))
print("system prompt at training:", short(rows["system"].iloc[0], 200) if rows["system"].notna().any() else None)
rows.groupby("kind")["completion"].apply(lambda s: s.str.len().mean()).rename("mean completion chars").to_frame()
