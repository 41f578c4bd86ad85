"""An error-rate guarantee per category: serve a candidate hit only while the evidence bounds
the error rate of what is served (vCache, Schroeder et al. 2025, with a simpler rule).

A candidate's *score* is the learned decision's probability (so the verifier's rule signals are
features of the decision, not a veto), or the cosine when that decision is off. Observations
``(score, correct)`` come from explorations (a would-be hit also answered by the model, the two
answers compared), from audits of served hits and from explicit feedback. The rule, for a
candidate of entry ``e`` at score ``s`` in a category with bound ``delta``:

- **serve** when the evidence bounds the error rate: ``e``'s own observations once it has
  had a look of its own (below), else its neighbourhood, the category's (and tenant's)
  observations: the category's learned threshold ``t`` is found by fixed-sequence testing down
  a grid of scores, each threshold's test being a one-sided Clopper-Pearson upper bound <=
  ``delta`` on the error rate of the recent observations at scores >= it (what a threshold
  there serves; ``_Scores``), and ``s >= t`` serves. A served candidate is explored anyway
  with probability ``audit_rate``;
- an entry whose own observations put even the *lower* bound of its error rate above ``delta``
  is a **miss** (a wrong answer is not served again on the strength of its neighbours);
- otherwise **explore** with probability ``explore_rate``, else **miss**. Nothing is served
  until the evidence allows it (cold start).

Valid over the whole stream: the evidence grows and is tested again and again, and each test
at level ``confidence`` would give a bad threshold another 5% chance to pass. So a pool (a
category's observations, or an entry's own) is *looked at* on a doubling schedule: the first
look once a bound can be met at all, then each time the pool has doubled; the k-th look tests
at miss probability ``(1 - confidence) * 6 / (pi^2 k^2)`` (``look_confidence``), which sums to
``1 - confidence`` over every look, so by the union bound the chance that any look ever
certifies a threshold whose error rate is above ``delta`` is at most ``1 - confidence`` (on a
stream whose error per score does not change; the window of ``_Scores`` is the answer to drift,
outside this argument). Between looks the evidence may only take back: a wrong observation
re-tests the pool at its last look's level and the threshold can rise or vanish, never fall,
so what is served then is a subset of what a look certified. Why not the alternatives: testing
at every new observation at ``alpha_k`` spends the level on hundreds of near-identical tests
(the 300th, at 3e-7, needs 738 observations at 0.02 where one test needs 149), and an
anytime-valid confidence sequence (a uniform-prior mixture martingale, Ville's inequality)
needs 224 observations without an error where the first look needs 173; doubling keeps the
looks few (log2 of the stream) and their levels high.

Why Clopper-Pearson: it is exact for a binomial count at any sample size (a cold start has few
observations), needs no prior to defend (a Beta posterior's quantile depends on one, and with a
uniform prior is no tighter in the region that matters, zero or one error), and bounds the error
rate with high probability, where a conformal risk bound holds only in expectation over streams.
The price is caution: with no errors seen, ``min_observations`` at the first look's level (173
at delta 0.02, 69 at 0.05) must come before anything is served. Decisions are random only
through ``random.Random(seed)``, so a seed makes them reproducible.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import numpy as np

from blendcache.config import CategoryConfig
from blendcache.storage.feedback import SOURCES, FeedbackStore, Observation

Action = Literal["serve", "explore", "miss"]
ACTIONS = ("serve", "explore", "miss")
Pool = tuple[str, str]  # (tenant, category)
Held = TypeVar("Held")  # what RecentHits keeps: anything with a ``tenant``
# The thresholds tested, highest first: scores are probabilities or cosines.
GRID = np.round(np.arange(100, -101, -1) / 100.0, 2)
# A threshold of a bounded category is judged on its last WINDOW_FACTOR * min_observations
# observations at or above it; HISTORY_FACTOR windows of observations are kept per category.
WINDOW_FACTOR = 4
HISTORY_FACTOR = 10
UNBOUNDED_HISTORY = 100_000  # observations kept of a category without a bound


def binomial_cdf(errors: int, n: int, p: float) -> float:
    """P(X <= errors) for X ~ Binomial(n, p), summing the pmf by its ratio recurrence."""
    if errors >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    i = np.arange(errors, dtype=np.float64)  # (errors,)
    steps = np.log(n - i) - np.log(i + 1) + math.log(p) - math.log1p(-p)
    log_pmf = n * math.log1p(-p) + np.concatenate([[0.0], np.cumsum(steps)])  # (errors + 1,)
    return min(1.0, float(np.exp(log_pmf).sum()))


def upper_bound_at_most(errors: int, n: int, delta: float, *, confidence: float) -> bool:
    """Whether the one-sided Clopper-Pearson upper bound on the error rate (``errors`` of ``n``,
    level ``confidence``) is <= ``delta``: exactly when P(X <= errors | n, delta) <= 1 - level,
    since that probability falls as the rate grows."""
    if n == 0 or errors / n > delta:
        return False
    return binomial_cdf(errors, n, delta) <= 1.0 - confidence


def lower_bound_above(errors: int, n: int, delta: float, *, confidence: float) -> bool:
    """Whether the one-sided Clopper-Pearson lower bound on the error rate is > ``delta``:
    exactly when P(X >= errors | n, delta) < 1 - level."""
    if errors == 0 or errors / n <= delta:
        return False
    return 1.0 - binomial_cdf(errors - 1, n, delta) < 1.0 - confidence


def upper_bound(errors: int, n: int, *, confidence: float) -> float:
    """The one-sided Clopper-Pearson upper bound itself (by bisection; 1.0 without data)."""
    if n == 0 or errors >= n:
        return 1.0
    low, high = errors / n, 1.0
    for _ in range(50):
        mid = (low + high) / 2
        if binomial_cdf(errors, n, mid) > 1.0 - confidence:
            low = mid
        else:
            high = mid
    return high


def min_observations(delta: float, *, confidence: float) -> int:
    """Fewest observations whose upper bound can be <= ``delta`` (all of them correct)."""
    return math.ceil(math.log(1.0 - confidence) / math.log1p(-delta))


def look_confidence(k: int, confidence: float) -> float:
    """The level of a pool's ``k``-th look (k >= 1): the miss probability ``1 - confidence``
    spent as ``(1 - confidence) * 6 / (pi^2 k^2)``, which sums to ``1 - confidence``."""
    return 1.0 - (1.0 - confidence) * 6.0 / (math.pi ** 2 * k * k)


def looks_due(n: int, delta: float, *, confidence: float) -> int:
    """How many looks a pool of ``n`` observations has had: the first at the fewest
    observations that can meet the bound at the first look's level, then one each time the
    pool doubles. Counts only, never outcomes, set when a look comes."""
    first = min_observations(delta, confidence=look_confidence(1, confidence))
    return (n // first).bit_length()


@dataclass(frozen=True)
class Decision:
    """What to do with one candidate, and the evidence it rests on."""

    action: Action
    audit: bool = False  # an exploration of a candidate the bound allowed
    pool: Literal["entry", "category", "vetoed"] = "category"
    errors: int = 0  # of the observations judged (the entry's, or those of the threshold)
    observations: int = 0
    threshold: float | None = None  # the category's learned threshold, if it has one


@dataclass
class _Look:
    """A pool's last look for one (delta, confidence): which look (``k``), the wrong
    observations taken into account since, and the threshold it leaves, (t, errors, n)."""

    k: int
    wrong_seen: int
    found: tuple[float, int, int] | None


class _Scores:
    """A category's observations in the order they came (the last ``HISTORY_FACTOR * window``;
    all when ``window`` is None), and its learned threshold per (delta, confidence).

    A threshold ``t`` is judged on the last ``window`` observations at scores >= ``t``: what a
    hit risks drifts (a cache that fills up offers more near misses), so old evidence expires,
    but per score range, since above a threshold that serves only audits and feedback come in.
    The threshold is worked out afresh at each look (``looks_due``, at the first decision after
    the pool reached it) and, between looks, again at once after a wrong observation, at the
    last look's level, where it may only rise or vanish.
    """

    def __init__(self, window: int | None = None) -> None:
        self.window = window
        self.history: deque[tuple[float, bool]] = deque(
            maxlen=UNBOUNDED_HISTORY if window is None else HISTORY_FACTOR * window)
        self.added = 0
        self.wrong = 0
        self._looks: dict[tuple[float, float], _Look] = {}

    def add(self, score: float, correct: bool) -> None:
        self.history.append((score, correct))
        self.added += 1
        self.wrong += not correct

    def __len__(self) -> int:
        return len(self.history)

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(scores, wrong) in order of arrival: # (m,), (m,) bool"""
        if not self.history:
            return np.zeros(0), np.zeros(0, dtype=bool)
        scores, correct = zip(*self.history)
        return np.asarray(scores, dtype=np.float64), ~np.asarray(correct, dtype=bool)

    def _judged(self, scores: np.ndarray, wrong: np.ndarray, t: float) -> tuple[int, int]:
        idx = np.flatnonzero(scores >= t)
        if self.window is not None:
            idx = idx[-self.window:]
        return int(wrong[idx].sum()), len(idx)

    def threshold(self, delta: float, confidence: float) -> tuple[float, int, int] | None:
        """(t, errors, observations judged) for the lowest threshold the last look certified
        (raised since by wrong observations), or None."""
        key = (delta, confidence)
        due = looks_due(self.added, delta, confidence=confidence)
        look = self._looks.get(key)
        if due == 0:
            return None
        if look is None or look.k < due:
            found = self._lowest(delta, look_confidence(due, confidence))
            look = self._looks[key] = _Look(due, self.wrong, found)
        elif self.wrong > look.wrong_seen:
            look.wrong_seen = self.wrong
            if look.found is not None:  # NOTE: only ever raised between looks (the guarantee)
                fresh = self._lowest(delta, look_confidence(look.k, confidence))
                if fresh is None or fresh[0] >= look.found[0]:
                    look.found = fresh
                else:  # the last look's threshold still passes: its counts brought up to date
                    t = look.found[0]
                    look.found = (t, *self._judged(*self._arrays(), t))
        return look.found

    def _lowest(self, delta: float, confidence: float) -> tuple[float, int, int] | None:
        """The lowest threshold whose bound is met at level ``confidence`` now, or None.

        Fixed-sequence testing down ``GRID`` (Learn then Test, Angelopoulos et al. 2021):
        from the highest threshold with enough observations to be tested at all, each one
        whose bound is met allows the next lower one; the first that fails stops. So the
        many thresholds tested need no multiplicity correction. Never below the lowest score
        observed: what no one has seen is not extrapolated to."""
        need = min_observations(delta, confidence=confidence)
        scores, wrong = self._arrays()
        if len(scores) < need:
            return None
        ranked = np.sort(scores)
        counts = len(ranked) - np.searchsorted(ranked, GRID, side="left")  # (len(GRID),)
        found = None
        for t, count in zip(GRID.tolist(), counts.tolist()):
            if t < ranked[0]:
                break
            if count < need:
                continue  # untestable yet (a matter of scores, not of outcomes)
            errors, n = self._judged(scores, wrong, t)
            if not upper_bound_at_most(errors, n, delta, confidence=confidence):
                break
            found = (float(t), errors, n)
        return found


