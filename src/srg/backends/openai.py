"""Backend ``openai``: any OpenAI-compatible chat-completions server, through the ``openai``
package's client (``pip install -e ".[api]"``; base_url, timeout and retries are the client's).

The API key is read only from the environment variable *named* in the config (``api_key_env``);
the key itself never appears in reprs, exceptions, logs or returned data (error bodies are
redacted too, in case a server echoes the request). The client retries connection errors, 408,
409, 429 and 5xx with exponential backoff (``Retry-After`` honoured); then the call fails with
an :class:`APIError` naming the endpoint, the status and the number of attempts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from srg.backends.base import Completion, Request, SamplingParams, cut_at_stop, register_backend
from srg.models import merge_system, messages_for

RETRY_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))  # what the client retries


class APIError(RuntimeError):
    """A request to an OpenAI-compatible endpoint failed (message names endpoint and status only)."""


class ChatClient:
    """Chat completions over ``openai.OpenAI``, with key hygiene and errors that name the endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 120.0,
        max_retries: int = 5,
    ):
        if not base_url:
            raise ValueError("an OpenAI-compatible endpoint needs base_url (e.g. http://localhost:8000/v1)")
        if not model:
            raise ValueError("an OpenAI-compatible endpoint needs a model name (api_model)")
        try:
            import openai
        except ImportError as exc:
            raise ImportError(
                'the openai backend and llm judge need the openai package: pip install -e ".[api]"'
            ) from exc
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.max_retries = max_retries
        self.__key: str | None = None
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ValueError(
                    f"environment variable {api_key_env} is not set (it must hold the API key for "
                    f"{self.url}); set it, or set api_key_env: null for a server without a key"
                )
            self.__key = key
        # a server without a key gets no Authorization header at all (omitted per request)
        self._headers = {} if self.__key else {"Authorization": openai.Omit()}
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=base_url.rstrip("/"),
            api_key=self.__key or "no-key",
            timeout=timeout,
            max_retries=max_retries,
        )

    def __repr__(self) -> str:
        return f"ChatClient(url={self.url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    def _redact(self, text: str) -> str:
        return text.replace(self.__key, "[REDACTED]") if self.__key else text

    def _error(self, exc: Exception) -> APIError:
        attempts = self.max_retries + 1
        if isinstance(exc, self._openai.APIStatusError):
            code = exc.status_code
            detail = self._redact((exc.response.text or "")[:300])
            if code in RETRY_STATUS:
                return APIError(f"POST {self.url} failed after {attempts} attempts; last error: HTTP {code}: {detail}")
            return APIError(f"POST {self.url} failed with HTTP {code}: {detail}")
        return APIError(f"POST {self.url} failed after {attempts} attempts; last error: {type(exc).__name__}")

    def chat(
        self,
        messages: list[dict],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_tokens: int = 256,
        seed: int | None = None,
        top_k: int = 0,
        stop: list[str] | None = None,
        continue_final: bool = False,
    ) -> list[dict]:
        """The ``choices`` of one chat completion as dicts (``message.content``, ``finish_reason``),
        with the response's ``usage`` copied into every choice as ``_usage``. ``continue_final``:
        the last message is an assistant prefill to continue (vLLM / SGLang servers:
        ``continue_final_message``, no new generation prompt)."""
        kw: dict = {
            "model": self.model,
            "messages": messages,
            "n": n,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "extra_headers": self._headers,
        }
        if seed is not None:
            kw["seed"] = seed
        if stop:
            kw["stop"] = list(stop)
        extra: dict = {}
        if top_k > 0:  # not in the OpenAI API; vLLM and most local servers accept it
            extra["top_k"] = top_k
        if continue_final:
            extra.update(continue_final_message=True, add_generation_prompt=False)
        if extra:
            kw["extra_body"] = extra
        try:
            out = self._client.chat.completions.create(**kw).model_dump()
        except self._openai.APIError as exc:
            raise self._error(exc) from None
        choices = out.get("choices")
        if not isinstance(choices, list) or not choices:
            raise APIError(f"POST {self.url}: response has no choices")
        for c in choices:
            c["_usage"] = out.get("usage") or {}
        return choices


