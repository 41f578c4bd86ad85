"""What the rules compare, computed once per text (``analyse``, cached): tokens, negators,
numbers and dates, entities, scope words, comparatives, content stems, roles."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from blendcache.index.rules.lexicon import (
    _DATE_WORDS,
    _DEGREE_OF,
    _MONTHS,
    _NEGATOR_STEMS,
    _NEGATORS,
    _NOUN_PHRASE_START,
    _ONE_PRONOUN_BEFORE,
    _PERIODS,
    _RELATIONAL,
    _RELATIVE,
    _SCOPE,
    _SCOPE_STEMS,
    _STOP_STEMS,
    _STOPWORDS,
    _UNITS,
    _WEEKDAYS,
    _edit_distance_le,
    stem,
)

_TOKEN_RE = re.compile(
    r"[£$€]|\d+(?:[.,:]\d+)*(?:[A-Za-z%]+)?|[A-Za-z]+\d[A-Za-z\d]*|[A-Za-z]+(?:'[A-Za-z]+)?"
)
_QUOTED_RE = re.compile(r"[\"“]([^\"”]{2,})[\"”]|(?:^|\s)'([^']{2,})'(?=[\s?.!,]|$)")
_CONTRACTIONS = {"n't": "not", "d": "would", "ve": "have", "m": "am", "re": "are", "ll": "will"}
_NT_BASES = {"can": "can", "won": "will", "shan": "shall", "ca": "can"}


@dataclass(frozen=True)
class _Token:
    text: str  # original spelling
    low: str  # lowercased, contraction-expanded word
    stem: str
    sentence_start: bool
    compound: bool  # part of a hyphenated compound


@dataclass(frozen=True)
class Analysis:
    """What the checks compare; computed once per text (cached)."""

    tokens: tuple[_Token, ...]
    negation: int  # count of negators
    numbers: tuple[str, ...]  # sorted numeric values
    dates: frozenset[str]
    entities: tuple[str, ...]  # in order of appearance, lowercased
    haystack: frozenset[str]  # every lowercased word and stem, for entity look-ups
    scope: frozenset[str]
    degrees: frozenset[str]  # bases of comparatives and superlatives
    relational: frozenset[str]
    content: frozenset[str]  # stems of content words
    initials: tuple[str, ...]  # first letters (number words as digits), for acronyms
    roles: tuple[frozenset[str], frozenset[str]]  # content stems after "from" / after "to"


_GREETING_RE = re.compile(r"^\s*(?:good\s+)?(?:morning|afternoon|evening)\b\W*", re.IGNORECASE)


def _split(text: str) -> list[_Token]:
    text = _GREETING_RE.sub("", text.replace("’", "'").replace("‘", "'"))
    out: list[_Token] = []
    for match in _TOKEN_RE.finditer(text):
        raw, start, end = match.group(0), match.start(), match.end()
        before = text[:start].rstrip()
        sentence_start = not before or before[-1] in ".?!:;\"“(" or (
            not out and before[-1] == ","
        )
        compound = (start > 0 and text[start - 1] == "-") or text[end:end + 1] == "-"
        words = [raw]
        if "'" in raw:
            base, _, suffix = raw.partition("'")
            low_base = base.lower()
            if suffix.lower() == "t" and low_base.endswith("n"):
                root = low_base[:-1]
                words = [_NT_BASES.get(root, root), "not"]
            elif suffix.lower() in ("s", ""):
                words = [base]
            else:
                words = [base, _CONTRACTIONS.get(suffix.lower(), suffix.lower())]
        elif raw.lower() == "cannot":
            words = ["can", "not"]
        for i, word in enumerate(words):
            low = word.lower()
            out.append(_Token(
                text=word if i == 0 else low, low=low, stem=stem(low),
                sentence_start=sentence_start and i == 0, compound=compound,
            ))
    return out


def _numbers(tokens: list[_Token]) -> tuple[list[str], set[str]]:
    values: list[str] = []
    dates: set[str] = set()
    for i, tok in enumerate(tokens):
        low = tok.low
        m = re.fullmatch(r"(\d+(?:[.,:]\d+)*)([a-z%]*)", low)
        if m:
            number, suffix = m.groups()
            if re.fullmatch(r"\d{1,3}(,\d{3})+", number):
                number = number.replace(",", "")  # 2,700 -> 2700
            values.append(number)
            nxt = tokens[i + 1].low if i + 1 < len(tokens) else ""
            if suffix in ("am", "pm") or nxt in ("am", "pm"):
                dates.add(suffix or nxt)
            continue
        if low in _UNITS:
            prev = tokens[i - 1].low if i else ""
            nxt = tokens[i + 1].low if i + 1 < len(tokens) else ""
            if low == "one" and (prev in _ONE_PRONOUN_BEFORE or nxt in ("of", "another", "")):
                continue
            if low == "second" and not (prev and prev[0].isdigit()) and nxt not in ("", "of"):
                if prev in ("a", "the", "my", "your", "our", "their"):
                    values.append("2")
                continue
            values.append(str(_UNITS[low]))
    return values, dates


def _dates(
    tokens: list[_Token], vocabulary: frozenset[str] | None, misspelt: set[str]
) -> set[str]:
    out: set[str] = set()
    for i, tok in enumerate(tokens):
        word = tok.stem if tok.stem in _DATE_WORDS else tok.low
        if word in _DATE_WORDS and not (word == "march" and not tok.text[:1].isupper()):
            out.add(_DATE_WORDS[word])
        elif len(tok.low) >= 5 and (vocabulary is None or tok.low not in vocabulary):
            for name in (*_WEEKDAYS, *_MONTHS):  # a misspelt "Mondys"
                if _edit_distance_le(tok.stem, name, 1) or _edit_distance_le(tok.low, name, 1):
                    out.add(name)
                    misspelt.add(tok.low)
                    break
        if tok.low in _RELATIVE and i + 1 < len(tokens) and tokens[i + 1].stem in _PERIODS:
            out.add(f"{tok.low} {tokens[i + 1].stem}")
    return _day_ranges(tokens, out)


_DAY_RANGES = {("monday", "friday"): "weekday", ("saturday", "sunday"): "weekend"}


def _day_ranges(tokens: list[_Token], dates: set[str]) -> set[str]:
    """"Monday to Friday", "Mon-Fri" and "Saturday and Sunday" name the weekdays/weekend."""
    words = [t.stem if t.stem in _DATE_WORDS else t.low for t in tokens]
    for (first, last), name in _DAY_RANGES.items():
        for i, word in enumerate(words):
            if word != first:
                continue
            if words[i + 1:i + 2] == [last] and tokens[i + 1].compound or words[i + 2:i + 3] == [
                last
            ] and words[i + 1] in ("to", "through", "thru", "till", "until", "and", "or"):
                dates -= {first, last}
                dates.add(name)
    return dates


def _is_shouting_or_title(tokens: list[_Token]) -> bool:
    """All capitals, or Every Longer Word Capitalised: casing tells nothing of names."""
    words = [t.text for t in tokens if t.text.isalpha() and len(t.text) >= 3]
    return len(words) >= 3 and all(w[0].isupper() for w in words)


_NOT_NAMES = frozenset({"i", "ok", "okay", "hi", "hello", "please", "thanks"})


def _entities(tokens: list[_Token], quoted: list[str], skip: set[str]) -> list[str]:
    if _is_shouting_or_title(tokens):
        return [f"\"{q}" for q in quoted]
    out: list[str] = []
    for tok in tokens:
        text = tok.text
        if not text[:1].isalpha() or tok.low in _NOT_NAMES or tok.stem in _DATE_WORDS:
            continue
        if tok.low in _STOPWORDS and not text.isupper():
            continue
        acronym = len(text) >= 2 and text.isupper()
        alnum = any(c.isdigit() for c in text) and any(c.isalpha() for c in text)
        proper = text[0].isupper() and not tok.sentence_start
        proper = proper or (text[0].islower() and any(c.isupper() for c in text[1:]))  # eBay
        if (acronym or alnum or proper) and tok.low not in skip:
            out.append(tok.low)
    return out + [f"\"{q}" for q in quoted]


def _roles(tokens: list[_Token]) -> tuple[frozenset[str], frozenset[str]]:
    found: dict[str, set[str]] = {"from": set(), "to": set()}
    current: str | None = None
    for tok in tokens:
        if tok.low in ("from", "to", "into"):
            current = "from" if tok.low == "from" else "to"
        elif tok.low in ("in", "on", "at", "for", "with", "by", "of", "and", "or", "without"):
            current = None
        elif current and tok.stem not in _STOP_STEMS:
            found[current].add(tok.stem)
    return frozenset(found["from"]), frozenset(found["to"])


_DETERMINERS = frozenset("a an the my your our their his her its this that these those of".split())


def _scope(tokens: list[_Token]) -> frozenset[str]:
    """Quantifiers and qualifiers, less idioms that restrict nothing.

    "how many/much" asks for a number; "all my/the X" is as wide as "my/the X"; "own" with no
    noun after it ("on my own") means alone; "first/last name", "at first/last" and "the
    first of May" name no position, and "last week/night" is a date (compared as one).
    """
    out = set()
    for i, tok in enumerate(tokens):
        prev = tokens[i - 1].low if i else ""
        nxt = tokens[i + 1].low if i + 1 < len(tokens) else ""
        if tok.low not in _SCOPE:
            continue
        if tok.low in ("many", "much") and prev == "how":
            continue
        if tok.low == "all" and nxt in _DETERMINERS:
            continue
        if tok.low == "own" and (not nxt or nxt in _STOPWORDS):
            continue
        if tok.low in ("first", "last", "final") and (
            prev == "at" or nxt in ("name", "names", "of") or nxt in _DATE_WORDS
            or stem(nxt) in _PERIODS or stem(nxt) in _DATE_WORDS
        ):
            continue
        out.add(tok.low)
    return frozenset(out)


def _degrees(tokens: list[_Token]) -> frozenset[str]:
    """Bases of the superlatives, and of the comparatives that narrow a noun ("a cheaper
    flight", not "make it louder"), in ``tokens``: "cheapest" -> "cheap". "At the latest"
    restricts nothing."""
    out = set()
    for i, tok in enumerate(tokens):
        base = _DEGREE_OF.get(tok.low)
        if base is None:
            continue
        before = [t.low for t in tokens[max(i - 2, 0):i]]
        if tok.low.endswith("st"):
            if before != ["at", "the"]:
                out.add(base)
        elif before and before[-1] in _NOUN_PHRASE_START | {"some", "no"}:
            out.add(base)
    return frozenset(out)


@lru_cache(maxsize=8192)
def analyse(text: str, vocabulary: frozenset[str] | None = None) -> Analysis:
    """The features of ``text`` that the checks compare."""
    quoted = [(a or b).strip().lower() for a, b in _QUOTED_RE.findall(text)]
    tokens = _split(text)
    numbers, time_marks = _numbers(tokens)
    misspelt: set[str] = set()
    dates = _dates(tokens, vocabulary, misspelt) | time_marks
    negation = sum(1 for t in tokens if t.low in _NEGATORS or t.stem in _NEGATOR_STEMS)
    content = frozenset(
        t.stem for t in tokens
        if t.low.isalpha() and t.stem not in _STOP_STEMS and t.low not in _STOP_STEMS
        and t.low not in _UNITS and t.low not in _DATE_WORDS and t.stem not in _DATE_WORDS
        and t.stem not in _NEGATOR_STEMS and t.stem not in _SCOPE_STEMS
        and t.low not in _RELATIONAL and t.low not in misspelt
    )
    initials = tuple(
        str(_UNITS[t.low]) if t.low in _UNITS else t.low[:1] for t in tokens if t.low
    )
    haystack = frozenset({t.low for t in tokens} | {t.stem for t in tokens})
    return Analysis(
        tokens=tuple(tokens), negation=negation, numbers=tuple(sorted(numbers)),
        dates=frozenset(dates), entities=tuple(_entities(tokens, quoted, misspelt)),
        haystack=haystack,
        scope=_scope(tokens), degrees=_degrees(tokens),
        relational=frozenset(t.low for t in tokens if t.low in _RELATIONAL),
        content=content, initials=initials, roles=_roles(tokens),
    )
