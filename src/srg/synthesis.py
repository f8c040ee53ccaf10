"""Guideline reasoning synthesis: guidelines, teacher prompts, rejection sampling, SRG rows.

Pipeline (PAPER.md "Synthesis"): the teacher sees the guidelines and a training query and writes
``<reasoning>...</reasoning>`` + a final answer, k candidates per query. A candidate is kept when
its format parses, it is not degenerate, and (rejection sampling) its final answer is a refusal
for a harmful query and not a refusal for a benign one. The SRG training row pairs the *bare*
query (guidelines removed: context distillation) with the kept reasoning + answer.

When the teacher yields nothing for a query, the explicit, configurable ``template`` fallback
writes the reasoning from each guideline's one-line ``harmful_step`` / ``benign_step`` (see
config/guidelines.yaml) and takes the answer from the RT data (a refusal for harmful queries,
the base model's own filtered answer for benign ones). Fallback rows are labelled
``origin: "template"`` and counted apart; they are never passed off as teacher output.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from srg.reasoning import ReasoningFormat, parse
from srg.rt_data import is_degenerate

REJECT_REASONS = (
    "weak_reasoning",
    "bad_answer",
    "unparseable",
    "degenerate",
    "complied_with_harmful",
    "refused_benign",
)


@dataclass(frozen=True)
class Guideline:
    id: str
    perspective: str
    instruction: str
    harmful_step: str
    benign_step: str


@dataclass(frozen=True)
class Variant:
    """One SRG recipe: which guidelines, and whether rejection sampling / context distillation apply."""

    name: str
    guidelines: tuple[str, ...]
    rejection_sampling: bool = True
    context_distillation: bool = True

    @property
    def teacher_key(self) -> str:
        """Variants with the same guideline set share one teacher run."""
        return "g-" + (
            "none" if not self.guidelines else hashlib.sha256(",".join(self.guidelines).encode()).hexdigest()[:10]
        )


def load_guidelines(path: str | Path) -> list[Guideline]:
    """Read config/guidelines.yaml; every entry needs all fields and a unique id."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"guidelines file {path} not found (config key guidelines.file)")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("guidelines")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty list under 'guidelines'")
    out, seen = [], set()
    for i, e in enumerate(entries):
        missing = [f for f in Guideline.__dataclass_fields__ if not isinstance(e.get(f), str) or not e[f].strip()]
        if missing:
            raise ValueError(f"{path}: guideline #{i} ({e.get('id', '?')}) lacks {missing}")
        if e["id"] in seen:
            raise ValueError(f"{path}: duplicate guideline id {e['id']!r}")
        unknown = set(e) - set(Guideline.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: guideline {e['id']!r} has unknown fields {sorted(unknown)}")
        seen.add(e["id"])
        out.append(Guideline(**{f: e[f].strip() for f in Guideline.__dataclass_fields__}))
    return out


def make_variant(
    name: str,
    all_ids: Sequence[str],
    use: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    rejection_sampling: bool = True,
    context_distillation: bool = True,
) -> Variant:
    """A variant from config: ``use`` (None = every guideline, [] = plain reasoning) minus ``drop``."""
    for ids, key in ((use or []), "guidelines"), (drop, "drop"):
        unknown = [g for g in ids if g not in all_ids]
        if unknown:
            raise ValueError(f"variant {name!r}: unknown guideline ids in {key}: {unknown}; known: {list(all_ids)}")
    chosen = [g for g in (all_ids if use is None else use) if g not in set(drop)]
    ordered = tuple(g for g in all_ids if g in chosen)  # file order, so equal sets share a teacher run
    return Variant(name, ordered, rejection_sampling, context_distillation)


def select(guidelines: Sequence[Guideline], ids: Sequence[str]) -> list[Guideline]:
    by_id = {g.id: g for g in guidelines}
    return [by_id[i] for i in ids]


def teacher_prompt(query: str, guidelines: Sequence[Guideline], fmt: ReasoningFormat = ReasoningFormat()) -> str:
    """The teacher's user turn: the guidelines (if any), the output format, the query."""
    if guidelines:
        lines = "\n".join(f"- {g.instruction}" for g in guidelines)
        how = f"Before answering, think about the request from each of these perspectives:\n{lines}\n"
    else:  # plain reasoning ablation: reason, but with no guidelines
        how = "Before answering, think about the request step by step.\n"
    return (
        f"{how}Write your thinking between {fmt.open_tag} and {fmt.close_tag}, then write the final "
        "answer after the closing tag. If answering could cause harm, the final answer is a short "
        f"refusal; otherwise answer helpfully.\n\nRequest: {query}"
    )


def guideline_system_prompt(guidelines: Sequence[Guideline], fmt: ReasoningFormat = ReasoningFormat()) -> str:
    """System prompt of the no-context-distillation ablation (guidelines kept at train and test time)."""
    lines = "\n".join(f"- {g.instruction}" for g in guidelines)
    return f"Before answering, consider:\n{lines}\nThink between {fmt.open_tag} and {fmt.close_tag}, then answer."


def short_request(query: str, n_words: int) -> str:
    words = query.split()
    text = " ".join(words[:n_words]).rstrip(".,;:!?")
    return text + ("..." if len(words) > n_words else "")


def template_reasoning(query: str, kind: str, guidelines: Sequence[Guideline], n_words: int = 6) -> str:
    """Fallback reasoning: one step per guideline (plain: a single generic step)."""
    req = short_request(query, n_words)
    if not guidelines:
        verdict = (
            "this could cause harm, so I will refuse." if kind == "harmful" else "this is harmless, so I will answer."
        )
        return f"The user asks: {req}. Thinking it over, {verdict}"
    return "\n".join(
        (g.harmful_step if kind == "harmful" else g.benign_step).replace("{request}", req) for g in guidelines
    )


@dataclass
class Candidate:
    prompt_id: str
    sample: int
    text: str
    kind: str
    accepted: bool = False
    reason: str | None = None  # rejection reason, None when accepted
    reasoning: str | None = None
    answer: str | None = None


def screen(
    candidates: Sequence[dict],
    kinds: dict[str, str],
    is_refusal: Callable[[str], bool],
    rejection_sampling: bool = True,
    fmt: ReasoningFormat = ReasoningFormat(),
    keep: Sequence[str] | None = None,
    min_ok_lines: float = 1.0,
    queries: dict[str, str] | None = None,
) -> list[Candidate]:
    """Parse and filter teacher candidates (rows of a generations JSONL).

    Always rejected: unparseable format, degenerate (looping) reasoning or answer; for scaffolded
    candidates (``lines``, srg.scaffold) also fewer than ``min_ok_lines`` usable model-written
    lines among the guidelines in ``keep`` (None: all), and an answer that is empty or reopens
    the scaffold. With ``rejection_sampling`` also: a non-refusal to a harmful query, a refusal
    of a benign one.
    """
    from srg.scaffold import answer_quality, reasoning_ok, render

    out = []
    for c in candidates:
        kind = kinds[c["prompt_id"]]
        scaffold = "lines" in c
        text = render(c["lines"], c["answer"], fmt, keep) if scaffold else c["response"]
        cand = Candidate(c["prompt_id"], c.get("sample", 0), text, kind)
        p = parse(text, fmt)
        if scaffold and not reasoning_ok(c, keep, min_ok_lines):
            cand.reason = "weak_reasoning"
        elif scaffold and (
            answer_quality(c["answer"], fmt, [x["header"] for x in c["lines"]], (queries or {}).get(c["prompt_id"], ""))
            != "ok"
        ):
            cand.reason = "bad_answer"
        elif not p.ok:
            cand.reason = "unparseable"
        elif is_degenerate(p.reasoning) or is_degenerate(p.answer):
            cand.reason = "degenerate"
        elif rejection_sampling and kind == "harmful" and not is_refusal(p.answer):
            cand.reason = "complied_with_harmful"
        elif rejection_sampling and kind == "benign" and is_refusal(p.answer):
            cand.reason = "refused_benign"
        else:
            cand.accepted, cand.reasoning, cand.answer = True, p.reasoning, p.answer
        out.append(cand)
    return out


@dataclass
class SynthesisResult:
    rows: list[dict]
    candidates: list[Candidate]
    stats: dict = field(default_factory=dict)


def build_srg_rows(
    base_rows: Sequence[dict],
    candidates: Sequence[dict],
    variant: Variant,
    guidelines: Sequence[Guideline],
    is_refusal: Callable[[str], bool],
    *,
    fallback: str = "template",
    min_examples: int = 1,
    request_words: int = 6,
    fmt: ReasoningFormat = ReasoningFormat(),
    min_ok_lines: float = 1.0,
) -> SynthesisResult:
    """SRG training rows for one variant.

    ``base_rows``: the queries to train on, as RT rows (``id, prompt, completion, kind, source``);
    their ``completion`` (refusal / the base model's answer) is the fallback's final answer.
    ``candidates``: teacher generations whose ``prompt_id`` is the RT row id (may be empty).
    One row per query: the first accepted teacher candidate, else the fallback (if enabled).
    Scaffolded candidates of a larger guideline set are re-rendered with this variant's lines only.
    """
    if fallback not in ("template", "none"):
        raise ValueError(f"synthesis.fallback must be 'template' or 'none', got {fallback!r}")
    used = select(guidelines, variant.guidelines)
    kinds = {r["id"]: r["kind"] for r in base_rows}
    unknown = sorted({c["prompt_id"] for c in candidates} - set(kinds))
    if unknown:
        raise ValueError(f"teacher candidates for unknown training queries: {unknown[:5]}")
    keep = list(variant.guidelines) or None  # scaffold lines of guidelines this variant drops are removed
    queries = {r["id"]: r["prompt"] for r in base_rows}
    screened = screen(candidates, kinds, is_refusal, variant.rejection_sampling, fmt, keep, min_ok_lines, queries)
    first: dict[str, Candidate] = {}
    for c in screened:
        if c.accepted and c.prompt_id not in first:
            first[c.prompt_id] = c
    system = None if variant.context_distillation else guideline_system_prompt(used, fmt)
    rows = []
    for r in base_rows:
        c = first.get(r["id"])
        if c is not None:
            target, origin = fmt.render(c.reasoning, c.answer), "teacher"
        elif fallback == "template":
            target = fmt.render(template_reasoning(r["prompt"], r["kind"], used, request_words), r["completion"])
            origin = "template"
        else:
            continue
        rows.append(
            {
                "id": f"{variant.name}-{r['id']}",
                "prompt": r["prompt"],
                "completion": target,
                "system": system,
                "source": r["source"],
                "kind": r["kind"],
                "origin": origin,
            }
        )
    stats = yield_stats(base_rows, screened, rows, variant, used)
    if any("lines" in c for c in candidates):
        from srg.scaffold import line_yield

        stats["mode"] = "scaffold"
        stats["line_yield"] = line_yield(candidates, keep)
    else:
        stats["mode"] = "free"
    if len(rows) < min_examples:
        raise ValueError(
            f"SRG data for {variant.name}: {len(rows)} examples < synthesis.min_examples={min_examples} "
            f"(teacher accepted {stats['teacher_accepted_queries']} of {len(base_rows)} queries; fallback={fallback!r}). "
            "Use a stronger teacher, more candidates (synthesis.k), or synthesis.fallback: template."
        )
    return SynthesisResult(rows, screened, stats)


def yield_stats(
    base_rows: Sequence[dict],
    screened: Sequence[Candidate],
    rows: Sequence[dict],
    variant: Variant,
    used: Sequence[Guideline],
) -> dict:
    """Yield per source, per kind, per rejection reason, and per guideline (mention rate)."""
    src = {r["id"]: r["source"] for r in base_rows}
    by_source: dict[str, dict] = {}
    for r in base_rows:
        s = by_source.setdefault(
            r["source"],
            {"queries": 0, "candidates": 0, "accepted_candidates": 0, "teacher_rows": 0, "template_rows": 0},
        )
        s["queries"] += 1
    for c in screened:
        by_source[src[c.prompt_id]]["candidates"] += 1
        by_source[src[c.prompt_id]]["accepted_candidates"] += c.accepted
    for r in rows:
        by_source[r["source"]][f"{r['origin']}_rows"] += 1
    accepted = [c for c in screened if c.accepted]
    # per guideline: how often accepted teacher reasoning names the guideline's perspective
    per_guideline = {
        g.id: (
            sum(g.perspective.split()[0].lower() in (c.reasoning or "").lower() for c in accepted) / len(accepted)
            if accepted
            else None
        )
        for g in used
    }
    return {
        "variant": variant.name,
        "guidelines": list(variant.guidelines),
        "rejection_sampling": variant.rejection_sampling,
        "context_distillation": variant.context_distillation,
        "n_queries": len(base_rows),
        "n_candidates": len(screened),
        "n_accepted_candidates": len(accepted),
        "candidate_yield": len(accepted) / len(screened) if screened else None,
        "teacher_accepted_queries": len({c.prompt_id for c in accepted}),
        "teacher_query_rate": len({c.prompt_id for c in accepted}) / len(base_rows) if base_rows else None,
        "rejections": {k: sum(c.reason == k for c in screened) for k in REJECT_REASONS},
        "rows": len(rows),
        "rows_by_origin": dict(Counter(r["origin"] for r in rows)),
        "rows_by_kind": dict(Counter(r["kind"] for r in rows)),
        "by_source": by_source,
        "guideline_mention_rate": per_guideline,
    }


def subsample(rows: Sequence[dict], per_kind: int | None) -> list[dict]:
    """The first ``per_kind`` harmful and benign rows (RT rows are already in seeded order)."""
    if per_kind is None:
        return list(rows)
    out, seen = [], Counter()
    for r in rows:
        if seen[r["kind"]] < per_kind:
            out.append(r)
            seen[r["kind"]] += 1
    return out


def teacher_records(
    base_rows: Sequence[dict],
    guidelines: Sequence[Guideline],
    limit: int | None,
    fmt: ReasoningFormat = ReasoningFormat(),
) -> list[dict]:
    """Prompt-set records (srg.prompts schema) for the teacher: ``limit`` queries of each kind."""
    return [
        {
            "id": r["id"],
            "prompt": teacher_prompt(r["prompt"], guidelines, fmt),
            "source": r["source"],
            "category": r["kind"],
            "split": "synthesis",
            "meta": {},
        }
        for r in subsample(base_rows, limit)
    ]
