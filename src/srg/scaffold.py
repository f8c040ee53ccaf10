"""Scaffolded teacher decoding: a small model writes real guideline reasoning, one line at a time.

A 135M model cannot follow the teacher prompt's output format on its own (it never closes the
reasoning tag). The scaffold supplies the format and leaves the content to the model:

1. The assistant turn is prefilled with the opening tag.
2. For each guideline the scaffold writes its header (``Intent:``) and the model writes one line
   after it: sampled, stopped at a newline or after ``line_tokens`` tokens; from the query alone
   (``chain=False``, the default) or after the candidate's earlier lines (``chain=True``).
   Unusable lines (:func:`line_quality`) are dropped from the text; a candidate needs a share
   ``min_ok_lines`` of usable lines (screened in ``srg.synthesis``).
3. The scaffold closes the reasoning block.
4. The answer: for a benign query the model continues after the closed block; for a harmful query
   it is the RT refusal of that query (README "Teacher"), so SRG and RT differ on harmful rows
   in the reasoning alone.

Every candidate keeps its ``segments`` (``by``: ``scaffold`` | ``model`` | ``rt``) so the notebook
and the yield tables show which text the model wrote. Lines are judged per guideline
(:func:`line_quality`); a variant that drops a guideline reuses the full run's candidates with that
guideline's line removed (:func:`render`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from srg.backends import Backend, Request, SamplingParams
from srg.reasoning import ReasoningFormat
from srg.rt_data import is_degenerate

PLAIN_HEADER = "Step {i}:"
LINE_REASONS = ("ok", "empty", "too_short", "degenerate", "copies_header", "copies_request", "repeats_line")


@dataclass(frozen=True)
class ScaffoldSettings:
    """Budget of the scaffold: tokens per reasoning line and for the answer, and the sampling."""

    k: int = 2
    line_tokens: int = 20
    answer_tokens: int = 48
    temperature: float = 0.7
    top_p: float = 0.9
    min_line_words: int = 3
    plain_lines: int = 3
    line_samples: int = 2
    chain: bool = False
    max_copy: float = 0.5
    max_repeat: float = 0.6
    seed: int = 0


def headers(guidelines: Sequence, plain_lines: int) -> list[tuple[str, str]]:
    """(guideline id, header text) per reasoning line; plain reasoning gets numbered steps."""
    if guidelines:
        return [(g.id, f"{g.perspective}:") for g in guidelines]
    return [(f"step{i}", PLAIN_HEADER.format(i=i)) for i in range(1, plain_lines + 1)]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _trigrams(words: Sequence[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def copied_share(text: str, source: str) -> float:
    """Share of the line's word trigrams that occur verbatim in ``source`` (0 for < 3 words)."""
    grams = _trigrams(_words(text))
    return len(grams & _trigrams(_words(source))) / len(grams) if grams else 0.0


def overlap(a: str, b: str) -> float:
    """Jaccard overlap of the two texts' word sets."""
    x, y = set(_words(a)), set(_words(b))
    return len(x & y) / len(x | y) if x | y else 0.0


def line_quality(
    text: str,
    header: str,
    instruction: str = "",
    min_words: int = 3,
    *,
    request: str = "",
    earlier: Sequence[str] = (),
    max_copy: float = 0.5,
    max_repeat: float = 0.6,
) -> str:
    """Why a model-written reasoning line is unusable, or ``ok``.

    Rejected: empty, shorter than ``min_words``, looping, restating its own header or the
    guideline's instruction, copying the request (more than ``max_copy`` of its word trigrams
    verbatim), or repeating an earlier line of the same candidate (word overlap > ``max_repeat``).
    """
    words = text.split()
    if not words:
        return "empty"
    if len(words) < min_words:
        return "too_short"
    if is_degenerate(text, n=2):
        return "degenerate"
    norm = " ".join(_words(text))
    if norm.startswith(" ".join(_words(header))) or (instruction and copied_share(text, instruction) > max_copy):
        return "copies_header"
    if request and copied_share(text, request) > max_copy:
        return "copies_request"
    if any(overlap(text, e) > max_repeat for e in earlier):
        return "repeats_line"
    return "ok"