@dataclass
class _EntryCounts:
    """An entry's own evidence, and the verdict of its last look (``looks_due`` of its count,
    judged when the count reaches it)."""

    observations: int = 0
    errors: int = 0
    looks: int = 0
    certified: bool = False


class ErrorGuarantee:
    """The rule of the module docstring over each bounded category of ``categories``; every
    observation is kept (``store``: persisted and read back at start) whatever the category's
    bound, so setting one later starts from what was learned. Safe from several threads."""

    def __init__(self, categories: Mapping[str, CategoryConfig] | tuple[CategoryConfig, ...], *,
                 store: FeedbackStore | None = None, seed: int | None = None,
                 clock: Callable[[], float] = time.time):
        if not isinstance(categories, Mapping):
            categories = {c.name: c for c in categories}
        self.categories = dict(categories)
        self._store = store
        self._rng = random.Random(seed)
        self.clock = clock
        self._scores: dict[Pool, _Scores] = {}
        self._entries: dict[int, _EntryCounts] = {}
        self._counts: Counter[tuple[str, str]] = Counter()  # (category, what) -> n
        self._lock = threading.Lock()
        if store is not None:
            for batch in store.all():
                for obs in batch:
                    self._add(obs)

    def _window(self, category: str) -> int | None:
        """How many recent observations a bounded category judges a threshold by:
        ``WINDOW_FACTOR`` times the fewest that can meet its bound at its ``confidence``
        (enough for every look up to about the 70th to be able to pass)."""
        cat = self.categories.get(category)
        if cat is None or cat.max_error_rate is None:
            return None
        return WINDOW_FACTOR * min_observations(cat.max_error_rate, confidence=cat.confidence)

    def bounded(self, category: str) -> bool:
        cat = self.categories.get(category)
        return cat is not None and cat.max_error_rate is not None

    def decide(self, *, tenant: str, category: str, entry_id: int, score: float) -> Decision:
        """Serve, explore or miss the candidate ``entry_id`` scored ``score``; counted."""
        cat = self.categories[category]
        if cat.max_error_rate is None:
            raise ValueError(f"category {category!r} has no max_error_rate")
        delta, level = cat.max_error_rate, cat.confidence
        with self._lock:
            decision = self._judge(tenant, category, entry_id, score, delta, level)
            if decision.action == "serve" and self._rng.random() < cat.audit_rate:
                decision = dataclasses.replace(decision, action="explore", audit=True)
            elif decision.action == "explore" and not self._rng.random() < cat.explore_rate:
                decision = dataclasses.replace(decision, action="miss")
            self._counts[(category, "audits" if decision.audit else decision.action)] += 1
        return decision

    def _judge(self, tenant: str, category: str, entry_id: int, score: float, delta: float,
               level: float) -> Decision:
        own = self._entries.get(entry_id, _EntryCounts())
        if own.looks:
            # served while its last look certified it and what came since takes nothing back
            errors, n = own.errors, own.observations
            serve = own.certified and upper_bound_at_most(
                errors, n, delta, confidence=look_confidence(own.looks, level))
            return Decision("serve" if serve else "explore", pool="entry", errors=errors,
                            observations=n)
        if lower_bound_above(own.errors, own.observations, delta, confidence=level):
            return Decision("miss", pool="vetoed", errors=own.errors,
                            observations=own.observations)
        scores = self._scores.get((tenant, category))
        learned = scores.threshold(delta, level) if scores else None
        if learned is None:
            return Decision("explore")
        t, errors, n = learned
        return Decision("serve" if score >= t else "explore", errors=errors, observations=n,
                        threshold=t)

    def record(self, *, tenant: str, category: str, entry_id: int, score: float, correct: bool,
               source: str) -> None:
        """One observation: serving ``entry_id`` at ``score`` was right or wrong."""
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; one of {SOURCES}")
        obs = Observation(tenant, category, int(entry_id), float(score), bool(correct), source,
                          self.clock())
        if self._store is not None:
            self._store.insert([obs])
        with self._lock:
            self._add(obs)
            self._counts[(category, f"{source}_{'correct' if correct else 'wrong'}")] += 1

    def _add(self, obs: Observation) -> None:
        pool = self._scores.get((obs.tenant, obs.category))
        if pool is None:
            pool = self._scores[(obs.tenant, obs.category)] = _Scores(self._window(obs.category))
        pool.add(obs.score, obs.correct)
        own = self._entries.setdefault(obs.entry_id, _EntryCounts())
        own.observations += 1
        own.errors += not obs.correct
        cat = self.categories.get(obs.category)
        if cat is not None and cat.max_error_rate is not None:
            due = looks_due(own.observations, cat.max_error_rate, confidence=cat.confidence)
            if due > own.looks:
                own.looks = due
                own.certified = upper_bound_at_most(
                    own.errors, own.observations, cat.max_error_rate,
                    confidence=look_confidence(due, cat.confidence))

    def stats(self) -> dict[str, dict[str, int]]:
        """Per category: decisions since start-up (serve, explore, audits, miss), observations
        recorded since start-up by source and outcome, and observations held (all tenants)."""
        with self._lock:
            out: dict[str, dict[str, int]] = {}
            for (category, what), n in sorted(self._counts.items()):
                out.setdefault(category, {})[what] = n
            for (_tenant, category), scores in self._scores.items():
                view = out.setdefault(category, {})
                view["observations"] = view.get("observations", 0) + len(scores)
            return out


@dataclass(frozen=True)
class ServedHit:
    """A served semantic hit that feedback may still come for."""

    tenant: str
    category: str
    entry_id: int
    score: float


@dataclass
class RecentHits(Generic[Held]):
    """The last ``max_size`` hits by id (bounded: the oldest go first), each of one tenant
    (its ``tenant``): served hits waiting for feedback, or explorations waiting for the
    caller's own answer (``semantic_cache.ExploredHit``)."""

    max_size: int = 10_000
    _hits: OrderedDict[str, Held] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def remember(self, response_id: str, hit: Held) -> None:
        with self._lock:
            self._hits[response_id] = hit
            while len(self._hits) > self.max_size:
                self._hits.popitem(last=False)

    def take(self, response_id: str, *, tenant: str | None) -> Held | None:
        """The hit of ``response_id`` if ``tenant`` (None: any) was served it; forgotten then,
        so one response gets one feedback."""
        with self._lock:
            hit = self._hits.get(response_id)
            if hit is None or tenant not in (None, hit.tenant):
                return None
            return self._hits.pop(response_id)
