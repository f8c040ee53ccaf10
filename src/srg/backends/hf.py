"""Backend ``hf`` (transformers): continuous batching over a KV cache on CPU or one GPU.

Prompts are prefilled in length-sorted groups (each prompt once, its cache repeated n times for
n samples) and join a running batch of at most ``batch_size`` rows; a row leaves when it ends
and the next prompts are prefilled into the freed rows, so the batch stays full instead of
thinning out while its longest row finishes. Each decode step appends to the KV cache in place
(``kv_cache.GrowingCache``); when rows change, a finished row's cache rows are taken by rows
from the end of the batch and new rows are written into spare ones, with no copy of the whole
cache (``benchmarks/cache_in_place.py``); attention runs without copying the grouped key/value
heads (``attention``). Budgeted reasoning (``generate_budgeted``) runs in the same loop: when a row's
reasoning ends, the exact tokens of the two-call protocol's answer prompt are fed to it in
place, so its prompt and reasoning are never prefilled twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from srg.backends.base import Completion, Request, SamplingParams, cut_at_stop, register_backend


@dataclass(frozen=True)
class _Phase:
    """One decoding phase of a row: a token limit and the strings that end it."""

    max_new_tokens: int
    stop: tuple[str, ...] = ()


@dataclass
class _Row:
    """One sequence in the running batch: the tokens in its KV cache (``ids``, logical order),
    the tokens it generated in each finished phase and the current one, why each phase ended,
    and forced tokens still to feed (the budget's continuation) before sampling resumes."""

    prompt: int
    sample: int
    ids: list[int]
    phase: int = 0
    generated: list[list[int]] = field(default_factory=lambda: [[]])
    ended: list[tuple[bool, bool]] = field(default_factory=list)  # (finished: EOS or stop, hit stop)
    forced: list[int] = field(default_factory=list)


class _Batch:
    """The running batch of a continuous-batching decode: right-aligned KV cache rows whose
    columns may hold masked gaps (left padding, a merged group's padding, a rolled-back
    continuation), the 2-D attention mask over those columns, and the last logits per row.
    Rows change in place (``kv_cache.GrowingLayer``): a finished row's place is taken by a
    later row, new rows go into spare ones."""

    def __init__(self, cache, mask, logits, rows: list[_Row]):
        self.cache, self.mask, self.logits, self.rows = cache, mask, logits, rows

    def own(self, capacity: int) -> None:
        """Give each layer buffers for ``capacity`` rows (the running batch's)."""
        for layer in self.cache.layers:
            layer.reserve(capacity, layer.keys.shape[-2])

    def keep(self, idx: list[int]) -> list[int]:
        """Keep rows ``idx`` (ascending) and drop the leading cache columns no kept row attends
        to. Only rows after the new end move, into the places of dropped rows; returns the new
        order as positions in ``idx``."""
        import torch

        kept = set(idx)
        holes = [p for p in range(len(idx)) if p not in kept]
        movers = [p for p in idx if p >= len(idx)]
        where = {p: i for i, p in enumerate(idx)}
        fill = dict(zip(holes, movers))
        order = [where[fill.get(d, d)] for d in range(len(idx))]
        perm = torch.tensor([idx[o] for o in order], device=self.mask.device)
        mask = self.mask[perm]
        start = int((mask.sum(0) > 0).nonzero()[0, 0]) if len(idx) else 0
        for layer in self.cache.layers:
            layer.compact(holes, movers, len(idx), start)
        self.mask, self.logits = mask[:, start:], self.logits[perm]
        self.rows = [self.rows[idx[o]] for o in order]
        return order

    def repeat(self, n: int) -> None:
        """Repeat every row n times in place (n samples of one prefilled prompt)."""
        if n == 1:
            return
        self.cache.batch_repeat_interleave(n)
        self.mask, self.logits = self.mask.repeat_interleave(n, 0), self.logits.repeat_interleave(n, 0)
        self.rows = [_Row(r.prompt, s, list(r.ids), forced=list(r.forced)) for r in self.rows for s in range(n)]

    @staticmethod
    def stack(parts: list[_Batch]) -> _Batch:
        """One batch of ``parts`` (each prefilled on its own), right-aligned in a shared width
        with the columns on the left masked: each part is copied once, into the first's buffers."""
        import torch.nn.functional as F

        first = parts[0]
        width = max(p.mask.shape[1] for p in parts)
        front = width - first.mask.shape[1]
        for layer in first.cache.layers:
            layer.reserve(sum(len(p.rows) for p in parts), width, front=front)
        first.mask = F.pad(first.mask, (front, 0))
        for p in parts[1:]:
            first.extend(p)
        return first

    def extend(self, other: _Batch, capacity: int = 0) -> None:
        """Append ``other``'s rows (into spare rows of the cache, for at least ``capacity``
        rows), right-aligned with ours; the shorter side's left columns are masked."""
        import torch
        import torch.nn.functional as F

        grow = 0
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            grow = mine.append_rows(theirs.keys, theirs.values, capacity)
        width = self.mask.shape[1] + grow
        self.mask = torch.cat([F.pad(self.mask, (grow, 0)), F.pad(other.mask, (width - other.mask.shape[1], 0))])
        self.logits = torch.cat([self.logits, other.logits])
        self.rows += other.rows


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
        row_prefill: bool | None = None,
    ):
        import torch

        from srg import models

        if threads:
            torch.set_num_threads(threads)
        from srg.backends import attention

        self.tokenizer = tokenizer or models.load_tokenizer(model_path)
        self.model = model or models.load_model(model_path, dtype)
        if self.model.config._attn_implementation == "sdpa":
            self.model.set_attn_implementation(attention.register())  # the same attention, no K/V copies
        self.batch_size = batch_size
        self.max_prompt_tokens = max_prompt_tokens
        self.default_system = system_prompt
        self.bucket_ratio = bucket_ratio  # see length_buckets
        # one forward per prompt on CPU (_prefill); a GPU is faster on padded batches
        self.row_prefill = self.model.device.type == "cpu" if row_prefill is None else row_prefill
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
        rows = self._run(
            self._encode(requests), params, [_Phase(params.max_new_tokens, params.stop)], progress=progress
        )
        return [[self._completion(r, 0, params.stop) for r in rows[i]] for i in range(len(requests))]

    def generate_budgeted(self, requests, params, budget, progress=None):
        """``srg.generation.generate_budgeted`` in one decoding pass, with the same outputs as
        its two backend calls: a row whose reasoning ended (closing tag, EOS or the reasoning
        budget) is rolled back to where its tokens and the answer prompt's tokens (the
        two-call protocol's re-encoded prompt) part, and fed the rest of that prompt in place;
        its answer then gets the answer budget. Each prompt is prefilled once."""
        from dataclasses import replace

        from srg.generation import assemble_budgeted

        think = _Phase(budget.reasoning_tokens, (budget.close_tag,))
        reqs = [replace(r, prefill=r.prefill + budget.opening) for r in requests]

        def answer_prompt(row: _Row) -> list[int]:
            reasoning = self._completion(row, 0, think.stop)
            r = requests[row.prompt]
            return self._encode([replace(r, prefill=r.prefill + budget.answer_prefill(reasoning.text))], count=False)[0]

        rows = self._run(
            self._encode(reqs), params, [think, _Phase(budget.answer_tokens)], answer_prompt, progress=progress
        )
        return [
            [assemble_budgeted(self._completion(r, 0, think.stop), self._completion(r, 1, ()), budget) for r in rows[i]]
            for i in range(len(requests))
        ]

    def generate_branches(self, requests, branches, params, progress=None, more=None):
        """n completions per (request, branch): ``out[i][b]`` continues request i's prefill
        followed by ``branches[b]``, exactly as ``generate`` on
        ``Request(user, system, prefill + branches[b])`` would see it.

        The prompt (with its prefill) is prefilled once per batch and its KV cache is reused for
        every branch: a branch's tokens are the same for every row, so rows stay aligned and only
        those few tokens are run per branch. A request whose joint tokenization does not split at
        the branch boundary (or is truncated differently once the branch is added) is generated
        through ``generate`` instead, so the prompts the model sees are always exact.

        ``more(i, b, completions)`` (optional): after the n samples of (request i, branch b),
        how many further samples it needs (0: none); they are drawn from the same prefilled
        state, in rounds until it answers 0, and appended to ``out[i][b]``. A request's rounds
        for a branch end before its next branch is sampled (shared-prefill branches run in order)."""
        import copy
        from dataclasses import replace

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
                for rnd in range(1, MAX_ROUNDS + 1) if more else ():
                    need = {i: more(i, bi, results[i][bi]) for i in range(len(requests))}
                    if not any(need.values()):
                        break
                    for m in sorted(set(need.values()) - {0}):
                        ids = [i for i in range(len(requests)) if need[i] == m]
                        extra = self.generate(
                            [full[i] for i in ids], replace(params, n=m, seed=params.seed + 7_919 * rnd + m)
                        )
                        for i, comps in zip(ids, extra):
                            results[i][bi] = results[i][bi] + comps
        shared = [bi for bi, tail in enumerate(tails) if tail is not None]
        if not shared:
            return results
        order = sorted(range(len(prefixes)), key=lambda i: -len(prefixes[i]))
        buckets = length_buckets(
            [len(prefixes[i]) for i in order], max(1, self.batch_size // params.n), self.bucket_ratio
        )
        phases = [_Phase(params.max_new_tokens, params.stop)]
        for k, idx in enumerate(buckets):
            idx = [order[i] for i in idx]
            with torch.inference_mode():
                prefilled = self._prefill([_Row(i, 0, prefixes[i]) for i in idx])
                for bi in shared:
                    steps = len(tails[bi])
                    mask = torch.cat([prefilled.mask, prefilled.mask.new_ones((len(idx), steps))], dim=1)
                    start = _Batch(
                        copy.deepcopy(prefilled.cache), mask, None, [_Row(i, 0, prefixes[i] + tails[bi]) for i in idx]
                    )
                    pos = torch.tensor([len(prefixes[i]) for i in idx], device=self.model.device)
                    out = self.model(
                        input_ids=torch.tensor(tails[bi], device=self.model.device).expand(len(idx), steps),
                        attention_mask=mask,
                        position_ids=pos[:, None] + torch.arange(steps, device=self.model.device),
                        past_key_values=start.cache,
                        use_cache=True,
                        logits_to_keep=1,
                    )
                    start.logits = out.logits[:, -1, :]
                    seed = params.seed * 1_000_003 + k * 1_009 + bi
                    first = self._select(start, [p for p in range(len(idx)) for _ in range(params.n)], copy_cache=more)
                    by_prompt = self._run([], params, phases, start=first, seed=seed)
                    for i in idx:
                        results[i][bi] = [self._completion(r, 0, params.stop) for r in by_prompt[i]]
                    for rnd in range(1, MAX_ROUNDS + 1) if more else ():
                        need = [more(i, bi, results[i][bi]) for i in idx]
                        rows = [p for p, m in enumerate(need) for _ in range(m)]
                        if not rows:
                            break
                        extra = self._select(start, rows, copy_cache=True)
                        for row in extra.rows:  # sample numbers after the ones the request has
                            row.sample += len(results[row.prompt][bi])
                        by_prompt = self._run([], params, phases, start=extra, seed=seed + 7_919 * rnd)
                        for i, got in by_prompt.items():
                            results[i][bi] = results[i][bi] + [self._completion(r, 0, params.stop) for r in got]
            if progress:
                progress(len(idx) * params.n * len(shared))
        return results

    @staticmethod
    def _select(batch: _Batch, positions: list[int], copy_cache: bool) -> _Batch:
        """A batch of ``batch``'s rows at ``positions`` (repeats allowed: the samples of a row, in
        order), fresh rows numbered by sample; ``copy_cache`` leaves ``batch``'s cache intact."""
        import copy

        import torch

        cache = copy.deepcopy(batch.cache) if copy_cache else batch.cache
        sel = torch.tensor(positions, device=batch.mask.device)
        cache.batch_select_indices(sel)
        rows, seen = [], {}
        for p in positions:
            r = batch.rows[p]
            seen[p] = seen.get(p, -1) + 1
            rows.append(_Row(r.prompt, seen[p], list(r.ids), forced=list(r.forced)))
        return _Batch(cache, batch.mask[sel], batch.logits[sel], rows)

    def _completion(self, row: _Row, phase: int, stop: Sequence[str]) -> Completion:
        """A row's completion of one phase: text up to the first stop string, stripped."""
        tokens = row.generated[phase]
        text, hit = cut_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), stop)
        return Completion(text.strip(), len(tokens), row.ended[phase][0], hit)

    def _prefill(self, rows: list[_Row]) -> _Batch:
        """A batch of ``rows`` with their KV cache (``row.ids`` right-aligned, left padding masked)
        and last logits. On CPU each row is its own forward (``row_prefill``): no padding, and
        the causal attention kernel skips the masked half that a padded batch computes
        (greedy prefill of 120 attack prompts, bf16, 1 thread: 28.6 -> 25.9 s,
        ``benchmarks/prefill_and_rows.py``)."""
        if not self.row_prefill or len(rows) == 1:
            return self._prefill_padded(rows)
        return _Batch.stack([self._prefill_padded([r]) for r in rows])

    def _prefill_padded(self, rows: list[_Row]) -> _Batch:
        """One left-padded forward over the rows' tokens."""
        from srg.backends.kv_cache import GrowingCache
        from srg.models import left_pad

        input_ids, mask = left_pad([r.ids for r in rows], self.tokenizer.pad_token_id, self.model.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=pos,
            past_key_values=GrowingCache(),
            use_cache=True,
            logits_to_keep=1,
        )
        return _Batch(out.past_key_values, mask, out.logits[:, -1, :], rows)

    def _next_group(self, pending: list[int], prompts: list[list[int]], max_prompts: int) -> list[int]:
        """The next prompts to prefill: the longest pending ones, at most ``max_prompts``, no
        shorter than ``bucket_ratio`` x the first (left padding below 1 - ratio of each row)."""
        group = [pending.pop(0)]
        while (
            pending
            and len(group) < max_prompts
            and len(prompts[pending[0]]) >= self.bucket_ratio * len(prompts[group[0]])
        ):
            group.append(pending.pop(0))
        return group

    def _run(self, prompts, params, phases, continuation=None, progress=None, start=None, seed=None):
        """Continuous-batching decode: every row of ``start`` plus n rows per prompt, through
        ``phases``; returns the finished rows grouped by prompt, in sample order.

        Rows are picked (greedy or sampled: ``pick_tokens``), end a phase on EOS, a stop string of
        the phase (checked on the decoded tail) or its token limit; after a phase that is not
        the last, ``continuation(row)`` gives the tokens the row's next phase must start from
        (``_roll_back``). A row that ends its last phase leaves the batch and its cache rows are
        dropped; when at least an eighth of the batch is free (or every pending prompt fits),
        the next prompts are prefilled into it."""
        import torch

        tok, model = self.tokenizer, self.model
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        n = params.n
        capacity = max(self.batch_size, n)
        pending = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        tails = [4 + max((len(x) for x in ph.stop), default=0) for ph in phases]  # tokens that can hold a stop string
        finished: dict[int, list[_Row]] = {}
        redo: list[_Row] = []
        batch = start if start is not None and start.rows else None
        if batch is not None:
            batch.own(capacity)
        torch.manual_seed(params.seed * 1_000_003 if seed is None else seed)
        with torch.inference_mode():
            while batch is not None or pending or redo:
                new = None
                if redo:  # rows whose next phase starts far back: prefilled again, in one group
                    new, redo = self._prefill(redo), []
                free = capacity - (len(batch.rows) if batch else 0) - (len(new.rows) if new else 0)
                if pending and free >= n and (batch is None or free >= capacity // 8 or len(pending) * n <= free):
                    group = self._next_group(pending, prompts, free // n)
                    fresh = self._prefill([_Row(i, 0, list(prompts[i])) for i in group])
                    fresh.repeat(n)
                    if new is None:
                        new = fresh
                    else:
                        new.extend(fresh)
                if new is not None:
                    if batch is None:
                        batch = new
                        batch.own(capacity)
                    else:
                        batch.extend(new, capacity)
                picked = pick_tokens(batch.logits, params).tolist()
                feed, keep = [], []
                for j, (row, t) in enumerate(zip(batch.rows, picked)):
                    if not row.forced:
                        phase, gen = phases[row.phase], row.generated[-1]
                        if t in eos_ids:
                            row.ended.append((True, False))
                        else:
                            gen.append(t)
                            if phase.stop and any(x in tok.decode(gen[-tails[row.phase] :]) for x in phase.stop):
                                row.ended.append((True, True))
                            elif len(gen) >= phase.max_new_tokens:
                                row.ended.append((False, False))
                        if len(row.ended) == len(phases):
                            finished.setdefault(row.prompt, []).append(row)
                            if progress:
                                progress(1)
                            continue
                        if len(row.ended) > row.phase:  # the phase ended: continue from its next prompt
                            row.phase += 1
                            row.generated.append([])
                            if not self._roll_back(batch, j, row, continuation(row)):
                                redo.append(row)
                                continue
                    feed.append(row.forced.pop(0) if row.forced else t)
                    keep.append(j)
                if not keep:
                    batch = None
                    continue
                if len(keep) < len(batch.rows):
                    order = batch.keep(keep)
                    feed = [feed[o] for o in order]
                batch.mask = torch.cat([batch.mask, batch.mask.new_ones((len(keep), 1))], dim=1)
                out = model(
                    input_ids=torch.tensor(feed, device=model.device)[:, None],
                    attention_mask=batch.mask,
                    position_ids=torch.tensor([len(r.ids) for r in batch.rows], device=model.device)[:, None],
                    past_key_values=batch.cache,
                    use_cache=True,
                )
                batch.logits = out.logits[:, -1, :]
                for row, t in zip(batch.rows, feed):
                    row.ids.append(t)
        return {i: sorted(rows, key=lambda r: r.sample) for i, rows in finished.items()}

    @staticmethod
    def _roll_back(batch: _Batch, j: int, row: _Row, target: list[int]) -> bool:
        """Make row ``j`` continue from ``target``. Where its cached tokens and ``target`` part
        within the last ``REFEED`` tokens of ``target`` (the usual case: the closing tag and the
        newline after it), mask the cache columns of its tokens after the common prefix and
        queue the rest of ``target`` as forced tokens, fed one per step (masked columns take no
        part in attention and positions are logical, so the row's next logits are those of
        ``target`` decoded from scratch, up to floating-point order) and return True. Where they
        part earlier (a reasoning text that began with whitespace, which the protocol strips),
        set ``row.ids = target`` and return False: the caller prefills the row again."""
        p = 0
        limit = min(len(row.ids), len(target) - 1)
        while p < limit and row.ids[p] == target[p]:
            p += 1
        if len(target) - p > REFEED:
            row.ids, row.forced = list(target), []
            return False
        drop = len(row.ids) - p
        if drop:
            cols = batch.mask[j].nonzero()[-drop:, 0]
            batch.mask[j, cols] = 0
        row.ids = row.ids[:p]
        row.forced = list(target[p:])
        return True


MAX_ROUNDS = 8  # generate_branches: further sampling rounds a request may ask for, per branch
REFEED = 16  # forced tokens fed one per step at most; a longer continuation is prefilled again


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
