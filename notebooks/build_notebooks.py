"""Write the thin, parameterised notebooks from the cell lists in ``notebooks/cells/*.py``.

Each cells module defines ``CELLS``: a list of ``(kind, source)`` with kind in
{"md", "params", "code"}. A notebook is a ``parameters`` cell (papermill injects the DAG's
values after it), then calls into ``srg`` and tables/plots. Keeping the source as Python makes
notebook diffs reviewable. Run ``python notebooks/build_notebooks.py`` after editing a cells file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent


def load_cells() -> dict[str, list[tuple[str, str]]]:
    out = {}
    for path in sorted((HERE / "cells").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"cells_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        out[path.stem] = mod.CELLS
    return out


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    for i, (kind, src) in enumerate(cells):
        if kind == "md":
            nb.cells.append(new_markdown_cell(src))
        elif kind == "params":
            nb.cells.append(new_code_cell(src, metadata={"tags": ["parameters"]}))
        else:
            nb.cells.append(new_code_cell(src))
    for i, cell in enumerate(nb.cells):  # stable ids keep rebuilt notebooks diff-free
        cell.id = f"{name}-{i:02d}"
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main() -> None:
    for name, cells in load_cells().items():
        path = HERE / f"{name}.ipynb"
        text = nbformat.writes(build(name, cells)) + "\n"
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue  # unchanged: keep the mtime, so Snakemake does not rerun the notebook
        path.write_text(text, encoding="utf-8")
        print(f"wrote notebooks/{name}.ipynb")


if __name__ == "__main__":
    main()
