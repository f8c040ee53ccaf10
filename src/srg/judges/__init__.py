"""Judges behind one interface (``srg.judges.base``): ``keyword`` (embedded default, always
registered), ``llamaguard`` and ``llm`` (paper scale; registered on first use by ``make_judge``),
and agreement statistics between two judges (``srg.judges.agreement``)."""

from srg.judges.base import (
    JUDGES,
    Judge,
    Verdict,
    judge_responses,
    make_judge,
    register_judge,
    verdict_row,
)
from srg.judges.keyword import KeywordJudge, calibrate_keyword  # noqa: F401  (registers "keyword")

__all__ = [
    "JUDGES",
    "Judge",
    "KeywordJudge",
    "Verdict",
    "calibrate_keyword",
    "judge_responses",
    "make_judge",
    "register_judge",
    "verdict_row",
]
