"""Backend ``hf`` (transformers): batched, left padding, length-sorted batches, KV cache, one
shared prefill per prompt whose cache is repeated n times, and a decode loop that drops rows
as they finish. Runs on CPU or one GPU."""

from __future__ import annotations

from collections.abc import Sequence

from srg.backends.base import Completion, Request, SamplingParams, cut_at_stop, register_backend


@register_backend("hf")
class HFBackend:
    """transformers backend: length-bucketed batches, left padding, KV cache, shared prefill for n
    samples, and a decode loop that drops rows as they finish."""

    name = "hf"

    def __init__(
        self,
        model_path: str,
        dtype: str = "bfloat16",
        batch_size: int = 32,
        max_prompt_tokens: int = 1024,
        system_prompt: str | None = None,
        threads: int = 0,
        model=None,
        tokenizer=None,
        bucket_ratio: float = 0.6,
    ):
        import torch

        from srg import models

        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = tokenizer or models.load_tokenizer(model_path)
        self.model = model or models.load_model(model_path, dtype)
        self.batch_size = batch_size
        self.max_prompt_tokens = max_prompt_tokens
        self.default_system = system_prompt
        self.bucket_ratio = bucket_ratio  # see length_buckets
        self.truncated = 0

    def _encode(self, requests: Sequence[Request], count: bool = True) -> list[list[int]]:
        """Token ids of each request (``srg.models.encode_chat``); ``count``: add the prompts cut
        to ``self.truncated``."""
        from srg.models import encode_chat, merge_system

        ids = []
        for r in requests:
            system = merge_system(self.default_system, r.system)
            toks, cut = encode_chat(self.tokenizer, r.user, system, self.max_prompt_tokens, r.prefill)
            self.truncated += cut and count
            ids.append(toks)
        return ids

    def generate(self, requests, params, progress=None):
        import torch

        encoded = self._encode(requests)
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        results: list[list[Completion] | None] = [None] * len(encoded)
        for b, idx in enumerate(
            length_buckets([len(encoded[i]) for i in order], max(1, self.batch_size // params.n), self.bucket_ratio)
        ):
            idx = [order[i] for i in idx]
            torch.manual_seed(params.seed * 1_000_003 + b)
            outs = self._generate_batch([encoded[i] for i in idx], params)
            for i, comps in zip(idx, outs):
                results[i] = comps
            if progress:
                progress(len(idx) * params.n)
        return results  # type: ignore[return-value]

    def generate_branches(self, requests, branches, params, progress=None):
        """n completions per (request, branch): ``out[i][b]`` continues request i's prefill
        followed by ``branches[b]``, exactly as ``generate`` on
        ``Request(user, system, prefill + branches[b])`` would see it.

        The prompt (with its prefill) is prefilled once per batch and its KV cache is reused for
        every branch: a branch's tokens are the same for every row, so rows stay aligned and only
        those few tokens are run per branch. A request whose joint tokenization does not split at
        the branch boundary (or is truncated differently once the branch is added) is generated
        through ``generate`` instead, so the prompts the model sees are always exact."""
        import copy

        import torch

        prefixes = self._encode(requests)
        tails: list[list[int] | None] = []
        for b in branches:  # the branch's own tokens, if every request splits at the boundary
            full = self._encode([Request(r.user, r.system, r.prefill + b) for r in requests], count=False)
            tail = full[0][len(prefixes[0]) :]
            same = all(f[: len(p)] == p and f[len(p) :] == tail for f, p in zip(full, prefixes))
            tails.append(tail if same and tail else None)
        results: list[list[list[Completion]]] = [[[] for _ in branches] for _ in requests]
        for bi, tail in enumerate(tails):
            if tail is None:
                full = [Request(r.user, r.system, r.prefill + branches[bi]) for r in requests]
                for i, comps in enumerate(self.generate(full, params)):
                    results[i][bi] = comps
        shared = [bi for bi, tail in enumerate(tails) if tail is not None]
        if not shared:
            return results
        order = sorted(range(len(prefixes)), key=lambda i: -len(prefixes[i]))
        buckets = length_buckets(
            [len(prefixes[i]) for i in order], max(1, self.batch_size // params.n), self.bucket_ratio
        )
        for k, idx in enumerate(buckets):
            idx = [order[i] for i in idx]
            with torch.inference_mode():
                cache, _, mask, next_pos = self._prefill([prefixes[i] for i in idx])
                for bi in shared:
                    torch.manual_seed(params.seed * 1_000_003 + k * 1_009 + bi)
                    branch_cache = copy.deepcopy(cache)
                    tail = torch.tensor(tails[bi], device=self.model.device)
                    steps = tail.numel()
                    branch_mask = torch.cat([mask, mask.new_ones((len(idx), steps))], dim=1)
                    out = self.model(
                        input_ids=tail.expand(len(idx), steps),
                        attention_mask=branch_mask,
                        position_ids=next_pos[:, None] + torch.arange(steps, device=self.model.device),
                        past_key_values=branch_cache,
                        use_cache=True,
                    )
                    outs = self._decode(branch_cache, out.logits[:, -1, :], branch_mask, next_pos + steps, params)
                    for i, comps in zip(idx, outs):
                        results[i][bi] = comps
            if progress:
                progress(len(idx) * params.n * len(shared))
        return results

    def _prefill(self, batch_ids: list[list[int]]):
        """Left-padded forward over the prompts: (KV cache, last logits, attention mask, next position)."""
        from srg.models import left_pad

        input_ids, mask = left_pad(batch_ids, self.tokenizer.pad_token_id, self.model.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=pos, use_cache=True)
        return out.past_key_values, out.logits[:, -1, :], mask, pos[:, -1] + 1

    def _generate_batch(self, batch_ids: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        """Prefill once, repeat the cache n times, then decode (``_decode``)."""
        import torch

        with torch.inference_mode():
            cache, logits, mask, next_pos = self._prefill(batch_ids)
            return self._decode(cache, logits, mask, next_pos, params)

    def _decode(self, cache, logits, mask, next_pos, params: SamplingParams) -> list[list[Completion]]:
        """Repeat each prompt's cache n times, then decode only rows that have not hit EOS.

        Finished rows leave the batch (their KV cache rows are dropped), so no step is spent on
        padding after EOS; for n > 1 each prompt is prefilled once. A row also finishes when its
        text contains one of ``params.stop`` (checked on the decoded tail of the row).
        """
        import torch

        tok, model = self.tokenizer, self.model
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        n_prompts = logits.shape[0]
        n = params.n
        stop = params.stop
        tail = 4 + max((len(x) for x in stop), default=0)  # tokens whose text can hold a stop string
        if n > 1:
            cache.batch_repeat_interleave(n)
            logits, mask, next_pos = (x.repeat_interleave(n, 0) for x in (logits, mask, next_pos))
        rows = logits.shape[0]
        active = torch.arange(rows, device=model.device)
        generated: list[list[int]] = [[] for _ in range(rows)]
        finished = [False] * rows
        for step in range(params.max_new_tokens):
            picked = pick_tokens(logits, params)
            keep = []
            for j, (r, t) in enumerate(zip(active.tolist(), picked.tolist())):
                if t in eos_ids:
                    finished[r] = True
                    continue
                generated[r].append(t)
                if stop and any(x in tok.decode(generated[r][-tail:]) for x in stop):
                    finished[r] = True
                else:
                    keep.append(j)
            if not keep or step == params.max_new_tokens - 1:
                break
            if len(keep) < len(active):
                sel = torch.tensor(keep, device=model.device)
                cache.batch_select_indices(sel)
                active, mask, next_pos, picked = active[sel], mask[sel], next_pos[sel], picked[sel]
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            out = model(
                input_ids=picked[:, None],
                attention_mask=mask,
                position_ids=next_pos[:, None],
                past_key_values=cache,
                use_cache=True,
            )
            logits, next_pos = out.logits[:, -1, :], next_pos + 1
        comps = []
        for g, f in zip(generated, finished):
            text, hit = cut_at_stop(tok.decode(g, skip_special_tokens=True), stop)
            comps.append(Completion(text.strip(), len(g), f, hit))
        return [comps[i * n : (i + 1) * n] for i in range(n_prompts)]


def length_buckets(lengths: Sequence[int], max_rows: int, ratio: float = 0.0) -> list[list[int]]:
    """Split positions of a length-sorted (descending) list into batches of at most ``max_rows``.

    A new batch also starts when a prompt is shorter than ``ratio`` x the batch's longest, so
    left padding stays below 1 - ratio of each row (``ratio`` 0 = fixed-size batches).
    """
    batches: list[list[int]] = []
    for i, n in enumerate(lengths):
        if not batches or len(batches[-1]) >= max_rows or n < ratio * lengths[batches[-1][0]]:
            batches.append([])
        batches[-1].append(i)
    return batches


NUCLEUS_PREFILTER = 256  # top-k candidates the nucleus is looked for in (exact; full sort if wider)


def _full_sort_nucleus(scores, top_p: float):
    """Nucleus probabilities by sorting the whole vocabulary (the reference; the wide-nucleus path)."""
    import torch

    sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
    probs = sorted_scores.softmax(-1)
    outside = probs.cumsum(-1) - probs >= top_p  # tokens after the nucleus is full
    sorted_scores = sorted_scores.masked_fill(outside, float("-inf"))
    return torch.full_like(scores, float("-inf")).scatter(-1, order, sorted_scores).softmax(-1)


def _topk_nucleus(scores, top_p: float, prefilter: int):
    """The nucleus inside the top ``prefilter`` tokens: (token ids, renormalised probs, whether
    the nucleus of each row ends inside them). Probabilities use the full softmax normaliser, so
    a covered row's kept set and probabilities are those of the full sort."""
    import torch

    k = min(prefilter, scores.shape[-1])
    vals, idx = torch.topk(scores, k, dim=-1)  # sorted, descending
    probs = (vals - torch.logsumexp(scores, -1, keepdim=True)).exp()
    keep = probs.cumsum(-1) - probs < top_p
    covered = probs.sum(-1) >= top_p
    kept = probs * keep
    return idx, kept / kept.sum(-1, keepdim=True), covered


def nucleus_probs(scores, top_p: float, prefilter: int = NUCLEUS_PREFILTER):
    """Dense nucleus (top-p) probabilities of ``scores`` (rows x vocab): top-k prefilter, the full
    sort only for rows whose nucleus is wider than ``prefilter`` tokens."""
    import torch

    idx, p, covered = _topk_nucleus(scores, top_p, prefilter)
    out = torch.zeros_like(scores).scatter(-1, idx, p)
    if not bool(covered.all()):
        rows = (~covered).nonzero()[:, 0]
        out[rows] = _full_sort_nucleus(scores[rows], top_p)
    return out


def pick_tokens(logits, params: SamplingParams):
    """Next token per row: argmax (greedy), else temperature, top-k and top-p (nucleus) sampling."""
    import torch

    if params.greedy:
        return logits.argmax(-1)
    scores = logits.float() / params.temperature
    if params.top_k and params.top_k < scores.shape[-1]:
        kth = torch.topk(scores, params.top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if params.top_p < 1.0:
        idx, p, covered = _topk_nucleus(scores, params.top_p, NUCLEUS_PREFILTER)
        if bool(covered.all()):  # the common case: sample among the prefiltered tokens
            return idx.gather(-1, torch.multinomial(p, 1))[:, 0]
        return torch.multinomial(nucleus_probs(scores, params.top_p), 1)[:, 0]
    return torch.multinomial(scores.softmax(-1), 1)[:, 0]
