"""Load and validate a run configuration against ``config/schema.yaml``.

Defaults from the schema are filled in before validation; any error names the offending key
and, where the schema has one, the allowed values. Extra semantic checks (registered names of
attacks, judges, backends, models) run after the schema.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO_ROOT / "config" / "schema.yaml"
HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


def load_schema(path: str | os.PathLike = SCHEMA_FILE) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _deref(sub: dict, root: dict) -> dict:
    ref = sub.get("$ref")
    if not ref:
        return sub
    node = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return {**node, **{k: v for k, v in sub.items() if k != "$ref"}}


def fill_defaults(cfg: dict, schema: dict, root: dict | None = None) -> dict:
    """Return a copy of ``cfg`` with every missing key that has a schema default filled in."""
    root = root or schema
    out = copy.deepcopy(cfg)
    for key, sub in schema.get("properties", {}).items():
        sub = _deref(sub, root)
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if isinstance(out.get(key), dict) and sub.get("type") == "object":
            out[key] = fill_defaults(out[key], sub, root)
        addl = sub.get("additionalProperties")
        if isinstance(out.get(key), dict) and isinstance(addl, dict) and addl.get("type") == "object":
            out[key] = {k: fill_defaults(v, addl, root) if isinstance(v, dict) else v for k, v in out[key].items()}
    return out


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _format_error(err, schema: dict) -> str:
    where = _key(err.absolute_path)
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        prefix = f"{where}." if err.absolute_path else ""
        return (
            f"unknown config key {', '.join(repr(prefix + e) for e in extra)}; "
            f"allowed keys{' under ' + where if err.absolute_path else ''}: {allowed}"
        )
    if err.validator == "enum":
        return f"config key '{where}': {err.instance!r} is not allowed; allowed values: {err.validator_value}"
    if err.validator == "propertyNames":
        return f"config key '{where}': {err.message}"
    return f"config key '{where}': {err.message}"


def validate(cfg: dict, schema: dict | None = None) -> dict:
    """Fill defaults and validate; return the completed config or raise ConfigError (all errors)."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"a config must be a mapping, got {type(cfg).__name__}")
    schema = schema or load_schema()
    full = fill_defaults(cfg, schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(full), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(_format_error(e, schema) for e in errors))
    _check_evalsets(full)
    _check_names(full)
    _check_srg(full)
    _check_seeds(full)
    return full


def _check_names(cfg: dict) -> None:
    """Semantic checks the JSON schema cannot express."""
    from srg.sources import load_sources

    known_models = sorted(load_sources()["models"])
    base = cfg["model"]["base"]
    if base not in known_models and not Path(base).is_dir() and not HF_ID.match(base):
        raise ConfigError(
            f"config key 'model.base': {base!r} is neither a known model {known_models}, "
            "an existing local directory, nor a Hugging Face id of the form org/name"
        )
    for hook in _NAME_CHECKS:
        hook(cfg)


_NAME_CHECKS: list = []


def _check_evalsets(cfg: dict) -> None:
    """Every eval set names a registered attack (or 'none' with a file) and known models."""
    from srg.attacks import ATTACKS

    known = sorted(ATTACKS)
    for name, spec in cfg.get("evalsets", {}).items():
        attack = spec["attack"]
        if attack == "none":
            if "file" not in spec:
                raise ConfigError(f"config key 'evalsets.{name}.attack': 'none' needs 'file' (a JSONL prompt file)")
            _check_prompt_file(f"evalsets.{name}.file", spec["file"])
        elif attack not in ATTACKS:
            raise ConfigError(
                f"config key 'evalsets.{name}.attack': {attack!r} is not a registered attack; "
                f"allowed values: {known + ['none']}"
            )
        else:
            errors = ATTACKS[attack].option_errors(spec.get("options", {}))
            if errors:
                raise ConfigError(f"config key 'evalsets.{name}.options' (attack {attack!r}): " + "; ".join(errors))
        for role in ("attacker", "target"):
            if role in spec and spec[role] not in ("base", *cfg["models"]):
                raise ConfigError(
                    f"config key 'evalsets.{name}.{role}': {spec[role]!r} is not a model of this "
                    f"run; allowed values: {sorted({'base', *cfg['models']})}"
                )