def _completion(choice: dict, n_choices: int, stop: tuple[str, ...] = (), prefill: str = "") -> Completion:
    msg = choice.get("message") or {}
    text = msg.get("content") or ""
    if prefill and text.startswith(prefill):  # some servers echo the prefilled assistant text
        text = text[len(prefill) :]
    text, cut = cut_at_stop(text, stop)  # a server that ignores `stop` still gets cut
    text = text.strip()
    used = (choice.get("_usage") or {}).get("completion_tokens")
    # usage counts all choices of a response; split evenly when n > 1 (approximate per sample)
    n_tokens = int(round(used / n_choices)) if isinstance(used, int | float) else len(text.split())
    finished = choice.get("finish_reason") == "stop"
    # the API's "stop" covers EOS and stop strings alike: unknown (None) unless the text was cut here
    hit = True if cut else (None if finished and stop else False)
    return Completion(text, n_tokens, finished, hit)


@register_backend("openai")
class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server; n samples per request via ``n``.

    When the server returns fewer than n choices, the rest are requested again (seed + k).
    ``model_path`` names the served model when ``api_model`` is not given. The hf-only options
    the DAG passes to every backend (``dtype``, ``batch_size``, ``threads``, ``max_prompt_tokens``)
    are accepted and ignored.
    """

    name = "openai"

    def __init__(
        self,
        model_path: str | None = None,
        base_url: str | None = None,
        api_model: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        request_timeout: float = 120.0,
        max_retries: int = 5,
        concurrency: int = 8,
        use_n: bool = True,
        system_prompt: str | None = None,
        dtype: str | None = None,
        batch_size: int | None = None,
        threads: int | None = None,
        max_prompt_tokens: int | None = None,
        client: ChatClient | None = None,
    ):
        self.client = client or ChatClient(
            base_url or "",
            api_model or model_path or "",
            api_key_env,
            timeout=request_timeout,
            max_retries=max_retries,
        )
        self.concurrency = max(1, concurrency)
        self.use_n = use_n
        self.default_system = system_prompt

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.client!r})"

    def _one(self, req: Request, params: SamplingParams, seed: int) -> list[Completion]:
        msgs = messages_for(req.user, merge_system(self.default_system, req.system))
        if req.prefill:
            msgs.append({"role": "assistant", "content": req.prefill})
        temp, top_p = (0.0, 1.0) if params.greedy else (params.temperature, params.top_p)
        out: list[Completion] = []
        k = 0
        while len(out) < params.n:
            want = params.n - len(out) if self.use_n else 1
            choices = self.client.chat(
                msgs,
                n=want,
                temperature=temp,
                top_p=top_p,
                max_tokens=params.max_new_tokens,
                seed=seed + k,
                top_k=0 if params.greedy else params.top_k,
                stop=list(params.stop) or None,
                continue_final=bool(req.prefill),
            )
            out += [_completion(c, len(choices), params.stop, req.prefill) for c in choices[:want]]
            k += 1
        return out

    def generate(
        self, requests: Sequence[Request], params: SamplingParams, progress: Callable[[int], None] | None = None
    ) -> list[list[Completion]]:
        seeds = [params.seed * 1_000_003 + i * 10_007 for i in range(len(requests))]
        pool = ThreadPoolExecutor(self.concurrency)
        try:
            futures = [pool.submit(self._one, r, params, s) for r, s in zip(requests, seeds)]
            results = []
            for f in futures:
                results.append(f.result())
                if progress:
                    progress(params.n)
        finally:  # on an error, drop the requests not yet sent
            pool.shutdown(wait=True, cancel_futures=True)
        return results
