# srg: the replication DAG. Stages live in rules/*.smk; every rule has log: and benchmark:.
#   snakemake --cores all                              # embedded default (config/default.yaml)
#   snakemake --cores all --configfile config/smoke.yaml
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/default.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/generate.smk"
include: "rules/judge.smk"
include: "rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
