"""Figures: one seaborn theme, atomic PNG+PDF saving, BoN curves and 2-D projection panels.

Importing this module selects the non-interactive Agg backend unless ``MPLBACKEND`` is set
(e.g. by a Jupyter kernel) or pyplot is already imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import matplotlib

if "MPLBACKEND" not in os.environ and "matplotlib.pyplot" not in sys.modules:
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator  # noqa: E402

from srg.io import atomic_path  # noqa: E402

__all__ = [
    "set_theme",
    "save_figure",
    "bon_curves",
    "projection_panel",
    "placeholder_figure",
    "layer_lines",
    "annotated_heatmap",
    "ci_bars",
    "verdict_bars",
]

ID_HARM_STYLE = dict(color="#c0392b", marker="o", s=18, alpha=0.7, edgecolors="none")
ID_BENIGN_STYLE = dict(color="#2c7fb8", marker="o", s=18, alpha=0.7, edgecolors="none")
_OOD_MARKERS = ("^", "s", "D", "v", "P", "X", "*", "<", ">")


def set_theme() -> None:
    """The suite's single plotting theme."""
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.1)
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.bbox": "tight", "pdf.fonttype": 42})


def save_figure(fig: Figure, path_without_suffix: str | os.PathLike, dpi: int = 150) -> list[Path]:
    """Write ``<path>.png`` (at ``dpi``) and ``<path>.pdf``, each to a temp file then renamed.

    Parent directories are created. Returns the two final paths.
    """
    base = str(path_without_suffix)
    out = []
    for fmt in ("png", "pdf"):
        final = Path(f"{base}.{fmt}")
        with atomic_path(final) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
        out.append(final)
    return out


def bon_curves(
    df: pd.DataFrame,
    ax: Axes | None = None,
    hue: str = "evalset",
    greedy: bool = True,
    title: str | None = None,
    extrapolated: pd.DataFrame | None = None,
) -> Axes:
    """ASR@N vs N (log2 x axis) with CI bands, one line per ``hue`` value.

    ``extrapolated`` (columns N, asr, ``hue``): predicted ASR@N beyond the samples, drawn dashed
    in each group's colour.

    ``df`` needs columns N, asr, ci_low, ci_high and ``hue``. If it has a ``greedy_asr`` column
    (as from ``srg.bon.tidy_bon_table``) and ``greedy`` is True, each group's greedy ASR is drawn
    as a dotted horizontal line in the group's colour.
    """
    need = {"N", "asr", "ci_low", "ci_high", hue}
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"bon_curves: df lacks columns {sorted(missing)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    groups = list(dict.fromkeys(df[hue]))
    colors = distinct_colors(len(groups))
    for g, color in zip(groups, colors):
        sub = df[df[hue] == g].sort_values("N")
        N = sub["N"].to_numpy(dtype=float)
        ax.plot(N, sub["asr"], marker="o", ms=3, color=color, label=str(g))
        ax.fill_between(N, sub["ci_low"], sub["ci_high"], color=color, alpha=0.2, linewidth=0)
        if greedy and "greedy_asr" in sub and np.isfinite(sub["greedy_asr"].iloc[0]):
            ax.axhline(float(sub["greedy_asr"].iloc[0]), color=color, ls=":", lw=1.2)
        if extrapolated is not None:
            ext = extrapolated[extrapolated[hue] == g].sort_values("N")
            ax.plot(ext["N"].to_numpy(dtype=float), ext["asr"], color=color, ls="--", lw=1.1)
    if greedy and "greedy_asr" in df and df["greedy_asr"].notna().any():
        ax.plot([], [], color="0.3", ls=":", label="greedy")
    if extrapolated is not None and len(extrapolated):
        ax.plot([], [], color="0.3", ls="--", label="extrapolated")
    all_N = [df["N"]] + ([extrapolated["N"]] if extrapolated is not None and len(extrapolated) else [])
    Ns = np.unique(np.concatenate([np.asarray(x, dtype=float) for x in all_N]))
    ax.set_xscale("log", base=2)
    ticks = Ns if len(Ns) <= 12 else 2.0 ** np.arange(0, np.floor(np.log2(Ns.max())) + 1)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{int(t)}" for t in ticks])
    ax.set_xlabel("N (samples)")
    ax.set_ylabel("ASR@N")
    ax.set_ylim(-0.02, 1.02)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", frameon=False)
    return ax


