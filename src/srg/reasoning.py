"""The reasoning output format: a reasoning block in explicit tags, then the final answer.

    <reasoning>
    ...the model's reasoning...
    </reasoning>
    final answer

Judges score only the final answer (the text after the closing tag). An output whose closing
tag is missing (for example cut off by the token limit mid-reasoning) or whose answer is empty
has no final answer: it is *malformed*, a counted outcome of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

PARSE_STATUSES = ("ok", "missing_open", "unclosed", "no_tags", "empty_reasoning", "empty_answer")


@dataclass(frozen=True)
class ReasoningFormat:
    open_tag: str = "<reasoning>"
    close_tag: str = "</reasoning>"

    def render(self, reasoning: str, answer: str) -> str:
        """The training target for one example."""
        return f"{self.open_tag}\n{reasoning.strip()}\n{self.close_tag}\n{answer.strip()}"


@dataclass(frozen=True)
class Parsed:
    reasoning: str | None
    answer: str | None
    status: str  # one of PARSE_STATUSES

    @property
    def ok(self) -> bool:
        """Both tags, non-empty reasoning and answer: what synthesis accepts."""
        return self.status == "ok"

    @property
    def has_answer(self) -> bool:
        """A final answer could be extracted (what judging needs)."""
        return self.answer is not None


def parse(text: str, fmt: ReasoningFormat = ReasoningFormat()) -> Parsed:
    """Split an output into (reasoning, final answer) and say how well it followed the format.

    The answer is whatever follows the *first* closing tag; an opening tag is expected before it
    (``missing_open`` still yields the answer, so a judge can score it, but synthesis rejects it).
    """
    text = text or ""
    close = text.find(fmt.close_tag)
    open_ = text.find(fmt.open_tag)
    if close < 0:
        return Parsed(None, None, "unclosed" if open_ >= 0 else "no_tags")
    answer = text[close + len(fmt.close_tag) :].strip()
    if 0 <= open_ < close:
        reasoning, status = text[open_ + len(fmt.open_tag) : close].strip(), "ok"
    else:
        reasoning, status = text[:close].strip(), "missing_open"
    if not answer:
        return Parsed(reasoning, None, "empty_answer")
    if status == "ok" and not reasoning:
        status = "empty_reasoning"
    return Parsed(reasoning, answer, status)


def final_answer(text: str, fmt: ReasoningFormat = ReasoningFormat()) -> str | None:
    """The text a judge should score, or None when the output has no final answer."""
    return parse(text, fmt).answer


def closure_report(rows: list[dict], fmt: ReasoningFormat = ReasoningFormat()) -> dict:
    """Who closed the reasoning blocks of one (model, set)'s generation rows, and how long the
    reasoning the model closed itself ran (README "Reasoning budget").

    Budgeted rows carry ``reasoning_closed`` (``model`` | ``budget`` | ``eos``) and token counts;
    a free-decoded row counts as closed by the model when its block parses closed (``none``
    otherwise). ``closed_by_model`` is the closure target's share; the token percentiles are over
    the blocks the model closed (the distribution a reasoning budget is sized from)."""
    import numpy as np

    if not rows:
        raise ValueError("closure report of no rows")
    by = [
        r.get("reasoning_closed") or ("model" if final_answer(r["response"], fmt) is not None else "none") for r in rows
    ]
    closed = [r["reasoning_tokens"] for r, b in zip(rows, by) if b == "model" and "reasoning_tokens" in r]
    shares = {k: by.count(k) / len(by) for k in dict.fromkeys(["model", "budget", "eos", *by])}
    out = {"n": len(rows), "closed_by": shares, "closed_by_model": shares["model"]}
    if closed:
        p50, p95, p99 = (float(np.percentile(closed, q)) for q in (50, 95, 99))
        out["reasoning_tokens_closed"] = {"p50": p50, "p95": p95, "p99": p99, "max": int(max(closed))}
    answers = [r["answer_tokens"] for r in rows if "answer_tokens" in r]
    if answers:
        out["answer_tokens_p50"] = float(np.percentile(answers, 50))
    return out
