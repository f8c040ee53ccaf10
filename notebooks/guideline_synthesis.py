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
# The teacher saw the guidelines and each training query and wrote `k` candidates (at embedded scale with scaffolded decoding, `synthesis.mode: scaffold`: the scaffold writes the tags and one header per guideline, the model writes each line and the benign answers; harmful answers are the RT refusals, README "Teacher") of reasoning in explicit tags + a final answer (rule `teacher_generate`). Here each candidate is parsed, screened for degenerate text and, with rejection sampling, kept only if its final answer refuses a harmful query / does not refuse a benign one (keyword judge). The SRG training row pairs the **bare query** (guidelines removed: context distillation) with the kept reasoning + answer. Queries without an accepted candidate go to the configured fallback.

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
min_ok_lines = 1.0
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
# ### Who wrote what (scaffolded candidates)
# Each candidate's text by author: `scaffold` (tags, headers), `model` (the teacher's own lines and
# benign answers), `rt` (the RT refusal used as the harmful answer). Model text is shown in `[[...]]`.

# %%
scaffolded = [c for c in cands if "segments" in c]
if scaffolded:
    for c in scaffolded[: max(1, n_examples)]:
        print(f"--- {c['prompt_id']} sample {c['sample']}")
        print("".join(x["text"] if x["by"] == "scaffold" else f"[[{short(x['text'], 80)}]]" for x in c["segments"]))
    chars = pd.DataFrame([{"by": x["by"], "chars": len(x["text"])} for c in scaffolded for x in c["segments"]])
    display(chars.groupby("by")["chars"].sum().rename("characters written").to_frame())
else:
    print("free-form teacher: no scaffold segments")

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
    min_ok_lines=min_ok_lines,
)
stats = result.stats
if not rejection_sampling:  # what rejection sampling would have removed: rows this variant has that RS drops
    with_rs = synthesis.build_srg_rows(
        base_rows,
        cands,
        synthesis.Variant(variant, v.guidelines, True, context_distillation),
        guidelines,
        judge.is_refusal,
        fallback=fallback,
        min_examples=0,
        request_words=request_words,
        fmt=fmt,
        min_ok_lines=min_ok_lines,
    )
    rs_rows = {r["id"]: r["completion"] for r in with_rs.rows}
    stats["rows_not_in_rejection_sampled"] = sum(rs_rows.get(r["id"]) != r["completion"] for r in result.rows)
    print(
        f"rows of {variant} that rejection sampling would drop or replace: "
        f"{stats['rows_not_in_rejection_sampled']} of {len(result.rows)}"
    )
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
if stats["mode"] == "scaffold":
    display(pd.DataFrame(stats["line_yield"]).T.rename_axis("guideline (per-line yield of model-written lines)"))
else:
    display(
        pd.Series(stats["guideline_mention_rate"], name="accepted teacher reasoning naming the perspective").to_frame()
    )
pd.Series(stats["rows_by_origin"], name="training rows by origin").to_frame()

# %%
teacher_rows = stats["rows_by_origin"].get("teacher", 0)
print(
    f"queries with an accepted teacher candidate: {stats['teacher_accepted_queries']}/{stats['n_queries']} "
    f"({stats['teacher_query_rate']:.0%}; target >= 80%); training rows {stats['rows']} "
    f"({teacher_rows} teacher, {stats['rows'] - teacher_rows} {fallback} fallback)"
)
if fallback == "template" and teacher_rows < stats["rows"] / 2:
    print(
        f"*** LOW TEACHER YIELD: {stats['rows'] - teacher_rows} of {stats['rows']} rows use the explicit template "
        f"fallback (reasoning assembled from each guideline's one-line step in {guidelines_file}, answer from the "
        "RT data). This is NOT teacher output. ***"
    )

# %% [markdown]
# ## Training rows (truncated)

# %%
rows = pd.DataFrame(result.rows)
show = rows.groupby(["kind", "origin"]).head(max(1, n_examples // 2))
display(show[["kind", "origin", "prompt", "completion"]].map(short))
print("system prompt at training:", short(rows["system"].iloc[0], 200) if rows["system"].notna().any() else None)
rows.groupby("kind")["completion"].apply(lambda s: s.str.len().mean()).rename("mean completion chars").to_frame()
