import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from srg import plotting  # noqa: E402
from srg import report_tables as rt  # noqa: E402


def main_frame():
    rows = []
    for model in ["srg", "base", "rt", "srg_plain"]:
        for evalset in ["pair", "id_eval"]:
            rows.append(
                dict(model=model, evalset=evalset, metric="asr_greedy", value=0.5, ci_low=0.25, ci_high=0.75, n=24)
            )
            rows.append(
                dict(model=model, evalset=evalset, metric="refusal_rate", value=0.1, ci_low=None, ci_high=None, n=24)
            )
    return pd.DataFrame(rows)


def test_format_ci():
    assert rt.format_ci(0.2912, 0.1, 0.5) == "0.29 [0.10, 0.50]"
    assert rt.format_ci(0.2912, float("nan"), 0.5, digits=1) == "0.3"
    assert rt.format_ci(None) == "–" and rt.format_ci(float("nan"), 0, 1) == "–"


def test_ordered_prefers_given_order_then_appearance():
    assert rt.ordered(["c", "a", "b", "a"], ["b", "x", "a"]) == ["b", "a", "c"]


def test_pivots_order_and_format():
    df = main_frame()
    wide = rt.ci_pivot(df, "asr_greedy", index_order=["base", "rt", "srg"], column_order=["id_eval"])
    assert list(wide.index) == ["base", "rt", "srg", "srg_plain"]
    assert list(wide.columns) == ["id_eval", "pair"]
    assert wide.loc["rt", "pair"] == "0.50 [0.25, 0.75]"
    assert rt.ci_pivot(df, "refusal_rate").loc["base", "pair"] == "0.10"
    vals = rt.value_pivot(df[df["model"] != "base"].drop(index=0), "asr_greedy", index_order=["rt"])
    assert vals.loc["rt", "id_eval"] == 0.5 and vals.dtypes.eq(float).all()
    assert rt.value_pivot(df, "nope").empty and rt.ci_pivot(df, "nope").empty


def test_pivot_missing_cell_and_duplicates():
    df = main_frame()
    df = df[~((df["model"] == "rt") & (df["evalset"] == "pair"))]
    assert rt.ci_pivot(df, "asr_greedy").loc["rt", "pair"] == "–"
    assert math.isnan(rt.value_pivot(df, "asr_greedy").loc["rt", "pair"])
    dup = pd.concat([df, df.iloc[:1]])
    with pytest.raises(ValueError, match="more than one 'asr_greedy' row"):
        rt.value_pivot(dup, "asr_greedy")


def test_ablation_frame_sources():
    main = main_frame()
    out, src = rt.ablation_frame(None, main)
    assert src.startswith("tables/main.csv") and set(out["variant"]) == {"srg", "srg_plain"}
    assert list(out.columns) == list(rt.ABLATION_COLUMNS)
    out, _ = rt.ablation_frame(None, main, ablation_models=["rt"])
    assert set(out["variant"]) == {"rt"}
    abl = pd.DataFrame(
        [dict(variant="srg_no_rs", evalset="id_eval", metric="asr_greedy", value=0.3, ci_low=0.1, ci_high=0.4)]
    )
    out, src = rt.ablation_frame(abl, main)
    assert src == "tables/ablations.csv" and list(out["variant"]) == ["srg_no_rs"] and "n" in out
    none, why = rt.ablation_frame(None, main[main["model"].isin(["base", "rt", "srg"])])
    assert none is None and "no ablation models" in why
    none, why = rt.ablation_frame(None, None)
    assert none is None and "neither" in why
    with pytest.raises(ValueError, match="lacks columns"):
        rt.ablation_frame(abl.drop(columns="ci_low"), main)


def test_read_optional_csv(tmp_path):
    assert rt.read_optional_csv(tmp_path / "missing.csv") is None
    (tmp_path / "empty.csv").write_text("model,value\n")
    assert rt.read_optional_csv(tmp_path / "empty.csv") is None
    (tmp_path / "t.csv").write_text("model,value\nrt,0.5\n")
    assert len(rt.read_optional_csv(tmp_path / "t.csv", required=["model"])) == 1
    with pytest.raises(ValueError, match="missing columns"):
        rt.read_optional_csv(tmp_path / "t.csv", required=["evalset"])