def projection_panel(
    ax: Axes,
    points: Mapping[str, np.ndarray],
    title: str,
    id_harm_key: str = "id_harmful",
    id_benign_key: str = "id_benign",
) -> Axes:
    """Scatter 2-D projected points per set; ID harmful / benign get fixed filled circles
    (red / blue); every other (OOD) set gets a distinct hollow marker and colour, drawn on top.
    """
    others = [k for k in points if k not in (id_harm_key, id_benign_key)]
    colors = distinct_colors(len(others), base="Dark2")
    for key, style in ((id_benign_key, ID_BENIGN_STYLE), (id_harm_key, ID_HARM_STYLE)):
        if key in points:
            P = _as_points(points[key], key)
            ax.scatter(P[:, 0], P[:, 1], label=key, **style)
    for i, key in enumerate(others):
        P = _as_points(points[key], key)
        ax.scatter(
            P[:, 0],
            P[:, 1],
            label=key,
            marker=_OOD_MARKERS[i % len(_OOD_MARKERS)],
            s=26,
            facecolors="none",
            edgecolors=[colors[i]],
            linewidths=1.0,
        )
    ax.set_title(title)
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    ax.legend(fontsize="small", frameon=False, markerscale=1.2)
    return ax


def _as_points(P: np.ndarray, key: str) -> np.ndarray:
    P = np.asarray(P, dtype=float)
    if P.ndim != 2 or P.shape[1] != 2:
        raise ValueError(f"points[{key!r}] must be (n, 2), got shape {P.shape}")
    return P


