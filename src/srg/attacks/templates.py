"""Template attacks: JailbreakChat role-play templates, SelfCipher, CodeAttack."""

from __future__ import annotations

import re

from srg.attacks.registry import (
    AttackContext,
    Record,
    make_record,
    register,
)
from srg.attacks.resources import (
    fill,
    load_cipher_template,
    load_code_templates,
    load_jailbreak_templates,
)

# --------------------------------------------------------------------------- jailbreakchat

JAILBREAKCHAT_SOURCE = "alexalbertt/jailbreakchat"


def _pick_templates(ctx: AttackContext, templates: list[str] | None, k: int, pool: str) -> list[str]:
    known = load_jailbreak_templates(ctx.resources)
    if templates is not None:
        bad = [t for t in templates if t not in known]
        if bad or not templates:
            raise ValueError(f"unknown jailbreak template(s) {bad}; known: {sorted(known)}")
        return list(templates)
    if pool not in ("jailbreakchat", "all"):
        raise ValueError(f"pool must be 'jailbreakchat' or 'all', got {pool!r}")
    names = sorted(n for n, t in known.items() if pool == "all" or JAILBREAKCHAT_SOURCE in t.source)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return sorted(ctx.rng("sample").sample(names, min(k, len(names))))


@register("jailbreakchat")
def jailbreakchat(
    records: list[Record],
    ctx: AttackContext,
    *,
    templates: list[str] | None = None,
    k: int = 8,
    pool: str = "jailbreakchat",
) -> list[Record]:
    """Wrap each request in a JailbreakChat template, round-robin over a seeded shuffle."""
    names = _pick_templates(ctx, templates, k, pool)
    order = list(names)
    ctx.rng("order").shuffle(order)
    known = load_jailbreak_templates(ctx.resources)
    out = []
    for i, rec in enumerate(records):
        name = order[i % len(order)]
        out.append(make_record(ctx.name, rec, fill(known[name].value, rec["prompt"]).strip(), template=name))
    return out


# --------------------------------------------------------------------------- selfcipher


@register("selfcipher")
def selfcipher(records: list[Record], ctx: AttackContext, *, placement: str = "system") -> list[Record]:
    """SelfCipher: role-play cipher-expert prompt + demonstration, request in plain text.

    ``placement="system"``: the template (slot emptied) is the system prompt and the request
    is the user turn; ``"user"``: pyrit's usage, the request fills the slot in one user turn.
    """
    tpl = load_cipher_template(ctx.resources)
    if placement not in ("system", "user"):
        raise ValueError(f"placement must be 'system' or 'user', got {placement!r}")
    out = []
    for rec in records:
        if placement == "system":
            out.append(
                make_record(
                    ctx.name,
                    rec,
                    rec["prompt"],
                    system=fill(tpl, "").strip(),
                    template="cipher_chat",
                    cipher="natural_language",
                )
            )
        else:
            out.append(
                make_record(
                    ctx.name, rec, fill(tpl, rec["prompt"]).strip(), template="cipher_chat", cipher="natural_language"
                )
            )
    return out


# --------------------------------------------------------------------------- codeattack

_WRAPPED = re.compile(r"\{\{\s*wrapped_input\s*\}\}")


def code_literal(text: str, octal: bool = False) -> str:
    """A double-quoted string literal valid in Python, Go and C++ (``octal`` for C++)."""
    named = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    parts = []
    for ch in text:
        if ch in named:
            parts.append(named[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            parts.append(f"\\{ord(ch):03o}" if octal else f"\\x{ord(ch):02x}")
        else:
            parts.append(ch)
    return '"' + "".join(parts) + '"'


def code_wrap(template: str, text: str) -> str:
    """The data-structure initialisation that each CodeAttack template decodes."""
    if template.startswith("python_list"):
        return "\n".join(f"    my_list.append({code_literal(w)})" for w in text.split())
    if template.startswith("python_stack"):
        words = [w for w in re.split(r"[\s\-]+", text) if w] or [text]
        return "\n".join(f"    my_stack.append({code_literal(w)})" for w in reversed(words))
    if template.startswith("python_string"):
        return f"    my_string = {code_literal(text)}"
    if template == "cpp":
        return f"    std::string my_string = {code_literal(text, octal=True)};"
    if template == "go":
        return f"        myQueue := {code_literal(text)}"
    raise ValueError(f"no CodeAttack encoding for template {template!r}")


@register("codeattack")
def codeattack(records: list[Record], ctx: AttackContext, *, template: str = "python_list") -> list[Record]:
    """CodeAttack: the request as list/stack/string data in a code-completion task."""
    templates = load_code_templates(ctx.resources)
    if template not in templates:
        raise ValueError(f"unknown CodeAttack template {template!r}; known: {sorted(templates)}")
    tpl = templates[template]
    return [
        make_record(
            ctx.name,
            rec,
            _WRAPPED.sub(lambda _m, r=rec: code_wrap(template, r["prompt"]), tpl).strip(),
            template=f"code_attack_{template}",
        )
        for rec in records
    ]
