"""Deterministic hit verification: reject a cached query that asks something else.

Embeddings put "open on Sundays" next to "closed on Sundays". Cheap linguistic checks catch what
they blur: negation (negators, negative prefixes, antonyms and converse roles, opposite ends of a
scale), numbers and dates, named entities and argument order, scope (quantifiers by class, first/
last, comparatives and superlatives, a noun restricted on one side only: "my account" vs "my
savings account") and content (members of one closed class such as colours or meals, one noun
with two different modifiers, a compound whose head is gone on the other side: "my boat
insurance" vs "my boat", and, for queries that differ in one or two content words only, a
change that the sentence similarity does not vouch for). The rules live in ``index/rules/``, one
module per kind (negation, numbers, entities, scope, content; the word lists in ``lexicon``);
this module runs them in order and adds the checks that the similarity gates.
"""

from __future__ import annotations

import difflib
import threading
from collections import Counter
from dataclasses import dataclass
from functools import partial

# NOTE: analyse, Analysis and stem are re-exported (callers import them from here)
from blendcache.index.rules.analysis import Analysis, analyse
from blendcache.index.rules.content import _modifiers, _noun_phrases, check_contrast
from blendcache.index.rules.entities import _entity_present, check_entities
from blendcache.index.rules.lexicon import (
    _CURRENCY_OF,
    _DEGREE_OF,
    _STOP_STEMS,
    _SYNONYM_OF,
    _edit_distance_le,
    stem,  # noqa: F401
)
from blendcache.index.rules.negation import check_negation
from blendcache.index.rules.numbers import check_numbers
from blendcache.index.rules.scope import check_scope

REASONS = ("negation", "number_date", "entity", "scope", "content")
# The checks by name, in the order they run (a reason can cover several: scope, content).
RULES = ("negation", "number_date", "entity", "scope", "restriction", "contrast",
         "modifier_swap", "head_dropped", "content")


@dataclass(frozen=True)
class Verdict:
    """The verifier's decision on one (query, cached query) pair."""

    accepted: bool
    reason: str | None = None  # one of REASONS when rejected
    detail: str = ""
    score: float | None = None  # the learned decision's probability (index/decision.py)


