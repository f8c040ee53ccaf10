# Notebook sources: notebooks/<name>.py (jupytext percent format) -> the .ipynb papermill runs.
# The script is the input, so editing it reconverts it and reruns exactly the stages that run it.


rule notebook_source:
    """jupytext: one percent-format script -> an unexecuted notebook (parameters cell tagged)."""
    input:
        f"{NOTEBOOKS}/{{name}}.py",
    output:
        f"{RESULTS}/jupytext/{{name}}.ipynb",
    log:
        f"{RESULTS}/logs/notebook_source/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/notebook_source/{{name}}.tsv"
    wildcard_constraints:
        name="|".join(NOTEBOOK_SCRIPTS),
    priority: 20  # a second; priorities do not reach upstream jobs, and the trainings wait on it
    shell:
        "jupytext --to ipynb --output {output} {input} > {log} 2>&1"
