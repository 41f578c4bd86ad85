"""Do two answers to a question agree? The check an exploration makes between the cached answer
and the model's fresh one (index/guarantee.py learns from it).

Short answers (a name, a number, a date) agree only when equal after normalisation (SQuAD's:
Unicode NFKC, case folding, punctuation and the articles a/an/the dropped, whitespace
collapsed): their embeddings are close for "1912" and "1913". Longer answers agree when the
cosine of their embeddings (the semantic cache's embedder) reaches ``min_cosine``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence

import numpy as np

SHORT_ANSWER_WORDS = 6
# NOTE: all-MiniLM-L6-v2 puts paraphrased sentences at ~0.85-0.95 and related sentences that
# differ in a fact at ~0.7-0.9; 0.9 leans to "disagree", which only costs exploration a serve.
MIN_ANSWER_COSINE = 0.9
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = re.compile(r"[^\w\s]")


def normalise_answer(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _ARTICLES.sub(" ", _PUNCTUATION.sub(" ", text))
    return " ".join(text.split())


def answers_agree(cached: str, fresh: str, *,
                  embed: Callable[[Sequence[str]], np.ndarray] | None = None,
                  min_cosine: float = MIN_ANSWER_COSINE,
                  short_words: int = SHORT_ANSWER_WORDS) -> bool:
    """Whether ``fresh`` (the model's answer now) agrees with ``cached``. ``embed``: texts ->
    unit vectors # (n, dim); without it only equal normalised answers agree."""
    a, b = normalise_answer(cached), normalise_answer(fresh)
    if a == b:
        return True
    if not a or not b or max(len(a.split()), len(b.split())) <= short_words or embed is None:
        return False
    va, vb = embed([cached, fresh])  # (dim,) each, unit length
    return float(np.dot(va, vb)) >= min_cosine