ECHO_OPENINGS = ("request:", "query:", "user:", "question:")


def answer_quality(
    answer: str, fmt: ReasoningFormat, heads: Sequence[str], request: str = "", max_copy: float = 0.5
) -> str:
    """``ok``, ``empty``, ``degenerate``, ``continues_scaffold`` (the answer reopens the
    reasoning: a tag or a guideline header) or ``echoes_request`` (it restates the request: opens
    with ``Request:`` and the like, or copies over ``max_copy`` of its trigrams from it)."""
    if not answer.strip():
        return "empty"
    if answer.lstrip().lower().startswith(ECHO_OPENINGS) or (request and copied_share(answer, request) > max_copy):
        return "echoes_request"
    start = answer.lstrip().lower()
    if fmt.open_tag in answer or fmt.close_tag in answer or any(start.startswith(h.lower()) for h in heads):
        return "continues_scaffold"
    if is_degenerate(answer):
        return "degenerate"
    return "ok"


def usable(lines: Sequence[dict], keep: Sequence[str] | None = None) -> list[dict]:
    """The lines a candidate's training text keeps: usable (``ok``) lines of kept guidelines."""
    return [x for x in lines if x["quality"] == "ok" and (keep is None or x["id"] in keep)]


def render(lines: Sequence[dict], answer: str, fmt: ReasoningFormat, keep: Sequence[str] | None = None) -> str:
    """The training text of one candidate: header + model line per kept, usable guideline line,
    closed block, answer. ``keep`` (guideline ids) drops the other lines (one-guideline ablations);
    unusable lines are always dropped."""
    body = "\n".join(f"{x['header']} {x['text']}".rstrip() for x in usable(lines, keep))
    return fmt.render(body, answer)


def _prefill(fmt: ReasoningFormat, lines: Sequence[dict]) -> str:
    return f"{fmt.open_tag}\n" + "".join(f"{x['header']} {x['text']}\n" for x in lines)