def _check_prompt_file(key: str, path: str) -> None:
    """A user prompt file must exist and hold valid, non-empty records (checked at DAG start)."""
    from srg.prompts import read_prompt_file

    if not Path(path).is_file():
        raise ConfigError(f"config key '{key}': prompt file {path} not found")
    try:
        read_prompt_file(path)
    except ValueError as exc:
        raise ConfigError(f"config key '{key}': {exc}") from exc


def _guidelines_path(cfg: dict) -> Path:
    p = Path(cfg["guidelines"]["file"])
    return p if p.is_absolute() or p.exists() else REPO_ROOT / p


def evaluated_models(cfg: dict) -> list[str]:
    """Every model the evaluation covers: ``models`` then each ablation (when srg is a model)."""
    return list(cfg["models"]) + (list(cfg["ablations"]) if "srg" in cfg["models"] else [])


def seed_replicas(cfg: dict) -> dict[str, tuple[str, int]]:
    """Training-seed replicates (config ``seeds``): name ``<model>_seed<s>`` -> (model, seed), for
    each of ``seeds.models`` this run trains."""
    return {f"{m}_seed{s}": (m, s) for m in cfg["seeds"]["models"] if m in cfg["models"] for s in cfg["seeds"]["extra"]}


def _check_seeds(cfg: dict) -> None:
    """A replicate's seed differs from its model's own training seed; its name is free."""
    for name, (m, s) in seed_replicas(cfg).items():
        section = "rt" if m == "rt" else "srg"
        if s == cfg[section]["training"].get("seed", 0):
            raise ConfigError(
                f"config key 'seeds.extra': seed {s} is already {m}'s own training seed "
                f"('{section}.training.seed'); list the other seeds only"
            )
        if name in cfg["ablations"] or name in cfg["models"]:
            raise ConfigError(f"config key 'seeds': replicate name {name!r} is taken by a model or an ablation")


def _check_srg(cfg: dict) -> None:
    """Model lists are subsets of the run's models; guideline ids exist; ablations need srg."""
    from srg.synthesis import load_guidelines, make_variant

    everything = evaluated_models(cfg)
    for key in ("bon", "probing"):
        bad = [m for m in cfg[key]["models"] if m not in everything]
        if bad:
            raise ConfigError(f"config key '{key}.models': {bad} not among this run's models {everything}")
    harmful = ["id_eval", *cfg["evalsets"]]
    for m in cfg["bon"]["seed_replicas"]:  # with seeds.extra empty there are no replicates: C1 has one seed
        if m not in cfg["bon"]["models"] or m not in cfg["seeds"]["models"]:
            raise ConfigError(
                f"config key 'bon.seed_replicas': {m!r} needs to be in bon.models {cfg['bon']['models']} "
                f"and in seeds.models {cfg['seeds']['models']}"
            )
    for m, sets in cfg["bon"]["evalsets"].items():
        if m not in cfg["bon"]["models"]:
            raise ConfigError(f"config key 'bon.evalsets.{m}': {m!r} is not in bon.models {cfg['bon']['models']}")
        bad = [e for e in sets if e not in harmful]
        if bad:
            raise ConfigError(f"config key 'bon.evalsets.{m}': unknown eval sets {bad}; allowed: {harmful}")
    s, g = cfg["srg"], cfg["generation"]
    if s["budget_forcing"] and s["reasoning_tokens"] is None and s["max_new_tokens"] <= g["max_new_tokens"]:
        raise ConfigError(
            f"config key 'srg.max_new_tokens' ({s['max_new_tokens']}) must exceed generation.max_new_tokens "
            f"({g['max_new_tokens']}) with srg.budget_forcing and no srg.reasoning_tokens: the difference is the "
            "reasoning budget"
        )
    if cfg["ablations"] and "srg" not in cfg["models"]:
        raise ConfigError("config key 'ablations': ablations are compared with full SRG; add 'srg' to 'models'")
    sets = [*harmful, "overrefusal", "helpfulness"]
    bad = [e for e in cfg["evaluation"]["ablation_evalsets"] or [] if e not in sets]
    if bad:
        raise ConfigError(f"config key 'evaluation.ablation_evalsets': unknown eval sets {bad}; allowed: {sets}")
    if "srg" not in cfg["models"]:
        return
    path = _guidelines_path(cfg)
    try:
        ids = [g.id for g in load_guidelines(path)]
        make_variant("srg", ids, cfg["guidelines"]["use"])
        for name, spec in cfg["ablations"].items():
            make_variant(
                name,
                ids,
                spec.get("guidelines") if spec.get("guidelines") is not None else cfg["guidelines"]["use"],
                spec.get("drop", []),
            )
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(f"config key 'guidelines'/'ablations': {exc}") from exc