def short(text: object, n: int = 80) -> str:
    """One-line text cut to ``n`` characters (how notebooks show prompts and responses)."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def distinct_colors(n: int, base: str = "colorblind") -> list:
    """``n`` distinguishable colours: the base palette while it has enough, else tab20."""
    palette = sns.color_palette(base)
    if n <= len(palette):
        return palette[: max(n, 1)]
    return sns.color_palette("tab20", n_colors=n)


# --- final-figure helpers (notebooks/figures.ipynb) ------------------------------------------

VERDICT_COLORS = {"supported": "#1b9e77", "inconclusive": "#bdbdbd", "refuted": "#d95f02"}


def placeholder_figure(message: str, figsize: tuple[float, float] = (6, 1.6)) -> Figure:
    """A figure that only says why its panel is missing (keeps a declared output honest)."""
    fig, ax = plt.subplots(figsize=figsize)
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize="medium", color="0.3")
    return fig


def layer_lines(
    ax: Axes,
    df: pd.DataFrame,
    hue: str = "evalset",
    title: str | None = None,
    ylabel: str | None = None,
    mean_label: str | None = "mean over sets",
    reference: pd.DataFrame | None = None,
    reference_label: str = "reference",
) -> Axes:
    """Per-layer curves (``layer`` vs ``value``), one thin line per ``hue`` value, CI band if given.

    ``mean_label``: also draw the unweighted mean over the ``hue`` lines in black (None: don't).
    ``reference``: rows with ``layer`` and ``value`` drawn as a dashed grey line (e.g. ID accuracy).
    """
    need = {"layer", "value", hue}
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"layer_lines: df lacks columns {sorted(missing)}")
    groups = list(dict.fromkeys(df[hue]))
    for g, color in zip(groups, distinct_colors(len(groups))):
        sub = df[df[hue] == g].sort_values("layer")
        ax.plot(sub["layer"], sub["value"], color=color, lw=1.0, alpha=0.85, label=str(g))
        if {"ci_low", "ci_high"} <= set(sub.columns) and sub["ci_low"].notna().any():
            ax.fill_between(sub["layer"], sub["ci_low"], sub["ci_high"], color=color, alpha=0.12, linewidth=0)
    if mean_label and len(groups) > 1:
        mean = df.groupby("layer")["value"].mean()
        ax.plot(mean.index, mean.to_numpy(), color="black", lw=2.2, label=mean_label)
    if reference is not None and len(reference):
        ref = reference.sort_values("layer")
        ax.plot(ref["layer"], ref["value"], color="0.4", ls="--", lw=1.5, label=reference_label)
    ax.set_xlabel("layer")
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def annotated_heatmap(
    ax: Axes,
    values: pd.DataFrame,
    labels: pd.DataFrame | None = None,
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "rocket_r",
    title: str | None = None,
    cbar_label: str | None = None,
) -> Axes:
    """Heatmap of a numeric pivot; each cell annotated with ``labels`` (same shape) or its value."""
    annot = True if labels is None else labels.reindex(index=values.index, columns=values.columns).to_numpy()
    sns.heatmap(
        values,
        ax=ax,
        vmin=vmin,
        vmax=vmax,
        cmap=cmap,
        annot=annot,
        fmt=".2f" if labels is None else "",
        annot_kws={"fontsize": "x-small"},
        linewidths=0.5,
        linecolor="white",
        cbar_kws={"label": cbar_label} if cbar_label else None,
    )
    ax.set_xticklabels(ax.get_xticklabels(), rotation=35, ha="right")
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
    if title:
        ax.set_title(title)
    return ax


def ci_bars(
    ax: Axes,
    df: pd.DataFrame,
    x: str,
    hue: str,
    y: str = "value",
    lo: str = "ci_low",
    hi: str = "ci_high",
    x_order: list | None = None,
    hue_order: list | None = None,
) -> Axes:
    """Grouped bars (``x`` groups, one bar per ``hue``) with asymmetric CI error bars when present."""
    xs = x_order or list(dict.fromkeys(df[x]))
    hs = hue_order or list(dict.fromkeys(df[hue]))
    width = 0.8 / max(len(hs), 1)
    for j, (h, color) in enumerate(zip(hs, distinct_colors(len(hs)))):
        sub = df[df[hue] == h].set_index(x).reindex(xs)
        pos = np.arange(len(xs)) - 0.4 + width * (j + 0.5)
        vals = sub[y].to_numpy(dtype=float)
        err = None
        if lo in sub and hi in sub:
            low = np.clip(vals - sub[lo].to_numpy(dtype=float), 0, None)
            high = np.clip(sub[hi].to_numpy(dtype=float) - vals, 0, None)
            err = np.nan_to_num(np.vstack([low, high]))
        ax.bar(
            pos,
            np.nan_to_num(vals),
            width=width,
            color=color,
            label=str(h),
            yerr=err,
            error_kw={"elinewidth": 0.8, "capsize": 2},
        )
    ax.set_xticks(np.arange(len(xs)))
    ax.set_xticklabels([str(v) for v in xs], rotation=35, ha="right")
    ax.set_xlim(-0.6, len(xs) - 0.4)
    return ax


def verdict_bars(ax: Axes, counts: pd.DataFrame, title: str | None = None) -> Axes:
    """Horizontal stacked bars: claims per group (rows of ``counts``) split by verdict (columns)."""
    left = np.zeros(len(counts))
    ylabels = [str(i) for i in counts.index]
    for verdict in counts.columns:
        v = counts[verdict].to_numpy(dtype=float)
        ax.barh(ylabels, v, left=left, color=VERDICT_COLORS.get(verdict, "0.6"), label=str(verdict))
        for i, (l0, w) in enumerate(zip(left, v)):
            if w > 0:
                ax.text(l0 + w / 2, i, f"{int(w)}", ha="center", va="center", fontsize="small")
        left += v
    ax.invert_yaxis()
    ax.set_xlabel("claims")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax
