"""Reshaping for the final figures notebook: tidy result files -> display tables.

Nothing here computes a statistic: every value, CI and verdict comes from a file the DAG wrote
(``results/tables/main.csv``, ``results/tables/ablations.csv``, ``results/bon/<model>.csv``,
``results/probing/metrics.csv``, ``results/claims.json``). These helpers only select, order,
pivot and format, so a table in the report is exactly what the file says.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from srg.claims import VERDICTS, _id_key
from srg.io import read_json

__all__ = [
    "MAIN_COLUMNS",
    "ABLATION_COLUMNS",
    "CLAIM_COLUMNS",
    "read_optional_csv",
    "format_ci",
    "ordered",
    "ci_pivot",
    "value_pivot",
    "ablation_frame",
    "layer_summary",
    "claims_table",
    "verdict_counts",
]

MAIN_COLUMNS = ("model", "evalset", "metric", "value", "ci_low", "ci_high", "n")
ABLATION_COLUMNS = ("variant", "evalset", "metric", "value", "ci_low", "ci_high", "n")
CLAIM_COLUMNS = ("id", "group", "statement", "statistic", "value", "ci_low", "ci_high", "verdict", "evidence")


def read_optional_csv(path: str | os.PathLike, required: Iterable[str] = ()) -> pd.DataFrame | None:
    """The CSV at ``path``, or None when it does not exist or has no rows.

    A file that exists but lacks a ``required`` column raises ValueError naming the file and the
    missing columns (a schema drift should stop the notebook, not silently drop a panel).
    """
    path = Path(path)
    if not path.exists():
        return None
    df = pd.read_csv(path)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (has {list(df.columns)})")
    return df if len(df) else None


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def format_ci(value: Any, lo: Any = None, hi: Any = None, digits: int = 2) -> str:
    """``"0.29 [0.10, 0.50]"``; just the value when the CI is missing; ``"–"`` for no value."""
    if not _finite(value):
        return "–"
    text = f"{float(value):.{digits}f}"
    if _finite(lo) and _finite(hi):
        text += f" [{float(lo):.{digits}f}, {float(hi):.{digits}f}]"
    return text


def ordered(values: Iterable[Any], preferred: Sequence[Any] = ()) -> list[Any]:
    """Unique ``values`` with those in ``preferred`` first (in that order), the rest as they come."""
    seen = list(dict.fromkeys(values))
    first = [p for p in preferred if p in seen]
    return first + [v for v in seen if v not in first]


def _select(df: pd.DataFrame, metric: str, index: str, columns: str) -> pd.DataFrame:
    need = {index, columns, "metric", "value"}
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    sub = df[df["metric"] == metric]
    dup = sub.duplicated([index, columns])
    if dup.any():
        first = sub[dup].iloc[0]
        raise ValueError(f"more than one {metric!r} row for ({first[index]}, {first[columns]})")
    return sub


def value_pivot(
    df: pd.DataFrame,
    metric: str,
    index: str = "model",
    columns: str = "evalset",
    index_order: Sequence[Any] = (),
    column_order: Sequence[Any] = (),
) -> pd.DataFrame:
    """Numeric pivot of one metric (rows ``index``, columns ``columns``); empty if no rows.

    Missing (row, column) pairs are NaN. Duplicate pairs raise (no silent averaging).
    """
    sub = _select(df, metric, index, columns)
    if sub.empty:
        return pd.DataFrame()
    wide = sub.pivot(index=index, columns=columns, values="value")
    wide = wide.reindex(index=ordered(sub[index], index_order), columns=ordered(sub[columns], column_order))
    wide.index.name, wide.columns.name = index, columns
    return wide.astype(float)


def ci_pivot(
    df: pd.DataFrame,
    metric: str,
    index: str = "model",
    columns: str = "evalset",
    index_order: Sequence[Any] = (),
    column_order: Sequence[Any] = (),
    digits: int = 2,
) -> pd.DataFrame:
    """Like ``value_pivot`` but each cell is the text ``value [ci_low, ci_high]``; "–" if absent."""
    sub = _select(df, metric, index, columns)
    if sub.empty:
        return pd.DataFrame()
    sub = sub.assign(
        cell=[format_ci(r.get("value"), r.get("ci_low"), r.get("ci_high"), digits) for r in sub.to_dict("records")]
    )
    wide = sub.pivot(index=index, columns=columns, values="cell")
    wide = wide.reindex(index=ordered(sub[index], index_order), columns=ordered(sub[columns], column_order))
    wide.index.name, wide.columns.name = index, columns
    return wide.fillna("–")


def ablation_frame(
    ablations: pd.DataFrame | None,
    main: pd.DataFrame | None,
    ablation_models: Sequence[str] = (),
    pattern: str = r"^srg(_.+)?$",
) -> tuple[pd.DataFrame | None, str]:
    """Ablation rows in ``ABLATION_COLUMNS`` order and where they came from.

    ``ablations.csv`` (column ``variant``) wins when given; otherwise the rows of ``main.csv``
    whose model is in ``ablation_models`` or, when that is empty, matches ``pattern`` (the full
    SRG model and its ``srg_*`` variants), with ``model`` renamed to ``variant``. Returns
    ``(None, reason)`` when neither has any.
    """
    if ablations is not None and len(ablations):
        missing = [c for c in ABLATION_COLUMNS if c not in ablations.columns and c != "n"]
        if missing:
            raise ValueError(f"ablations table lacks columns {missing}")
        out = ablations.copy()
        if "n" not in out:
            out["n"] = pd.NA
        return out[list(ABLATION_COLUMNS)].reset_index(drop=True), "tables/ablations.csv"
    if main is None or not len(main):
        return None, "neither tables/ablations.csv nor tables/main.csv exists"
    if ablation_models:
        sub = main[main["model"].isin(ablation_models)]
        if sub.empty:
            return None, f"tables/main.csv has no rows for {list(ablation_models)}"
    else:
        sub = main[main["model"].astype(str).str.match(pattern)]
        if set(sub["model"]) <= {"srg"}:  # the full model alone is no ablation
            return None, "tables/main.csv has no ablation models (srg_*)"
    out = sub.rename(columns={"model": "variant"})
    if "n" not in out:
        out["n"] = pd.NA
    return out[list(ABLATION_COLUMNS)].reset_index(drop=True), "tables/main.csv (ablation models)"


def layer_summary(
    metrics: pd.DataFrame,
    metric: str,
    evalsets: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
) -> pd.DataFrame:
    """Rows of one per-layer metric of ``probing/metrics.csv``: model, layer, evalset, value, CI.

    Restricted to ``evalsets`` when given, minus ``exclude``; sorted by model, evalset, layer.
    """
    need = {"model", "layer", "evalset", "metric", "value"}
    missing = need - set(metrics.columns)
    if missing:
        raise ValueError(f"metrics table lacks columns {sorted(missing)}")
    sub = metrics[metrics["metric"] == metric]
    if evalsets is not None:
        sub = sub[sub["evalset"].isin(evalsets)]
    if exclude:
        sub = sub[~sub["evalset"].isin(exclude)]
    cols = [c for c in ("model", "layer", "evalset", "value", "ci_low", "ci_high") if c in sub.columns]
    return sub[cols].sort_values(["model", "evalset", "layer"]).reset_index(drop=True)


def claims_table(doc_or_path: dict | str | os.PathLike) -> pd.DataFrame:
    """``claims.json`` as one row per claim (``CLAIM_COLUMNS``), in natural id order.

    ``group`` is the id's prefix before the first dot (``C1.pair`` -> ``C1``). Null numbers
    (non-finite values are written as JSON null) become NaN.
    """
    doc = doc_or_path if isinstance(doc_or_path, dict) else read_json(doc_or_path)
    claims = doc.get("claims", []) if isinstance(doc, dict) else doc
    rows = []
    for c in claims:
        ci = c.get("ci") or [None, None]
        rows.append(
            {
                "id": c["id"],
                "group": re.split(r"[.]", c["id"], maxsplit=1)[0],
                "statement": c.get("statement", ""),
                "statistic": c.get("statistic", ""),
                "value": _to_float(c.get("value")),
                "ci_low": _to_float(ci[0]),
                "ci_high": _to_float(ci[1]),
                "verdict": c.get("verdict", ""),
                "evidence": c.get("evidence", ""),
            }
        )
    df = pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))
    if len(df):
        df = df.iloc[sorted(range(len(df)), key=lambda i: _id_key(df["id"].iloc[i]))].reset_index(drop=True)
    return df


def _to_float(x: Any) -> float:
    return float(x) if _finite(x) else float("nan")


def verdict_counts(claims: pd.DataFrame) -> pd.DataFrame:
    """Claims per group (rows, plus a ``total`` row) and verdict (columns, always all three)."""
    if claims.empty:
        return pd.DataFrame(0, index=pd.Index(["total"], name="group"), columns=list(VERDICTS))
    counts = pd.crosstab(claims["group"], claims["verdict"])
    counts = counts.reindex(columns=list(VERDICTS) + [v for v in counts.columns if v not in VERDICTS], fill_value=0)
    counts = counts.loc[sorted(counts.index, key=_id_key)]
    counts.loc["total"] = counts.sum()
    counts.index.name, counts.columns.name = "group", None
    return counts.astype(int)