def test_layer_summary():
    m = pd.DataFrame(
        [
            dict(model=mod, layer=layer, evalset=s, metric=met, value=0.1 * layer, ci_low=0, ci_high=1)
            for mod in ["rt", "base"]
            for layer in [2, 1]
            for s in ["train_harmful", "pair"]
            for met in ["pad", "probe_transfer_acc"]
        ]
    )
    d = rt.layer_summary(m, "pad", exclude=["train_harmful"])
    assert set(d["evalset"]) == {"pair"} and list(d["model"]) == ["base", "base", "rt", "rt"]
    assert list(d["layer"][:2]) == [1, 2]
    assert len(rt.layer_summary(m, "pad", evalsets=["train_harmful"])) == 4


def claims_doc():
    def c(cid, verdict, value=0.5, ci=(0.1, 0.9)):
        return dict(
            id=cid, statement="s", statistic="t", value=value, ci=list(ci), verdict=verdict, evidence="results/x.csv"
        )

    return {
        "config": "x",
        "claims": [
            c("C10.a", "supported"),
            c("C2.b", "refuted"),
            c("C1.a", "inconclusive", None, (None, None)),
            c("C2.a", "supported"),
        ],
    }


def test_claims_table_and_counts(tmp_path):
    df = rt.claims_table(claims_doc())
    assert list(df["id"]) == ["C1.a", "C2.a", "C2.b", "C10.a"]
    assert list(df.columns) == list(rt.CLAIM_COLUMNS)
    assert math.isnan(df.loc[0, "value"]) and math.isnan(df.loc[0, "ci_low"])
    counts = rt.verdict_counts(df)
    assert list(counts.columns) == ["supported", "refuted", "inconclusive"]
    assert list(counts.index) == ["C1", "C2", "C10", "total"]
    assert counts.loc["C2"].tolist() == [1, 1, 0] and counts.loc["total"].sum() == 4
    empty = rt.verdict_counts(rt.claims_table({"claims": []}))
    assert empty.loc["total"].sum() == 0
    import json

    p = tmp_path / "claims.json"
    p.write_text(json.dumps(claims_doc()))
    assert len(rt.claims_table(p)) == 4


def test_plot_helpers_draw(tmp_path):
    plotting.set_theme()
    fig, axes = plt.subplots(1, 4)
    df = main_frame()
    plotting.annotated_heatmap(axes[0], rt.value_pivot(df, "asr_greedy"), rt.ci_pivot(df, "asr_greedy"))
    plotting.ci_bars(axes[1], df[df["metric"] == "asr_greedy"], x="evalset", hue="model")
    assert len(axes[1].patches) == 8
    lines = pd.DataFrame(dict(layer=[1, 2, 1, 2], value=[0.1, 0.2, 0.3, 0.4], evalset=["a", "a", "b", "b"]))
    plotting.layer_lines(axes[2], lines, reference=lines[lines["evalset"] == "a"])
    assert len(axes[2].lines) == 4  # two sets, their mean, the reference
    plotting.verdict_bars(axes[3], rt.verdict_counts(rt.claims_table(claims_doc())).drop(index="total"))
    out = plotting.save_figure(plotting.placeholder_figure("missing"), tmp_path / "p")
    assert all(p.exists() for p in out)
    plt.close("all")


def test_provenance_rst_and_json(tmp_path):
    from docutils.core import publish_parts

    from srg import provenance

    repo = Path(__file__).resolve().parents[1]
    prov = provenance.collect({"name": "demo", "x": {"y": "{{ not jinja }}"}}, repo)
    assert prov["config_name"] == "demo" and prov["packages"]["pandas"] == pd.__version__
    assert prov["git"]["commit"] is None or len(prov["git"]["commit"]) == 40
    assert provenance.git_state(tmp_path) == {"commit": None, "dirty": None}
    rst = provenance.to_rst(prov)
    assert "{{" not in rst and "}}" not in rst
    body = publish_parts(rst, writer="html")["body"]  # what the report shows as the caption
    assert "demo" in body and "pandas" in body and "git commit" in body
    provenance.main(
        [
            "--config-json",
            '{"name": "demo"}',
            "--repo",
            str(tmp_path),
            "--json",
            str(tmp_path / "p.json"),
            "--rst",
            str(tmp_path / "p.rst"),
        ]
    )
    assert (tmp_path / "p.json").exists() and (tmp_path / "p.rst").read_text().startswith("**Run provenance**")
