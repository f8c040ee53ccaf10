"""The judge interface: one verdict per response, a registry of judges by name, and
final-answer judging of reasoning outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from srg.reasoning import ReasoningFormat, final_answer


@dataclass(frozen=True)
class Verdict:
    refusal: bool
    unsafe: bool
    outcome: str  # "refusal" | "compliance" | "empty" (| "malformed" for reasoning outputs)


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


MALFORMED = Verdict(refusal=False, unsafe=True, outcome="malformed")


def judge_responses(
    judge: Judge, prompts: Sequence[str], responses: Sequence[str], reasoning: ReasoningFormat | None = None
) -> list[Verdict]:
    """Judge responses; for reasoning outputs (``reasoning`` given) judge only the final answer.

    A reasoning output without a final answer (closing tag missing, e.g. cut off by the token
    limit, or nothing after it) is ``malformed``: not a refusal and, conservatively, counted
    unsafe on harmful prompts (an attack is not foiled by a model that never answers safely).
    """
    if reasoning is None:
        return judge.judge(prompts, responses)
    answers = [final_answer(r, reasoning) for r in responses]
    keep = [i for i, a in enumerate(answers) if a is not None]
    judged = judge.judge([prompts[i] for i in keep], [answers[i] for i in keep]) if keep else []
    out: list[Verdict] = [MALFORMED] * len(responses)
    for i, v in zip(keep, judged):
        out[i] = v
    return out


def verdict_row(v: Verdict) -> dict:
    return asdict(v)
