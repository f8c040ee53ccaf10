"""Style-only classifier: can surface form alone (first words, length; no content words) tell the
harmful training prompts from the benign ones? Near chance means RT cannot learn "this form ->
refuse" from the training set, and C2's probes cannot read kind from form."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np


def style_features(prompt: str) -> dict[str, float]:
    """The first word, the first two words, and the length (words, log-scaled; characters)."""
    words = re.findall(r"[A-Za-z']+", prompt.lower())
    first = words[0] if words else ""
    return {
        f"first={first}": 1.0,
        f"first2={' '.join(words[:2])}": 1.0,
        "log_words": float(np.log1p(len(prompt.split()))),
        "log_chars": float(np.log1p(len(prompt))),
        "question": float(prompt.rstrip().endswith("?")),
    }


def style_check(harmful: Sequence[str], benign: Sequence[str], folds: int = 5, seed: int = 0) -> dict:
    """Cross-validated accuracy of a logistic regression on :func:`style_features` (balanced
    classes by construction of the check: chance = the majority share), with a 95% Wilson CI."""
    from scipy.stats import binomtest
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler

    texts = [*harmful, *benign]
    y = np.array([1] * len(harmful) + [0] * len(benign))
    if min(len(harmful), len(benign)) < folds:
        raise ValueError(f"style check needs >= {folds} prompts of each kind, got {len(harmful)} / {len(benign)}")
    model = make_pipeline(DictVectorizer(), MaxAbsScaler(), LogisticRegression(max_iter=1000, C=1.0))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    pred = cross_val_predict(model, [style_features(t) for t in texts], y, cv=cv)
    correct = int((pred == y).sum())
    ci = binomtest(correct, len(y)).proportion_ci(0.95, method="wilson")
    lo, hi = ci.low, ci.high
    first = lambda ts: Counter((re.findall(r"[A-Za-z']+", t.lower()) or [""])[0] for t in ts)  # noqa: E731
    return {
        "accuracy": correct / len(y),
        "ci": [float(lo), float(hi)],
        "chance": float(max(y.mean(), 1 - y.mean())),
        "n_harmful": len(harmful),
        "n_benign": len(benign),
        "folds": folds,
        "features": "first word, first two words, log word and character counts, ends with '?'",
        "first_words": {"harmful": dict(first(harmful).most_common(8)), "benign": dict(first(benign).most_common(8))},
        "mean_words": {
            k: float(np.mean([len(t.split()) for t in ts])) for k, ts in (("harmful", harmful), ("benign", benign))
        },
    }