class Verifier:
    """Accepts or rejects a candidate hit; counts rejections per reason (thread-safe).

    ``vocabulary``: known words (e.g. the embedder's tokenizer vocabulary); typo tolerance only
    applies when a word is not in it, so "month"/"mouth" stay different. ``content_similarity``
    and ``min_surface``: when the two queries are worded nearly alike (token sequence ratio
    >= ``min_surface``) yet differ in some content word, that deliberate edit is accepted only
    at sentence similarity >= ``content_similarity`` ("change"/"update" yes, "pool"/"gym" no);
    so is a compound whose head is missing on the other side ("my boat insurance" vs "my
    boat"). ``modifier_similarity``: a noun restricted differently on the two sides ("my
    account" vs "my savings account") is accepted only at sentence similarity >= this.

    NOTE: content_similarity 0.89, modifier_similarity 0.93 and the category threshold (0.68,
    then 0.62 once the scope classes, comparatives and dropped compound heads were checked) were
    chosen together on the even ids of fow_cache under the full benchmark protocol.
    """

    def __init__(
        self,
        *,
        vocabulary: frozenset[str] | None = None,
        content_similarity: float = 0.89,
        min_surface: float = 0.6,
        modifier_similarity: float = 0.93,
    ):
        self.vocabulary = vocabulary
        self.content_similarity = content_similarity
        self.min_surface = min_surface
        self.modifier_similarity = modifier_similarity
        self.rejections: Counter[str] = Counter()
        self._lock = threading.Lock()

    def verify(self, query: str, cached_query: str, *, similarity: float | None = None) -> Verdict:
        """Whether ``cached_query``'s answer also answers ``query``."""
        a = analyse(query, self.vocabulary)
        b = analyse(cached_query, self.vocabulary)
        for _, reason, check in self._checks(similarity):
            detail = check(a, b)
            if detail:
                with self._lock:
                    self.rejections[reason] += 1
                return Verdict(False, reason, detail)
        return Verdict(True)

    def signals(
        self, query: str, cached_query: str, *, similarity: float | None = None
    ) -> dict[str, bool]:
        """Every check's outcome by name (``RULES``), True where it would reject; counts
        nothing. The learned decision (``index.decision``) takes them as features."""
        a = analyse(query, self.vocabulary)
        b = analyse(cached_query, self.vocabulary)
        return {name: bool(check(a, b)) for name, _, check in self._checks(similarity)}

    def matched_share(self, a: Analysis, b: Analysis) -> float:
        """The share of both sides' content words the other side matches as the content rule
        does (the same word, a synonym, a degree, a currency, a prefix, or a misspelling of
        it): 1.0 when no content word is left unmatched. A feature of the learned decision."""
        total = len(a.content) + len(b.content)
        if not total:
            return 1.0
        unmatched = (sum(not self._matched(w, b) for w in a.content)
                     + sum(not self._matched(w, a) for w in b.content))
        return 1.0 - unmatched / total

    def _checks(self, similarity: float | None):
        """(rule name, reason, check) in the order ``verify`` applies them."""
        return (
            ("negation", "negation", check_negation),
            ("number_date", "number_date", check_numbers),
            ("entity", "entity", check_entities),
            ("scope", "scope", check_scope),
            ("restriction", "scope", partial(self._check_restriction, similarity=similarity)),
            ("contrast", "content", check_contrast),
            ("modifier_swap", "content",
             partial(self._check_modifier_swap, similarity=similarity)),
            ("head_dropped", "content", partial(self._check_head_dropped, similarity=similarity)),
            ("content", "content", partial(self._check_content, similarity=similarity)),
        )

    def _matched(self, word: str, other: Analysis) -> bool:
        if word in other.content or word in other.haystack or _entity_present(word, other):
            return True
        if _CURRENCY_OF.get(word) in other.haystack:  # "dollar" vs "USD"
            return True
        group = _SYNONYM_OF.get(_DEGREE_OF.get(word, word))  # "quickest" as "quick"
        for cand in other.content:
            if group is not None and _SYNONYM_OF.get(_DEGREE_OF.get(cand, cand)) == group:
                return True
            shorter, longer = sorted((word, cand), key=len)
            if len(shorter) >= 5 and longer.startswith(shorter):
                return True  # agent / agency
            if len(shorter) >= 4 and self._typo(word, cand):
                return True
        return False

    def _check_restriction(
        self, a: Analysis, b: Analysis, similarity: float | None
    ) -> str | None:
        """A word restricted on one side only: "self-employed" vs "employed", and, unless the
        embedding vouches for it (>= ``modifier_similarity``: "a pool" vs "a swimming pool"),
        "my account" vs "my savings account"."""
        for x, y in ((a, b), (b, a)):
            for left, right in zip(x.tokens, x.tokens[1:]):
                if (
                    left.compound and right.compound and left.low.isalpha() and len(left.low) > 1
                    and left.stem not in _STOP_STEMS and right.stem in y.content
                    and not self._matched(left.stem, y)
                    and not any(w.startswith(left.low) for w in y.haystack)  # auto-/automatic
                ):
                    return f"{right.stem!r} restricted by {left.low + '-'!r} on one side"
        if similarity is not None and similarity >= self.modifier_similarity:
            return None
        for head, x_new, y_new, bare in self._modifier_changes(a, b):
            if bare:
                return f"{head!r} restricted by {x_new or y_new} on one side"
        return None

    def _check_modifier_swap(
        self, a: Analysis, b: Analysis, similarity: float | None
    ) -> str | None:
        """One noun, two different restrictions: "the billing address" vs "the email address"."""
        if similarity is not None and similarity >= self.modifier_similarity:
            return None
        for head, x_new, y_new, bare in self._modifier_changes(a, b):
            if not bare:
                return f"{head!r} restricted by {x_new} vs {y_new}"
        return None

    def _check_head_dropped(
        self, a: Analysis, b: Analysis, similarity: float | None
    ) -> str | None:
        """A compound on one side, its modifier without the head on the other: "my boat
        insurance" vs "my boat" asks about something else, unless the embedding vouches for
        it as for a content change (>= ``content_similarity``: "the text size" vs "the text
        bigger"). A phrase with two readings must differ so in both."""
        if similarity is not None and similarity >= self.content_similarity:
            return None
        for x, y in ((a, b), (b, a)):
            for readings in _noun_phrases(x):
                if all(self._head_dropped(words, y) for words in readings):
                    words = readings[0]
                    return f"{' '.join(words)!r} on one side, no {words[-1]!r} on the other"
        return None

    def _head_dropped(self, words: tuple[str, ...], other: Analysis) -> bool:
        *modifiers, head = words
        return bool(modifiers) and not self._matched(head, other) and any(
            self._matched(m, other) for m in modifiers
        )

    def _modifier_changes(self, a: Analysis, b: Analysis):
        """(head, new modifiers in a, new in b, one side bare) per shared noun that changes."""
        mods_a, mods_b = _modifiers(a), _modifiers(b)
        for head in sorted(mods_a.keys() & mods_b.keys()):
            x, y = mods_a[head], mods_b[head]
            x_new = [w for w in x if not self._matched(w, b)]
            y_new = [w for w in y if not self._matched(w, a)]
            if x_new and y_new:
                yield head, x_new, y_new, False
            elif (x_new and not y) or (y_new and not x):
                yield head, x_new, y_new, True

    def _typo(self, x: str, y: str) -> bool:
        vocab = self.vocabulary
        if vocab is not None and x in vocab and y in vocab:
            return False
        return _edit_distance_le(x, y, 2 if min(len(x), len(y)) >= 8 else 1)

    def _check_content(self, a: Analysis, b: Analysis, similarity: float | None) -> str | None:
        if similarity is None:
            return None
        only_a = sorted(w for w in a.content if not self._matched(w, b))
        only_b = sorted(w for w in b.content if not self._matched(w, a))
        if not (only_a or only_b) or len(a.content) == len(only_a):
            return None
        seq_a = [t.stem for t in a.tokens]
        seq_b = [t.stem for t in b.tokens]
        surface = difflib.SequenceMatcher(None, seq_a, seq_b, autojunk=False).ratio()
        subset = not only_a or not only_b  # one query adds words to the other: narrower
        if surface >= self.min_surface or subset:
            if similarity < self.content_similarity:
                return f"content words {only_a} vs {only_b} at similarity {similarity:.3f}"
        return None

    def rejection_counts(self) -> dict[str, int]:
        with self._lock:
            return {reason: self.rejections.get(reason, 0) for reason in REASONS}
