# The two commands (see README):  make reproduce   |   make test
# Both create/refresh .venv, install the package with the CPU torch wheel, then run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= all
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: reproduce test lint setup bench report dry-run clean-smoke

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU torch first (never a CUDA build on the default path); the package's range then keeps it.
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# CONFIG=path/to/run.yaml runs another complete config; it is checked first (file and line of a
# YAML error, the schema, prompt files, API-key variables), since Snakemake's own YAML message names neither.
CONFIG ?=
CONFIG_ARG := $(if $(CONFIG),--configfile $(CONFIG),)

reproduce: $(STAMP)
	$(BIN)/python -m srg check-config $(CONFIG)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES) $(CONFIG_ARG)

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

# Seconds: ruff (lint + format) over src, tests, notebooks, benchmarks; snakefmt over the DAG.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules

bench: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/generation.py

# The report needs the DAG's outputs: run (a no-op when complete), report, then check it has them all.
report: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --report results/report.html
	$(BIN)/python -c "import pathlib, sys; s = pathlib.Path('results/report.html').read_text(); \
	need = ['final_bon.png', 'final_representations.png', 'final_main.png', 'final_ablations.png', 'final_claims.png', \
	'bon_curves.png', 'claims_summary.csv', 'figures.html', 'bon_analysis.html', 'provenance.json']; \
	miss = [n for n in need if n not in s]; sys.exit(f'results/report.html lacks {miss}' if miss else 0)"
	@echo "report: results/report.html"

dry-run: $(STAMP)
	$(BIN)/python -m srg check-config $(CONFIG)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake -n $(CONFIG_ARG)
