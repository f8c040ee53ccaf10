"""Grouped-query attention for cached decoding without repeating the key/value heads.

transformers' ``sdpa`` attention repeats every key/value head for each query head of its group
(``repeat_kv``) whenever there is an attention mask, which batched left-padded decoding always
has: a copy of the whole KV cache, times the group size, in every layer at every step (SmolLM2:
3 KV heads for 9 query heads). With one query position, the query heads of a group can be read
as that many query positions against the group's one key/value head instead: the same
attention, no copy. Registered as the attention implementation ``srg_sdpa`` (transformers'
``AttentionInterface``); prompts of more than one token go to the stock ``sdpa`` function."""

from __future__ import annotations

NAME = "srg_sdpa"


def grouped_decode_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """``sdpa_attention_forward`` for one query position: query (B, H, 1, D) against key/value
    (B, H_kv, T, D) as (B, H_kv, H / H_kv, D) queries; returns (B, 1, H, D)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    b, heads, q_len, dim = query.shape
    kv_heads = key.shape[1]
    if q_len != 1 or heads == kv_heads or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    if attention_mask is not None:
        attention_mask = attention_mask[:, :, :, : key.shape[-2]]  # (B, 1, 1, T): the same for every head
    out = torch.nn.functional.scaled_dot_product_attention(
        query.reshape(b, kv_heads, heads // kv_heads, dim),
        key,
        value,
        attn_mask=attention_mask,
        dropout_p=dropout,
        scale=scaling,
    )
    return out.reshape(b, heads, 1, dim).transpose(1, 2).contiguous(), None


def register() -> str:
    """Register ``srg_sdpa`` (attention and its mask, sdpa's) with transformers; returns the name."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(NAME, grouped_decode_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME
