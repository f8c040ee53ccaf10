"""The generation-backend interface: requests, sampling parameters, completions, and a lazy
registry of backends by name (``hf`` always; ``vllm`` and ``openai`` imported on first use)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SamplingParams:
    """How to decode. ``greedy`` ignores temperature/top_p; top_k=0 means no top-k cut. ``stop``:
    strings that end a completion (the stop string itself is not part of the returned text)."""

    n: int = 1
    greedy: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 64
    seed: int = 0
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.n < 1 or self.max_new_tokens < 1:
            raise ValueError(f"n and max_new_tokens must be >= 1, got {self.n}, {self.max_new_tokens}")
        if self.greedy and self.n != 1:
            raise ValueError("greedy decoding with n > 1 would repeat the same answer; use n=1")
        if isinstance(self.stop, str) or any(not isinstance(x, str) or not x for x in self.stop):
            raise ValueError(f"stop must be a sequence of non-empty strings, got {self.stop!r}")
        object.__setattr__(self, "stop", tuple(self.stop))


@dataclass
class Completion:
    text: str
    n_tokens: int
    finished: bool  # stopped on EOS or a stop string rather than the token limit
    hit_stop: bool | None = None  # ended on one of ``params.stop`` (None: the backend cannot tell EOS apart)


@dataclass(frozen=True)
class Request:
    """One prompt: the user turn, an optional system message, and an optional assistant
    ``prefill`` that the model continues (the returned text is the continuation only)."""

    user: str
    system: str | None = None
    prefill: str = ""


class Backend(Protocol):
    name: str

    def generate(
        self, requests: Sequence[Request], params: SamplingParams, progress: Callable[[int], None] | None = None
    ) -> list[list[Completion]]:
        """n completions for each request, in request order."""


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first occurrence of any stop string, and whether one occurred."""
    hits = [i for i in (text.find(s) for s in stop) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


BACKENDS: dict[str, Callable[..., Backend]] = {}


def register_backend(name: str):
    def deco(factory):
        BACKENDS[name] = factory
        return factory

    return deco


def make_backend(name: str, **kwargs) -> Backend:
    if name not in BACKENDS and name in ("vllm", "openai"):
        try:  # these register themselves on import (gpu / api extras)
            __import__(f"srg.backends.{name}")
        except ImportError as exc:
            raise ValueError(
                f"generation backend {name!r} is not available here ({exc}); available: {sorted(BACKENDS)}"
            ) from exc
    if name not in BACKENDS:
        raise ValueError(f"unknown generation backend {name!r}; available: {sorted(BACKENDS)}")
    return BACKENDS[name](**kwargs)
