# srg: the replication DAG. Stages live in rules/*.smk; every rule has log: and benchmark:.
#   snakemake --cores all                              # embedded default (config/default.yaml)
#   snakemake --cores all --configfile config/smoke.yaml
import os
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


report: "report/workflow.rst"  # snakemake --report results/report.html (rules/report.smk)


# No `configfile:` directive: snakemake would merge it under a --configfile and silently inherit
# keys (e.g. the default's attack list). rules/common.smk loads config/default.yaml only when no
# --configfile was given, and refuses a config file without a `name` (each one is complete).


# `snakemake --lint` warnings left on purpose (everything else it reported is fixed):
# - "Specify a conda environment or container for each rule": the global `conda:` below covers
#   every rule; the linter only looks for per-rule directives.
# - "Environment variable PYTHONPATH used but not asserted": it is set here, not asked of the user.
# - "Mixed rules and functions" in rules/common.smk: it holds no rule; all helpers live there.
# - "Path composition with '+'": those join shell prefixes (THREADS_ENV, GPU_PIN), not paths.
# - "Param resources/out_dir/model is a prefix of input or output file": `resources` is the shared,
#   content-pinned cache directory and `model` a model directory; the CLIs take them as arguments.
# `snakemake --use-conda` (--sdm conda) runs every job in this environment; the package is found
# through PYTHONPATH, so the environment needs only the dependencies.
conda: "envs/srg.yaml"


os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(Path(workflow.basedir) / "src"), os.environ.get("PYTHONPATH")) if p
)


include: "rules/common.smk"
include: "rules/notebooks.smk"
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
    default_target: True
    input:
        final_targets(),