def register_check(fn):
    """Register an extra config check (used by stages that own a config section)."""
    _NAME_CHECKS.append(fn)
    return fn


def read_config_file(path: str | os.PathLike) -> dict:
    """Parse one YAML config file; a syntax error names the file, line and column."""
    try:
        with open(path, encoding="utf-8") as fh:
            cfg = yaml.safe_load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} not found") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"config file {path}{where}: not valid YAML ({problem})") from exc
    if cfg is None:
        return {}
    if not isinstance(cfg, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of keys, got {type(cfg).__name__}")
    return cfg


def resolve_run_config(given: dict, configfiles: list[str], default_file: str | os.PathLike) -> dict:
    """The run's raw config, by one rule: every ``--configfile`` is complete on its own.

    Without a config file the run is the embedded default (``default_file``) with ``--config``
    overrides on top. A config file (Snakemake has already merged ``given`` from it) must name
    itself with ``name``; one without is refused rather than merged onto the default.
    """
    if not configfiles:
        return deep_merge(read_config_file(default_file), given)
    for f in configfiles:  # the syntax check with file and line (Snakemake's own message names neither)
        read_config_file(f)
    if "name" not in given:
        raise ConfigError(
            f"config file {', '.join(configfiles)} has no 'name' key: a --configfile is a complete config on its "
            "own, never merged onto config/default.yaml. Start from a copy of config/default.yaml (and give it a "
            "name), or keep the default and change single keys with --config key=value"
        )
    return given


def api_key_variables(cfg: dict) -> dict[str, str]:
    """Environment variable name -> the config key that configures it, for every API client the
    run will create (openai generation backend, openai teacher, llm judge)."""
    out: dict[str, str] = {}
    g, t, j = cfg["generation"], cfg["synthesis"]["teacher"], cfg["judge"]
    if g["backend"] == "openai" and g["api_key_env"]:
        out.setdefault(g["api_key_env"], "generation.api_key_env")
    if "srg" in cfg["models"] and t["backend"] == "openai":
        env = t["options"].get("api_key_env", "OPENAI_API_KEY")
        if env:
            out.setdefault(env, "synthesis.teacher.options.api_key_env")
    if "llm" in (j["name"], *j["agreement_with"]) and j["api_key_env"]:
        out.setdefault(j["api_key_env"], "judge.api_key_env")
    return out


def check_environment(cfg: dict, environ: dict | None = None) -> None:
    """Every configured API-key variable is set (checked when the DAG starts, not hours in).
    Only presence is checked; values are never read into messages."""
    environ = os.environ if environ is None else environ
    missing = {env: key for env, key in api_key_variables(cfg).items() if not environ.get(env)}
    if missing:
        raise ConfigError(
            "environment variable(s) not set: "
            + "; ".join(f"{env} (named by config key '{key}')" for env, key in missing.items())
            + ". Export each before starting the run, or set that key to null for a server without a key"
        )


def load(path: str | os.PathLike, overrides: dict | None = None) -> dict:
    """Read a YAML config file, apply ``overrides`` (deep merge), validate."""
    cfg = read_config_file(path)
    if overrides:
        cfg = deep_merge(cfg, overrides)
    return validate(cfg)


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def content_hash(obj: Any, length: int = 12) -> str:
    """Stable short hash of a JSON-serialisable object (cache keys, provenance)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def resolve_path(cfg: dict, which: str) -> Path:
    """Absolute path of ``paths.<which>`` (relative paths are taken from the working directory)."""
    return Path(cfg["paths"][which]).expanduser().resolve()
