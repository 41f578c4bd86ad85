"""The learned hit decision: a logistic model over the similarity, the verifier's rule signals
and lexical features, with its probability threshold chosen for a target precision.

It replaces the rules' first-veto-wins (``Verifier.verify``) by one weighted sum, so a rule that
misfires off the data it was designed on costs what the training data says it is worth.
Plain numpy: the weights are a small JSON file (``decision_weights.json`` beside this module,
written by ``python -m blendcache.benchmarks.train_decision``), no dependency on the served path.
A second file, ``decision_weights_cache.json``, trained on the rows a full cache shows
(``--protocol cache``), gives the score the error-rate guarantee judges.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from blendcache.errors import ConfigError
from blendcache.index.verifier import REASONS, RULES, Verdict, Verifier, analyse

DEFAULT_WEIGHTS = Path(__file__).with_name("decision_weights.json")
# The bounded categories' score (index/guarantee.py): trained with ``--protocol cache``.
DEFAULT_GUARANTEE_WEIGHTS = Path(__file__).with_name("decision_weights_cache.json")
FEATURES = ("similarity", *(f"rule_{name}" for name in RULES), "word_overlap",
            "content_overlap", "number_mismatch", "entity_mismatch", "length_ratio",
            "content_matched")
DECISION_REASONS = (*REASONS, "learned")

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _jaccard(x: frozenset | set, y: frozenset | set) -> float:
    return len(x & y) / len(x | y) if x | y else 1.0


def features(query: str, cached_query: str, similarity: float, *, verifier: Verifier
             ) -> np.ndarray:
    """One row of ``FEATURES`` for a (lookup, cached query) pair: # (len(FEATURES),)"""
    signals = verifier.signals(query, cached_query, similarity=similarity)
    a, b = analyse(query, verifier.vocabulary), analyse(cached_query, verifier.vocabulary)
    words_a, words_b = _WORD_RE.findall(query.lower()), _WORD_RE.findall(cached_query.lower())
    longer = max(len(words_a), len(words_b))
    return np.array([
        similarity,
        *(float(signals[name]) for name in RULES),
        _jaccard(set(words_a), set(words_b)),
        _jaccard(a.content, b.content),
        float(a.numbers != b.numbers or a.dates != b.dates),
        float(set(a.entities) != set(b.entities)),
        min(len(words_a), len(words_b)) / longer if longer else 1.0,
        verifier.matched_share(a, b),
    ], dtype=np.float64)


@dataclass(frozen=True)
class LogisticModel:
    """p(same answer) = sigmoid(((x - mean) / scale) . coef + intercept); accept at p >=
    ``threshold``. ``about``: how it was trained (command, data, validation figures)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    about: dict = field(default_factory=dict, compare=False)

    def probability(self, x: np.ndarray) -> np.ndarray:
        """# x: (n, F) or (F,) -> (n,) or ()"""
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.coef) + self.intercept)))

    def to_json(self) -> str:
        data = {"features": list(self.features), "mean": list(self.mean),
                "scale": list(self.scale), "coef": list(self.coef),
                "intercept": self.intercept, "threshold": self.threshold, "about": self.about}
        return json.dumps(data, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LogisticModel:
        data = json.loads(text)
        return cls(tuple(data["features"]), tuple(map(float, data["mean"])),
                   tuple(map(float, data["scale"])), tuple(map(float, data["coef"])),
                   float(data["intercept"]), float(data["threshold"]), data.get("about", {}))


def load_model(path: str | Path | None = None, *, default: Path = DEFAULT_WEIGHTS
               ) -> LogisticModel:
    """The model at ``path`` (None: ``default``, the committed ``decision_weights.json``); its
    features must be this module's ``FEATURES``."""
    path = Path(path) if path is not None else default
    try:
        model = LogisticModel.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: not a decision model: {exc}") from exc
    if model.features != FEATURES:
        raise ConfigError(f"{path}: features {model.features} are not {FEATURES}")
    return model


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1.0, steps: int = 50
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mean, scale, coef, intercept) by Newton's method on the L2-penalised log loss over
    standardised features (the intercept is not penalised). # x: (n, F), y: (n,) in {0, 1}"""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])  # (n, F + 1)
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        grad = z.T @ (p - y) + penalty * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return mean, scale, w[:-1], float(w[-1])


def threshold_for_precision(probs: np.ndarray, same: np.ndarray, *, target_precision: float,
                            min_support: int = 20) -> float:
    """The lowest probability threshold whose accepted pairs (p >= it, at least
    ``min_support`` of them) reach ``target_precision``; the highest probability if none."""
    for threshold in np.unique(np.round(probs, 4)):
        accepted = probs >= threshold
        if accepted.sum() >= min_support and same[accepted].mean() >= target_precision:
            return float(threshold)
    return float(probs.max()) if len(probs) else 1.0


class LearnedDecision:
    """``Verifier``'s interface (``verify``, ``rejection_counts``) over a ``LogisticModel``.

    A rejection's reason is the first rule that fired, else ``"learned"`` (the model weighed
    the pair down with no rule firing); the detail gives the probability."""

    def __init__(self, model: LogisticModel, *, verifier: Verifier | None = None):
        self.model = model
        self.verifier = verifier or Verifier()
        self.vocabulary = self.verifier.vocabulary
        self.rejections: Counter[str] = Counter()
        self._lock = threading.Lock()

    def probability(self, query: str, cached_query: str, similarity: float) -> float:
        return float(self.model.probability(
            features(query, cached_query, similarity, verifier=self.verifier)))

    def verify(self, query: str, cached_query: str, *, similarity: float | None = None) -> Verdict:
        if similarity is None:
            raise ValueError("the learned decision needs the pair's similarity")
        x = features(query, cached_query, similarity, verifier=self.verifier)
        p = float(self.model.probability(x))
        if p >= self.model.threshold:
            return Verdict(True, detail=f"p={p:.3f}", score=p)
        fired = [name for name, v in zip(RULES, x[1:1 + len(RULES)]) if v]
        reason = _reason_of(fired[0]) if fired else "learned"
        with self._lock:
            self.rejections[reason] += 1
        return Verdict(False, reason, f"p={p:.3f} < {self.model.threshold:.3f}"
                       + (f"; rules: {', '.join(fired)}" if fired else ""), score=p)

    def rejection_counts(self) -> dict[str, int]:
        with self._lock:
            return {reason: self.rejections[reason] for reason in DECISION_REASONS}


def _reason_of(rule: str) -> str:
    return {"restriction": "scope", "contrast": "content", "modifier_swap": "content",
            "head_dropped": "content"}.get(rule, rule)


def feature_matrix(pairs: Sequence, sims: np.ndarray, *, verifier: Verifier) -> np.ndarray:
    """# (n, len(FEATURES)) for labelled pairs (lookup ``b`` against cached ``a``)."""
    return np.stack([features(p.b, p.a, float(s), verifier=verifier)
                     for p, s in zip(pairs, sims)]) if len(pairs) else np.zeros((0, len(FEATURES)))
