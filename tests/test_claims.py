import json
import math

import pytest

from srg.claims import (
    Claim,
    merge_claims,
    read_claims_fragment,
    verdict_from_ci,
    write_claims_fragment,
)


def claim(cid="C1.pair", **kw):
    base = dict(
        id=cid,
        statement="BoN lowers ASR",
        statistic="relative_drop",
        value=0.4,
        ci=(0.2, 0.6),
        verdict="supported",
        evidence="results/bon/table.csv",
    )
    base.update(kw)
    return Claim(**base)


def test_to_dict_roundtrip_and_nan_as_null():
    c = claim()
    d = c.to_dict()
    assert list(d)[:7] == ["id", "statement", "statistic", "value", "ci", "verdict", "evidence"]
    assert {"primary", "test", "p_value", "p_adjusted", "n_clusters", "margin", "direction"} <= set(d)
    assert d["ci"] == [0.2, 0.6]
    assert Claim.from_dict(d).to_dict() == d
    nan = claim(value=float("nan"), ci=(float("nan"), float("nan")), verdict="inconclusive")
    d = nan.to_dict()
    assert d["value"] is None and d["ci"] == [None, None]
    json.dumps(d, allow_nan=False)  # strict JSON
    back = Claim.from_dict(d)
    assert math.isnan(back.value) and back.verdict == "inconclusive"


@pytest.mark.parametrize(
    "kw",
    [
        dict(verdict="maybe"),
        dict(ci=(0.6, 0.2)),
        dict(ci=(0.1,)),
        dict(value=float("nan")),  # non-finite value needs 'inconclusive'
        dict(value=float("inf")),
        dict(ci=(float("nan"), 0.3)),
        dict(evidence="/abs/results/x.csv"),
        dict(evidence="figures/x.png"),
        dict(evidence="results/../secret"),
        dict(id=""),
        dict(value="0.4"),
    ],
)
def test_validation(kw):
    with pytest.raises(ValueError):
        claim(**kw)


def test_from_dict_rejects_bad_keys():
    d = claim().to_dict()
    with pytest.raises(ValueError):
        Claim.from_dict({k: v for k, v in d.items() if k != "verdict"})
    with pytest.raises(ValueError):
        Claim.from_dict({**d, "extra": 1})


def test_verdict_from_ci():
    assert verdict_from_ci(0.1, 0.5) == "supported"
    assert verdict_from_ci(-0.5, -0.1) == "refuted"
    assert verdict_from_ci(-0.1, 0.1) == "inconclusive"
    assert verdict_from_ci(0.0, 0.3) == "inconclusive"  # touches threshold
    assert verdict_from_ci(-0.3, 0.0) == "inconclusive"  # touches threshold from below
    assert verdict_from_ci(0.0, 0.0) == "inconclusive"  # a tie: zero-width CI at the threshold
    assert verdict_from_ci(0.0, 0.0, direction="less") == "inconclusive"
    assert verdict_from_ci(-0.3, -0.0001) == "refuted"
    assert verdict_from_ci(0.5, 0.7, threshold=0.5, direction="less") == "inconclusive"
    assert verdict_from_ci(0.0, 0.0, threshold=0.1, direction="less") == "supported"
    assert verdict_from_ci(0.6, 0.9, threshold=0.5) == "supported"
    assert verdict_from_ci(0.1, 0.4, threshold=0.5, direction="less") == "supported"
    assert verdict_from_ci(0.6, 0.9, threshold=0.5, direction="less") == "refuted"
    assert verdict_from_ci(0.4, 0.6, threshold=0.5, direction="less") == "inconclusive"
    assert verdict_from_ci(float("nan"), 1.0) == "inconclusive"
    with pytest.raises(ValueError):
        verdict_from_ci(0.5, 0.1)
    with pytest.raises(ValueError):
        verdict_from_ci(0.1, 0.5, direction="up")


def test_merge_claims(tmp_path):
    f1 = tmp_path / "claims" / "c1.json"
    f2 = tmp_path / "claims" / "c2.json"
    write_claims_fragment(f1, [claim("C10.a"), claim("C1.b").to_dict()])
    write_claims_fragment(f2, [claim("C2.x", verdict="refuted", value=-0.1, ci=(-0.3, -0.05))])
    out = tmp_path / "results" / "claims.json"
    doc = merge_claims([f1, f2], "tiny", out)
    on_disk = json.loads(out.read_text())
    assert on_disk == doc
    assert doc["config"] == "tiny"
    assert [c["id"] for c in doc["claims"]] == ["C1.b", "C2.x", "C10.a"]
    assert [c.id for c in read_claims_fragment(out)] == ["C1.b", "C2.x", "C10.a"]
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_merge_duplicate_id_raises_and_writes_nothing(tmp_path):
    f1 = tmp_path / "a.json"
    f2 = tmp_path / "b.json"
    write_claims_fragment(f1, [claim("C1.dup")])
    write_claims_fragment(f2, [claim("C1.dup")])
    out = tmp_path / "claims.json"
    with pytest.raises(ValueError, match="C1.dup"):
        merge_claims([f1, f2], "tiny", out)
    assert not out.exists()
    with pytest.raises(ValueError, match="C1.dup"):
        write_claims_fragment(tmp_path / "c.json", [claim("C1.dup"), claim("C1.dup")])


def test_read_fragment_reports_bad_claim(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps([{**claim().to_dict(), "verdict": "yes"}]))
    with pytest.raises(ValueError, match="claim #0"):
        read_claims_fragment(p)


def test_evidence_path_is_relative_to_the_results_dir(tmp_path):
    from srg.claims import evidence_path

    run = tmp_path / "results-smoke"
    assert evidence_path(run / "bon" / "rt.csv", run) == "results/bon/rt.csv"
    with pytest.raises(ValueError):
        evidence_path(tmp_path / "elsewhere.csv", run)


def _fam(cid, p, verdict="supported", ci=(0.1, 0.2)):
    return Claim(cid, "s", "t", 0.15, ci, verdict, "results/x.csv", p_value=p)


def test_primary_endpoint_and_holm_within_family():
    from srg.claims import apply_inference

    claims = [_fam("C3.ood", 0.01), _fam("C3.a", 0.01), _fam("C3.b", 0.03), _fam("C3.c", 0.2, "inconclusive")]
    out = {c.id: c for c in apply_inference(claims, {"C3": "C3.ood"}, alpha=0.05)}
    assert out["C3.ood"].primary and not out["C3.a"].primary
    assert out["C3.ood"].p_adjusted == pytest.approx(0.01)  # the primary is not adjusted
    # Holm over the 3 secondaries: 0.01*3 = 0.03, max(0.03, 0.03*2) = 0.06, max(0.06, 0.2) = 0.2
    assert out["C3.a"].p_adjusted == pytest.approx(0.03)
    assert out["C3.b"].p_adjusted == pytest.approx(0.06)
    assert out["C3.c"].p_adjusted == pytest.approx(0.2)
    assert out["C3.a"].verdict == "supported"
    assert out["C3.b"].verdict == "inconclusive"  # CI excludes the margin, but adjusted p >= alpha
    with pytest.raises(ValueError, match="claims.primary.C3"):
        apply_inference(claims, {"C3": "C3.missing"})


def test_supported_needs_a_small_p_even_for_the_primary():
    from srg.claims import apply_inference

    (c,) = apply_inference([_fam("C1.summary", 0.2)], {"C1": "C1.summary"})
    assert c.verdict == "inconclusive"
