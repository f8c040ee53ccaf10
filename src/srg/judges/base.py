"""The judge interface: one verdict per response, a registry of judges by name, and
final-answer judging of reasoning outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Protocol

from srg.reasoning import ReasoningFormat, final_answer


@dataclass(frozen=True)
class Verdict:
    """One judged response. ``outcome`` is one of ``srg.judges.taxonomy.OUTCOMES``; ``unsafe``
    is the judge's attack-success call (keyword: ``outcome == "compliance"``); ``malformed``
    flags a reasoning output whose block never closed (judged on its whole text)."""

    refusal: bool
    unsafe: bool
    outcome: str
    malformed: bool = False
    reason: str = ""

    @property
    def nonrefusal(self) -> bool:
        """Non-empty and not a refusal: the keyword-ASR upper bound (``asr_nonrefusal``)."""
        return self.outcome not in ("refusal", "empty")


class Judge(Protocol):
    name: str

    def judge(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Verdict]: ...


JUDGES: dict[str, Callable[..., Judge]] = {}


def register_judge(name: str):
    def deco(factory):
        JUDGES[name] = factory
        return factory

    return deco


def make_judge(name: str, **options) -> Judge:
    if name not in JUDGES and name in ("llamaguard", "llm"):
        try:  # these register themselves on import (srg.judges.llamaguard, srg.judges.llm)
            __import__(f"srg.judges.{name}")
        except ImportError as exc:
            raise ValueError(f"judge {name!r} is not available here ({exc}); available: {sorted(JUDGES)}") from exc
    if name not in JUDGES:
        raise ValueError(f"unknown judge {name!r}; available: {sorted(JUDGES)}")
    return JUDGES[name](**options)


def _strip_tags(text: str, fmt: ReasoningFormat) -> str:
    return text.replace(fmt.open_tag, " ").replace(fmt.close_tag, " ").strip()


def _call(judge: Judge, prompts: Sequence[str], responses: Sequence[str], requests: Sequence[str] | None):
    if requests is None:
        return judge.judge(prompts, responses)
    return judge.judge(prompts, responses, requests)


def judge_responses(
    judge: Judge,
    prompts: Sequence[str],
    responses: Sequence[str],
    reasoning: ReasoningFormat | None = None,
    requests: Sequence[str] | None = None,
) -> list[Verdict]:
    """Judge responses by one rule for every model. ``prompts``: what the model saw;
    ``requests``: the original (unattacked) requests, for judges that need them.

    For reasoning outputs (``reasoning`` given) the final answer after the closing tag is judged;
    an output without one (the block never closed, or nothing after it) is judged on its whole
    text, tags removed, like a plain model's output, and flagged ``malformed``.
    """
    if reasoning is None:
        return _call(judge, prompts, responses, requests)
    answers = [final_answer(r, reasoning) for r in responses]
    texts = [a if a is not None else _strip_tags(r or "", reasoning) for a, r in zip(answers, responses)]
    judged = _call(judge, prompts, texts, requests)
    return [replace(v, malformed=a is None) for v, a in zip(judged, answers)]


def verdict_row(v: Verdict) -> dict:
    return {**asdict(v), "nonrefusal": v.nonrefusal}
