# srg: the replication DAG. Stages live in rules/*.smk; every rule has log: and benchmark:.
#   snakemake --cores all                              # embedded default (config/default.yaml)
#   snakemake --cores all --configfile config/smoke.yaml
from snakemake.utils import min_version

min_version("9.0")

report: "report/workflow.rst"  # snakemake --report results/report.html (rules/report.smk)

# No `configfile:` directive: snakemake would merge it under a --configfile and silently inherit
# keys (e.g. the default's attack list). rules/common.smk loads config/default.yaml only when
# no config file was given, so every config file is complete on its own.

include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/attacks.smk"
include: "rules/synthesize.smk"
include: "rules/train.smk"
include: "rules/generate.smk"
include: "rules/judge.smk"
include: "rules/analyze.smk"
include: "rules/report.smk"
include: "rules/benchmarks.smk"
include: "rules/probing.smk"
include: "rules/evaluate.smk"


rule all:
    input:
        TARGETS,
    default_target: True
