"""Backend ``vllm``: offline batched generation with :class:`vllm.LLM` (GPU; ``pip install -e ".[gpu]"``).

Prompts are rendered with the model's own chat template (system + user, generation prompt)
and passed as token ids (through ``models.encode_chat``, like ``hf``: an assistant prefill is
appended, long prompts are cut in the middle of the user text). Stop strings are vLLM's own. n samples per prompt come from ``SamplingParams(n=...)``
with a per-request seed; greedy is temperature 0. A LoRA adapter directory (``lora_path``) is
served with ``enable_lora`` + ``LoRARequest``. The same backend serves a local teacher model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

try:
    import vllm
except ImportError as exc:  # make_backend turns this into "backend 'vllm' is not available"
    raise ImportError(
        "the 'vllm' generation backend needs the vllm package (GPU only): pip install -e \".[gpu]\""
    ) from exc

from srg.backends.base import Completion, Request, SamplingParams, cut_at_stop, register_backend
from srg.models import encode_chat, merge_system


def vllm_sampling(params: SamplingParams, seed: int):
    """Our SamplingParams -> ``vllm.SamplingParams`` (top_k=0 is left at vLLM's default: off)."""
    kw: dict = {"n": params.n, "max_tokens": params.max_new_tokens, "seed": seed}
    if params.stop:  # vLLM leaves the stop string out of the text (include_stop_str_in_output=False)
        kw["stop"] = list(params.stop)
    if params.greedy:
        kw.update(temperature=0.0)
    else:
        kw.update(temperature=params.temperature, top_p=params.top_p)
        if params.top_k > 0:
            kw["top_k"] = params.top_k
    return vllm.SamplingParams(**kw)


@register_backend("vllm")
class VLLMBackend:
    """Offline vLLM engine over a model directory or HF id (optionally + one LoRA adapter)."""

    name = "vllm"

    def __init__(
        self,
        model_path: str,
        dtype: str = "bfloat16",
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        max_prompt_tokens: int = 4096,
        lora_path: str | None = None,
        max_lora_rank: int = 64,
        seed: int = 0,
        system_prompt: str | None = None,
        enforce_eager: bool = False,
        batch_size: int | None = None,
        threads: int | None = None,
        llm=None,
    ):
        """``batch_size`` and ``threads`` (hf options the DAG passes to every backend) are ignored:
        vLLM schedules its own batches."""
        kw: dict = {
            "model": model_path,
            "dtype": dtype,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "seed": seed,
            "enforce_eager": enforce_eager,
        }
        if max_model_len:
            kw["max_model_len"] = max_model_len
        if lora_path:
            kw.update(enable_lora=True, max_lora_rank=max_lora_rank)
        self.llm = llm if llm is not None else vllm.LLM(**kw)
        self.tokenizer = self.llm.get_tokenizer()
        self.lora = None
        if lora_path:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, str(lora_path))
        self.max_prompt_tokens = max_prompt_tokens
        self.default_system = system_prompt
        self.truncated = 0

    def _encode(self, requests: Sequence[Request]) -> list[dict]:
        out = []
        for r in requests:
            system = merge_system(self.default_system, r.system)
            ids, cut = encode_chat(self.tokenizer, r.user, system, self.max_prompt_tokens, r.prefill)
            self.truncated += cut
            out.append({"prompt_token_ids": ids})
        return out

    def generate(
        self, requests: Sequence[Request], params: SamplingParams, progress: Callable[[int], None] | None = None
    ) -> list[list[Completion]]:
        prompts = self._encode(requests)
        sampling = [vllm_sampling(params, params.seed * 1_000_003 + i) for i in range(len(prompts))]
        kw = {"lora_request": self.lora} if self.lora else {}
        outs = self.llm.generate(prompts, sampling, use_tqdm=False, **kw)
        results = []
        for o in outs:  # vLLM returns outputs in input order
            results.append([_completion(c, params.stop) for c in o.outputs])
        if progress:
            progress(len(prompts) * params.n)
        return results


def _completion(c, stop: tuple[str, ...]) -> Completion:
    """A vLLM ``CompletionOutput`` as a Completion; ``stop_reason`` is the stop string it ended on
    (None for EOS or the length limit)."""
    text, cut = cut_at_stop(c.text, stop)
    hit = cut or isinstance(getattr(c, "stop_reason", None), str)
    return Completion(text.strip(), len(c.token_ids), c.finish_reason == "stop", hit)
