"""Content: members of one closed class traded ("red" vs "blue"); the modifiers and noun phrases
that the verifier's similarity-gated checks compare."""

from __future__ import annotations

from blendcache.index.rules.analysis import Analysis
from blendcache.index.rules.lexicon import (
    _AUXILIARIES,
    _BE,
    _CONTRAST_OF,
    _CONTRAST_SETS,
    _DEGREE_OF,
    _MODIFIER_SLOT,
    _NOUN_PHRASE_START,
    _PREPOSITIONS,
    _PRONOUNS,
)


def check_contrast(a: Analysis, b: Analysis) -> str | None:
    """Members of one closed class on each side, neither shared: "red" vs "blue"."""
    words_a = {t.stem for t in a.tokens}
    words_b = {t.stem for t in b.tokens}
    members_a = {_CONTRAST_OF[w] for w in words_a if w in _CONTRAST_OF}
    members_b = {_CONTRAST_OF[w] for w in words_b if w in _CONTRAST_OF}
    for group, member in members_a - members_b:
        other = [m for g, m in members_b - members_a if g == group]
        if other:
            x = _CONTRAST_SETS[group][member][0]
            return f"contrasting {x!r} vs {_CONTRAST_SETS[group][other[0]][0]!r}"
    return None


def _modifiers(x: Analysis) -> dict[str, tuple[str, ...]]:
    """Content word -> the words restricting it in "<determiner or preposition> [modifiers]
    <word>": "my savings account", "for mature students"."""
    out: dict[str, tuple[str, ...]] = {}
    toks = x.tokens
    for i, tok in enumerate(toks):
        if tok.stem not in x.content or tok.stem in out:
            continue
        j = i - 1
        while j >= 0 and i - j <= 3 and toks[j].stem in x.content and not toks[j].compound and (
            toks[j].low not in _MODIFIER_SLOT
        ):
            j -= 1
        if j >= 0 and toks[j].low in _MODIFIER_SLOT:
            out[tok.stem] = tuple(t.stem for t in toks[j + 1:i])
    return out


def _noun_phrases(x: Analysis) -> list[tuple[tuple[str, ...], ...]]:
    """Short noun phrases "<determiner> [modifiers] head", each as its possible readings.

    A run of two or three content words after a determiner is read as modifiers and a head
    (longer runs are a phrase and more). While a question's verb is still to come (after
    "does/can" and a subject that is no pronoun, or a question opened by "is/are"), the run's
    last word may be that verb or predicate ("what does my pet insurance cover", "is the gift
    shop open"): such a run has both readings, and the verb stays pending past a run that a
    preposition follows ("does the amber light on the boiler mean"). Runs with an adverb (-ly),
    an -ing form or a comparative after their first word are left out ("my visa's running out",
    "make the text bigger").
    """
    toks, out, i = x.tokens, [], 0
    verb_pending = False
    while i < len(toks):
        tok, j = toks[i], i + 1
        if tok.low in _AUXILIARIES or tok.low in _BE and tok.sentence_start:
            verb_pending = True
        elif tok.low in _PRONOUNS:
            verb_pending = False
        elif tok.low in _NOUN_PHRASE_START:
            while j < len(toks) and toks[j].stem in x.content and not toks[j].compound and (
                toks[j].low not in _PREPOSITIONS
            ):
                j += 1
            run = toks[i + 1:j]
            if 2 <= len(run) <= 3 and not any(
                t.low.endswith(("ly", "ing")) or t.low in _DEGREE_OF for t in run[1:]
            ):
                stems = tuple(t.stem for t in run)
                out.append((stems, stems[:-1]) if verb_pending else (stems,))
            verb_pending = verb_pending and j < len(toks) and toks[j].low in _PREPOSITIONS
        i = j
    return out