def generate_candidates(
    backend: Backend,
    records: Sequence[dict],
    queries: dict[str, str],
    kinds: dict[str, str],
    refusals: dict[str, str],
    guidelines: Sequence,
    settings: ScaffoldSettings,
    fmt: ReasoningFormat = ReasoningFormat(),
    progress=None,
) -> list[dict]:
    """k scaffolded candidates per teacher record (``records``: teacher prompts, ``id`` = RT row id).

    ``queries``: RT row id -> the bare query (copy check); ``kinds``: -> harmful | benign;
    ``refusals``: -> the RT refusal (the answer of harmful rows). Each line step is one batched
    backend call with ``line_samples`` samples per (query, candidate) chain; without ``chain``,
    one request per query with ``k`` x ``line_samples`` samples split among its candidates. Where
    the backend has ``generate_branches``, one call for every line (each query prefilled once),
    sampled lazily: one sample per candidate, then another only for the candidates whose samples
    so far are unusable, up to ``line_samples``. Either way the first usable of up to
    ``line_samples`` samples is kept (line-level rejection sampling), else the first sample."""
    chains = [(r, j) for r in records for j in range(settings.k)]
    heads = headers(guidelines, settings.plain_lines)
    instr = {g.id: g.instruction for g in guidelines}
    lines: list[list[dict]] = [[] for _ in chains]

    # with generate_branches, a line's further samples are drawn only for the candidates whose
    # samples so far are unusable (lazy: the same first usable of up to line_samples samples)
    lazy = not settings.chain and hasattr(backend, "generate_branches")

    def line_params(step: int) -> SamplingParams:
        return SamplingParams(
            n=(1 if lazy else settings.line_samples) * (1 if settings.chain else settings.k),
            greedy=False,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=0,
            max_new_tokens=settings.line_tokens,
            seed=settings.seed * 1000 + step,
            stop=("\n",),
        )

    # chain: each line sees the candidate's earlier usable lines; else each guideline's line is
    # written from the query alone (a 135M model copies earlier lines into later ones), so the k
    # candidates of a query share one request (one prefill), and a backend with generate_branches
    # (hf) prefills the query once for every guideline's header and samples lazily (above)
    def check(c: int, step: int, text: str, earlier: list[str]) -> str:
        gid, header = heads[step]
        return line_quality(
            text,
            header,
            instr.get(gid, ""),
            settings.min_line_words,
            request=queries[chains[c][0]["id"]],
            earlier=earlier,
            max_copy=settings.max_copy,
            max_repeat=settings.max_repeat,
        )

    branched = None
    if lazy:
        # (record, step) -> the sample indices each of its k candidates tried; a candidate's kept
        # line per step (for the later lines' repeat check), as the loop below will choose it
        tried: dict[tuple[int, int], list[list[int]]] = {}
        kept: dict[int, dict[int, str]] = {c: {} for c in range(len(chains))}

        def more(i: int, step: int, comps) -> int:
            t = tried.setdefault((i, step), [[] for _ in range(settings.k)])
            used = sum(len(x) for x in t)
            waiting = [j for j in range(settings.k) if not _settled(t[j], comps, i, j, step)]
            for j, s_idx in zip(waiting, range(used, len(comps))):
                t[j].append(s_idx)
            still = [j for j in range(settings.k) if not _settled(t[j], comps, i, j, step)]
            if not still:
                for j in range(settings.k):
                    text, quality = _choice(t[j], comps, i, j, step)
                    if quality == "ok":
                        kept[i * settings.k + j][step] = text
            return len(still)

        def _quality(comps, s_idx: int, i: int, j: int, step: int) -> str:
            c = i * settings.k + j
            earlier = [x for st, x in sorted(kept[c].items()) if st < step]
            return check(c, step, " ".join(comps[s_idx].text.split()), earlier)

        def _settled(idx: list[int], comps, i: int, j: int, step: int) -> bool:
            if not idx:
                return False
            return len(idx) >= settings.line_samples or _quality(comps, idx[-1], i, j, step) == "ok"

        def _choice(idx: list[int], comps, i: int, j: int, step: int) -> tuple[str, str]:
            q = [_quality(comps, s_idx, i, j, step) for s_idx in idx]
            s_idx = idx[q.index("ok")] if "ok" in q else idx[0]
            return " ".join(comps[s_idx].text.split()), q[idx.index(s_idx)]

        reqs = [Request(r["prompt"], None, _prefill(fmt, [])) for r in records]
        per_record = backend.generate_branches(reqs, [h for _, h in heads], line_params(0), more=more)
        branched = [
            [
                [per_record[c // settings.k][step][x] for x in tried[(c // settings.k, step)][c % settings.k]]
                for c in range(len(chains))
            ]
            for step in range(len(heads))
        ]
    for step, (gid, header) in enumerate(heads):
        if branched is not None:
            outs = branched[step]
        else:
            if settings.chain:
                reqs = [
                    Request(r["prompt"], None, _prefill(fmt, usable(lines[c])) + header)
                    for c, (r, _) in enumerate(chains)
                ]
            else:
                reqs = [Request(r["prompt"], None, _prefill(fmt, []) + header) for r in records]
            outs = backend.generate(reqs, line_params(step))
        if not settings.chain and branched is None:  # chain c = (record c // k, candidate c % k): its slice
            ls = settings.line_samples
            outs = [
                outs[c // settings.k][(c % settings.k) * ls : (c % settings.k + 1) * ls] for c in range(len(chains))
            ]
        for c, samples in enumerate(outs):
            tried_here = []
            for o in samples:
                text = " ".join(o.text.split())
                quality = check(c, step, text, [x["text"] for x in usable(lines[c])])
                tried_here.append((text, o, quality))
                if quality == "ok":
                    break
            text, o, quality = tried_here[-1] if tried_here[-1][2] == "ok" else tried_here[0]
            lines[c].append(
                {
                    "id": gid,
                    "header": header,
                    "text": text,
                    "n_tokens": o.n_tokens,
                    "capped": not o.finished,
                    "quality": quality,
                    "samples_tried": len(tried_here),
                }
            )
        if progress:
            progress(step + 1, len(heads) + 1)
    benign = [c for c, (r, _) in enumerate(chains) if kinds[r["id"]] == "benign"]
    answers: dict[int, tuple[str, int, bool]] = {}
    if benign:
        reqs = [
            Request(chains[c][0]["prompt"], None, _prefill(fmt, usable(lines[c])) + f"{fmt.close_tag}\n")
            for c in benign
        ]
        params = SamplingParams(
            n=1,
            greedy=False,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=0,
            max_new_tokens=settings.answer_tokens,
            seed=settings.seed * 1000 + len(heads),
        )
        for c, o in zip(benign, backend.generate(reqs, params)):
            answers[c] = (o[0].text.strip(), o[0].n_tokens, o[0].finished)
    if progress:
        progress(len(heads) + 1, len(heads) + 1)
    head_texts = [h for _, h in heads]
    out = []
    for c, (r, j) in enumerate(chains):
        if kinds[r["id"]] == "benign":
            answer, n_answer, finished = answers[c]
            answer_by = "model"
        else:
            answer, n_answer, finished, answer_by = refusals[r["id"]], 0, True, "rt"
        segments = [{"by": "scaffold", "text": f"{fmt.open_tag}\n"}]
        for x in usable(lines[c]):
            segments += [{"by": "scaffold", "text": x["header"] + " "}, {"by": "model", "text": x["text"] + "\n"}]
        segments += [{"by": "scaffold", "text": f"{fmt.close_tag}\n"}, {"by": answer_by, "text": answer}]
        out.append(
            {
                "prompt_id": r["id"],
                "sample": j,
                "response": render(lines[c], answer, fmt),
                "lines": lines[c],
                "answer": answer,
                "answer_by": answer_by,
                "answer_quality": answer_quality(answer, fmt, head_texts, queries[r["id"]], settings.max_copy),
                "answer_finished": finished,
                "n_tokens": sum(x["n_tokens"] for x in lines[c]) + n_answer,
                "finished": finished,
                "segments": segments,
                "model": "teacher",
                "mode": "scaffold",
            }
        )
    return out


def candidates_for_rt_rows(
    backend: Backend,
    records: Sequence[dict],
    rt_rows: dict[str, dict],
    guidelines: Sequence,
    settings: ScaffoldSettings,
    fmt: ReasoningFormat = ReasoningFormat(),
    progress=None,
) -> list[dict]:
    """:func:`generate_candidates` for teacher records keyed by RT training rows (``rt_rows``: id
    -> the RT row, whose prompt, kind and, for harmful rows, refusal the scaffold uses)."""
    return generate_candidates(
        backend,
        records,
        queries={i: r["prompt"] for i, r in rt_rows.items()},
        kinds={i: r["kind"] for i, r in rt_rows.items()},
        refusals={i: r["completion"] for i, r in rt_rows.items() if r["kind"] == "harmful"},
        guidelines=guidelines,
        settings=settings,
        fmt=fmt,
        progress=progress,
    )


def reasoning_ok(candidate: dict, keep: Sequence[str] | None, min_ok: float) -> bool:
    """At least ``min_ok`` of the kept guidelines' lines (``keep`` None = every line) are usable,
    and at least one is."""
    kept = [x for x in candidate["lines"] if keep is None or x["id"] in keep]
    n_ok = sum(x["quality"] == "ok" for x in kept)
    return n_ok > 0 and n_ok / len(kept) >= min_ok


def line_yield(candidates: Sequence[dict], keep: Sequence[str] | None = None) -> dict[str, dict]:
    """Per guideline: the share of candidates whose line is model-written and usable, and why not."""
    out: dict[str, dict] = {}
    for c in candidates:
        for x in c.get("lines", []):
            if keep is not None and x["id"] not in keep:
                continue
            d = out.setdefault(x["id"], {"header": x["header"], "lines": 0, **{k: 0 for k in LINE_REASONS}})
            d["lines"] += 1
            d[x["quality"]] += 1
            d.setdefault("capped", 0)
            d["capped"] += bool(x.get("capped"))
    for d in out.values():
        d["ok_rate"] = d["ok"] / d["lines"] if d["lines"] else None
    return out
