"""Claims ledger: each DAG stage writes a fragment (a JSON list of claim dicts), and
``merge_claims`` combines the fragments into ``results/claims.json``::

    {"config": <name>, "alpha": a, "primary": {family: id},
     "claims": [{"id", "statement", "statistic", "value", "ci": [lo, hi], "verdict", "evidence",
                 "primary", "test", "p_value", "p_adjusted", "n_clusters", "margin", "direction",
                 "n_seeds", "per_seed"}, ...]}

A claim's family is the part of its id before the first dot (C1, C2, ...). Each family has one
primary endpoint declared in config (``claims.primary``) before any result exists; the others
are secondary and get Holm-adjusted p-values within their family. Verdicts: "supported" needs
the CI strictly on the claimed side of the margin *and* p (primary) or Holm-adjusted p
(secondary) below alpha; "refuted" needs the CI strictly on the other side; everything else,
ties and CIs touching the margin included, is "inconclusive".

Non-finite numbers are written as JSON ``null`` (strict JSON has no NaN) and read back as NaN.
``evidence`` is a relative POSIX path starting with ``results/``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from srg.io import read_json, write_json

__all__ = [
    "VERDICTS",
    "Claim",
    "verdict_from_ci",
    "family",
    "apply_inference",
    "write_claims_fragment",
    "read_claims_fragment",
    "merge_claims",
]

VERDICTS = ("supported", "refuted", "inconclusive")
_FIELDS = ("id", "statement", "statistic", "value", "ci", "verdict", "evidence")
_INFERENCE = ("primary", "test", "p_value", "p_adjusted", "n_clusters", "margin", "direction", "n_seeds", "per_seed")


def _num(x: Any, name: str) -> float:
    if x is None:
        return float("nan")
    if isinstance(x, bool) or not isinstance(x, (int, float)) and not hasattr(x, "__float__"):
        raise ValueError(f"{name} must be a number or null, got {x!r}")
    return float(x)


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class Claim:
    """One checked claim. Validated on construction (see module docstring for the format).

    Rules: verdict in VERDICTS; ci is (lo, hi) with lo <= hi when both are finite; a
    non-finite value or CI bound forces verdict "inconclusive".
    """

    id: str
    statement: str
    statistic: str
    value: float
    ci: tuple[float, float]
    verdict: str
    evidence: str
    primary: bool = False
    test: str = "bootstrap"
    p_value: float = float("nan")
    p_adjusted: float = float("nan")
    n_clusters: int = 0
    margin: float = 0.0
    direction: str = "greater"
    n_seeds: int = 1  # training seeds of each compared model folded into the CI
    per_seed: tuple[float, ...] = ()  # the statistic with seed i of each model (when n_seeds > 1)

    def __post_init__(self) -> None:
        for name in ("id", "statement", "statistic", "evidence"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"claim {self.id!r}: {name} must be a non-empty string")
        if self.direction not in ("greater", "less"):
            raise ValueError(f"claim {self.id!r}: direction must be 'greater' or 'less', got {self.direction!r}")
        for name in ("p_value", "p_adjusted", "margin"):
            object.__setattr__(self, name, _num(getattr(self, name), f"claim {self.id!r}: {name}"))
        object.__setattr__(self, "n_clusters", int(self.n_clusters))
        object.__setattr__(self, "n_seeds", int(self.n_seeds))
        object.__setattr__(self, "per_seed", tuple(_num(v, f"claim {self.id!r}: per_seed") for v in self.per_seed))
        object.__setattr__(self, "primary", bool(self.primary))
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.id!r}: verdict {self.verdict!r} not in {VERDICTS}")
        value = _num(self.value, f"claim {self.id!r}: value")
        ci = self.ci
        if isinstance(ci, (str, bytes)) or len(ci) != 2:
            raise ValueError(f"claim {self.id!r}: ci must be [lo, hi], got {ci!r}")
        lo, hi = (_num(c, f"claim {self.id!r}: ci") for c in ci)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "ci", (lo, hi))
        if math.isfinite(lo) and math.isfinite(hi) and lo > hi:
            raise ValueError(f"claim {self.id!r}: ci is not ordered ({lo} > {hi})")
        if not all(math.isfinite(x) for x in (value, lo, hi)) and self.verdict != "inconclusive":
            raise ValueError(
                f"claim {self.id!r}: non-finite value/ci requires verdict 'inconclusive', got {self.verdict!r}"
            )
        ev = PurePosixPath(self.evidence)
        bad = ev.is_absolute() or ev.parts[:1] != ("results",) or ".." in ev.parts
        if bad or "\\" in self.evidence:
            raise ValueError(
                f"claim {self.id!r}: evidence must be a relative path under results/, got {self.evidence!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the ledger's field order (NaN -> None)."""
        return {
            "id": self.id,
            "statement": self.statement,
            "statistic": self.statistic,
            "value": _finite_or_none(self.value),
            "ci": [_finite_or_none(self.ci[0]), _finite_or_none(self.ci[1])],
            "verdict": self.verdict,
            "evidence": self.evidence,
            "primary": self.primary,
            "test": self.test,
            "p_value": _finite_or_none(self.p_value),
            "p_adjusted": _finite_or_none(self.p_adjusted),
            "n_clusters": self.n_clusters,
            "margin": _finite_or_none(self.margin),
            "direction": self.direction,
            "n_seeds": self.n_seeds,
            "per_seed": [_finite_or_none(v) for v in self.per_seed],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Claim:
        """Inverse of ``to_dict``; missing core keys or unknown keys raise ValueError (the
        inference keys are optional)."""
        if not isinstance(d, dict):
            raise ValueError(f"claim must be an object, got {type(d).__name__}")
        missing = [k for k in _FIELDS if k not in d]
        extra = sorted(set(d) - set(_FIELDS) - set(_INFERENCE))
        if missing or extra:
            raise ValueError(f"claim {d.get('id')!r}: missing keys {missing}, unknown keys {extra}")
        ci = d["ci"]
        if not isinstance(ci, (list, tuple)):
            raise ValueError(f"claim {d['id']!r}: ci must be a list [lo, hi], got {ci!r}")
        extra_kw = {"per_seed": tuple(d["per_seed"])} if d.get("per_seed") is not None else {}
        return cls(**{**d, "ci": tuple(ci), **extra_kw})


def verdict_from_ci(lo: float, hi: float, threshold: float = 0.0, direction: str = "greater") -> str:
    """Verdict for "statistic > threshold" (direction="greater") or "< threshold" ("less").

    "supported" if the whole CI lies strictly on the claimed side, "refuted" if it lies strictly
    on the other side, else "inconclusive": a CI that includes or touches the threshold (a
    zero-width CI at the threshold included) decides nothing. A NaN bound gives "inconclusive".
    """
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less', got {direction!r}")
    lo, hi, t = float(lo), float(hi), float(threshold)
    if math.isnan(lo) or math.isnan(hi) or math.isnan(t):
        return "inconclusive"
    if lo > hi:
        raise ValueError(f"ci is not ordered ({lo} > {hi})")
    if direction == "greater":
        return "supported" if lo > t else "refuted" if hi < t else "inconclusive"
    return "supported" if hi < t else "refuted" if lo > t else "inconclusive"


def family(claim_id: str) -> str:
    """The claim family: the id before its first dot ("C3.ood" -> "C3")."""
    return claim_id.split(".", 1)[0]


def apply_inference(claims: Sequence[Claim], primary: dict[str, str], alpha: float = 0.05) -> list[Claim]:
    """Mark each family's declared primary endpoint, Holm-adjust the secondary p-values within a
    family, and demote a "supported" verdict whose (adjusted) p is not below ``alpha``.

    A family present among ``claims`` whose declared primary id is absent raises ValueError.
    """
    from dataclasses import replace

    from srg.stats import holm

    present = {c.id for c in claims}
    for fam, cid in primary.items():
        if any(family(i) == fam for i in present) and cid not in present:
            raise ValueError(f"claims.primary.{fam} = {cid!r} is not among the claims written: {sorted(present)}")
    out = {c.id: replace(c, primary=primary.get(family(c.id)) == c.id) for c in claims}
    for fam in dict.fromkeys(family(c.id) for c in claims):
        sec = [c for c in out.values() if family(c.id) == fam and not c.primary]
        for c, pa in zip(sec, holm([c.p_value for c in sec])):
            out[c.id] = replace(c, p_adjusted=pa)
        if fam in primary and primary[fam] in out:
            c = out[primary[fam]]
            out[c.id] = replace(c, p_adjusted=c.p_value)
    final = []
    for c in claims:
        c = out[c.id]
        if c.verdict == "supported" and not (math.isfinite(c.p_adjusted) and c.p_adjusted < alpha):
            c = replace(c, verdict="inconclusive")
        final.append(c)
    return final


def write_claims_fragment(path: str | os.PathLike, claims: Iterable[Claim | dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate and atomically write one stage's claims as a JSON list; return the dicts."""
    rows = [(c if isinstance(c, Claim) else Claim.from_dict(c)).to_dict() for c in claims]
    ids = [r["id"] for r in rows]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"{path}: duplicate claim id(s) {dup}")
    write_json(path, rows)
    return rows


def read_claims_fragment(path: str | os.PathLike) -> list[Claim]:
    """Read a fragment (a JSON list, or an object with a "claims" list) into validated Claims."""
    data = read_json(path)
    if isinstance(data, dict) and "claims" in data:
        data = data["claims"]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of claims")
    out = []
    for i, d in enumerate(data):
        try:
            out.append(Claim.from_dict(d))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: claim #{i}: {exc}") from exc
    return out


def _id_key(cid: str) -> list[tuple[int, int | str]]:
    """Natural sort key: "C2.x" < "C10.x"."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", cid) if p]


def merge_claims(
    fragment_paths: Sequence[str | os.PathLike],
    config_name: str,
    out_path: str | os.PathLike,
    primary: dict[str, str] | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Merge fragments into the ledger sorted by id (natural order), with the primary endpoints
    and multiplicity control of ``apply_inference``; write it atomically to ``out_path`` and
    return it. A duplicate id raises ValueError naming it and both fragments.
    """
    seen: dict[str, Path] = {}
    claims: list[Claim] = []
    for p in fragment_paths:
        for c in read_claims_fragment(p):
            if c.id in seen:
                raise ValueError(f"duplicate claim id {c.id!r} in {seen[c.id]} and {p}")
            seen[c.id] = Path(p)
            claims.append(c)
    claims.sort(key=lambda c: _id_key(c.id))
    claims = apply_inference(claims, primary or {}, alpha)
    doc = {
        "config": config_name,
        "alpha": alpha,
        "primary": dict(primary or {}),
        "claims": [c.to_dict() for c in claims],
    }
    write_json(out_path, doc)
    return doc


def evidence_path(path: str | os.PathLike, results_dir: str | os.PathLike) -> str:
    """How claims cite a file: ``results/<path relative to the run's results dir>``.

    Keeps evidence paths stable when a run writes elsewhere (e.g. ``results-smoke/``).
    """
    rel = Path(path).resolve().relative_to(Path(results_dir).resolve())
    return "results/" + rel.as_posix()
