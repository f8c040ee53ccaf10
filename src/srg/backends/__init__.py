"""Generation backends behind one interface (``srg.backends.base``): ``hf`` (transformers,
CPU/GPU), ``vllm`` (GPU, ``.[gpu]`` extra) and ``openai`` (any OpenAI-compatible server), the
latter two registered on first use by ``make_backend``."""

from srg.backends import hf  # noqa: F401  (registers "hf")
from srg.backends.base import BACKENDS, Backend, Completion, Request, SamplingParams, make_backend, register_backend

__all__ = ["BACKENDS", "Backend", "Completion", "Request", "SamplingParams", "make_backend", "register_backend"]
