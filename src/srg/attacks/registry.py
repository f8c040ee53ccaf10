"""The attack registry: every attack is a function registered by name and run through
:func:`apply_attack`; its keyword-only parameters are its options (type-checked)."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Record = dict[str, Any]
Attacker = Callable[[list[str]], list[str]]
Judge = Callable[[list[str], list[str]], list[bool]]


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class AttackContext:
    """What every attack function receives besides its records and options."""

    name: str
    seed: int
    resources: Path
    attacker: Attacker | None = None
    target: Attacker | None = None
    judge: Judge | None = None

    def rng(self, salt: str = "") -> random.Random:
        """A private RNG seeded by attack name, seed and an optional salt."""
        return random.Random(f"{self.name}:{self.seed}:{salt}")


@dataclass(frozen=True)
class AttackSpec:
    """A registered attack: its function, whether it needs models, and option defaults."""

    name: str
    fn: Callable[..., list[Record]]
    needs_model: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    doc: str = ""
    option_types: dict[str, Any] = field(default_factory=dict)  # annotation of each option

    def option_errors(self, options: dict[str, Any]) -> list[str]:
        """What is wrong with ``options`` for this attack: unknown names, or a value that does not
        have the option's annotated type (strict: "three" is no int, 1 is no bool)."""
        from pydantic import TypeAdapter, ValidationError

        errors = [
            f"unknown option {k!r} (valid: {sorted(self.options)})" for k in sorted(set(options) - set(self.options))
        ]
        for k in sorted(set(options) & set(self.options)):
            try:
                TypeAdapter(self.option_types.get(k, Any)).validate_python(options[k], strict=True)
            except ValidationError:
                errors.append(f"option {k!r} must be {_type_name(self.option_types.get(k, Any))}, got {options[k]!r}")
        return errors


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) if not getattr(tp, "__args__", None) else str(tp).replace("typing.", "")


ATTACKS: dict[str, AttackSpec] = {}


def register(name: str, *, needs_model: bool = False) -> Callable:
    """Register ``fn(records, ctx, **options)``; its keyword-only parameters are the options."""

    def deco(fn: Callable[..., list[Record]]) -> Callable[..., list[Record]]:
        params = [
            p
            for p in inspect.signature(fn, eval_str=True).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        ]
        ATTACKS[name] = AttackSpec(
            name,
            fn,
            needs_model,
            {p.name: p.default for p in params},
            (fn.__doc__ or "").strip(),
            {p.name: p.annotation for p in params},
        )
        return fn

    return deco


def available() -> list[str]:
    """Names of the registered attacks, sorted."""
    return sorted(ATTACKS)


def apply_attack(
    name: str,
    records: Sequence[Record],
    *,
    seed: int,
    resources: str | Path,
    options: dict | None = None,
    attacker: Attacker | None = None,
    target: Attacker | None = None,
    judge: Judge | None = None,
) -> list[Record]:
    """Run attack ``name`` over ``records``; raise ValueError on unknown names or options."""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; available: {available()}")
    spec = ATTACKS[name]
    options = dict(options or {})
    errors = spec.option_errors(options)
    if errors:
        raise ValueError(f"attack {name!r}: " + "; ".join(errors))
    ctx = AttackContext(name, seed, Path(resources), attacker, target, judge)
    return spec.fn([_check_record(r) for r in records], ctx, **options)


def _check_record(rec: Record) -> Record:
    missing = [k for k in ("id", "prompt") if k not in rec]
    if missing:
        raise ValueError(f"prompt record lacks {missing}: {rec!r:.200}")
    return rec


def make_record(
    attack: str, rec: Record, prompt: str, *, system: str | None = None, variant: str | None = None, **meta: Any
) -> Record:
    """An attacked record in the shared schema, carrying provenance in ``meta``."""
    rid = f"{attack}:{rec['id']}" + (f":{variant}" if variant else "")
    return {
        "id": rid,
        "prompt": prompt,
        "source": rec.get("source", ""),
        "category": rec.get("category", ""),
        "split": rec.get("split", ""),
        "meta": {
            **(rec.get("meta") or {}),
            "attack": attack,
            "source_id": rec["id"],
            "original_prompt": rec["prompt"],
            "system": system,
            **meta,
        },
    }


def require_models(ctx: AttackContext, *roles: str) -> None:
    missing = [r for r in roles if getattr(ctx, r) is None]
    if missing:
        raise ValueError(f"attack {ctx.name!r} needs callable(s) {missing}")


def batched(fn: Callable, n: int, *args: list) -> list:
    """Call a batched model callable and check it returned one item per input."""
    out = list(fn(*args)) if n else []
    if len(out) != n:
        raise ValueError(f"model callable returned {len(out)} items for {n} inputs")
    return out
