"""Deterministic hit verification: reject a cached query that asks something else.

Embeddings put "open on Sundays" next to "closed on Sundays". Cheap linguistic checks catch what
they blur: negation (negators, negative prefixes, antonyms and converse roles, opposite ends of a
scale), numbers and dates, named entities and argument order, scope (quantifiers by class, first/
last, comparatives and superlatives, a noun restricted on one side only: "my account" vs "my
savings account") and content (members of one closed class such as colours or meals, one noun
with two different modifiers, a compound whose head is gone on the other side: "my boat
insurance" vs "my boat", and, for queries that differ in one or two content words only, a
change that the sentence similarity does not vouch for).
"""

from __future__ import annotations

import difflib
import re
import threading
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache, partial

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


# ---------------------------------------------------------------- lexicons (general English)

_STOPWORDS = frozenset("""
a an the i me my mine myself you your yours we us our ours he him his she her they them their it
its this that these those there here is are was were be been being am do does did doing done can
could would should will shall may might must have has had having how what when where which who
whom whose why to of for in on at by with from into onto about as and or if so then too very
please thanks thank cheers hi hello hey um uh er erm like just okay ok yeah well quick sorry
bother wondering anyone someone something anything somewhere anywhere way process steps step
possible able available also
really actually usually typically generally normally currently still even kind sort bit
get go going make need needed want know tell let find see use give got set put
""".split())

# Verbs and adverbs that flip polarity like "not" does (counted with the negators).
_NEGATORS = frozenset("""
not no never none nothing nobody neither nor without non cannot stop avoid prevent quit cease
refuse deny reject decline ban forbid prohibit exclude
""".split())

_ANTONYMS = [
    ("open", "close"), ("open", "shut"), ("on", "off"), ("in", "out"), ("up", "down"),
    ("start", "stop"), ("start", "end"), ("start", "finish"), ("begin", "end"),
    ("allow", "ban"), ("allow", "forbid"), ("allow", "prohibit"), ("allow", "block"),
    ("allow", "deny"), ("permit", "prohibit"), ("permit", "ban"),
    ("accept", "decline"), ("accept", "reject"), ("accept", "refuse"),
    ("approve", "reject"), ("approve", "deny"), ("approve", "decline"), ("grant", "revoke"),
    ("grant", "deny"), ("add", "remove"), ("add", "delete"), ("add", "subtract"),
    ("include", "exclude"), ("include", "omit"), ("join", "leave"), ("join", "quit"),
    ("enter", "exit"), ("enter", "leave"), ("arrive", "depart"), ("arrival", "departure"),
    ("enrol", "withdraw"), ("enroll", "withdraw"), ("deposit", "withdraw"),
    ("pass", "fail"), ("win", "lose"), ("succeed", "fail"), ("success", "failure"),
    ("buy", "sell"), ("lend", "borrow"), ("send", "receive"), ("give", "take"),
    ("push", "pull"), ("import", "export"), ("upload", "download"),
    ("increase", "decrease"), ("increase", "reduce"), ("increase", "lower"),
    ("raise", "lower"), ("rise", "fall"), ("more", "less"), ("more", "fewer"),
    ("most", "least"), ("maximum", "minimum"), ("max", "min"), ("best", "worst"),
    ("better", "worse"), ("high", "low"), ("higher", "lower"), ("highest", "lowest"),
    ("big", "small"), ("large", "small"), ("bigger", "smaller"), ("larger", "smaller"),
    ("long", "short"), ("longer", "shorter"), ("fast", "slow"), ("quick", "slow"),
    ("early", "late"), ("earlier", "later"), ("first", "last"), ("before", "after"),
    ("above", "below"), ("over", "under"), ("inside", "outside"), ("internal", "external"),
    ("top", "bottom"), ("front", "back"), ("left", "right"), ("north", "south"),
    ("east", "west"), ("hot", "cold"), ("warm", "cold"), ("warm", "cool"), ("wet", "dry"),
    ("light", "dark"), ("light", "heavy"), ("hard", "soft"), ("full", "empty"),
    ("full", "part"), ("cheap", "expensive"), ("free", "paid"), ("rich", "poor"),
    ("good", "bad"), ("positive", "negative"), ("benefit", "drawback"),
    ("benefit", "downside"), ("benefit", "disadvantage"), ("advantage", "disadvantage"),
    ("pro", "con"), ("upside", "downside"), ("safe", "dangerous"), ("safe", "risky"),
    ("true", "false"), ("right", "wrong"), ("same", "different"), ("old", "new"),
    ("young", "old"), ("busy", "quiet"), ("loud", "quiet"), ("spicy", "mild"),
    ("sweet", "sour"), ("strong", "weak"), ("mandatory", "optional"),
    ("compulsory", "optional"), ("required", "optional"), ("public", "private"),
    ("online", "offline"), ("pause", "resume"), ("show", "hide"), ("visible", "hidden"),
    ("love", "hate"), ("remember", "forget"), ("gain", "lose"), ("profit", "loss"),
    ("credit", "debit"), ("man", "woman"), ("adult", "child"), ("male", "female"), ("boy", "girl"),
    ("husband", "wife"), ("mother", "father"), ("son", "daughter"), ("day", "night"),
    ("morning", "evening"), ("summer", "winter"), ("inbound", "outbound"),
    ("login", "logout"), ("keep", "discard"), ("save", "delete"), ("entry", "exit"),
    ("admit", "deny"), ("confirm", "cancel"), ("lock", "unlock"), ("mount", "unmount"),
    ("sunrise", "sunset"), ("import", "export"), ("popular", "unpopular"),
    # the two sides of one relation: a question about one is not about the other
    ("landlord", "tenant"), ("employer", "employee"), ("buyer", "seller"),
    ("lender", "borrower"), ("creditor", "debtor"), ("sender", "recipient"), ("host", "guest"),
    ("doctor", "patient"), ("teacher", "pupil"), ("teacher", "student"), ("parent", "child"),
    ("driver", "passenger"), ("earliest", "latest"),
    ("temporary", "permanent"), ("manual", "automatic"), ("fixed", "variable"),
    ("minor", "major"), ("junior", "senior"), ("beginner", "advanced"), ("urban", "rural"),
    ("collect", "deliver"), ("collection", "delivery"), ("income", "expense"),
    ("asset", "liability"), ("digital", "physical"),
]

# Near-synonyms common in requests: swapping one for another keeps the question.
_SYNONYMS = [
    ("change", "update", "modify", "edit", "amend"), ("get", "obtain", "receive"),
    ("begin", "start", "commence"), ("end", "finish"), ("buy", "purchase"),
    ("fix", "repair", "mend"), ("cost", "price", "charge", "fee"), ("shop", "store"),
    ("car", "vehicle"), ("child", "kid"), ("help", "assist", "support"),
    ("cancel", "terminate"), ("big", "large"), ("small", "little"), ("quick", "fast"),
    ("phone", "mobile", "cellphone"), ("email", "e-mail"), ("delete", "erase"),
    ("choose", "select", "pick"), ("show", "display"), ("need", "require"), ("new", "replacement"),
    ("submit", "send", "lodge"), ("dispute", "challenge", "contest"),
]

# Prefix pairs that make opposites of one root: include/exclude, upgrade/downgrade ...
_OPPOSING_PREFIXES = [
    ("in", "ex"), ("im", "ex"), ("in", "de"), ("en", "dis"), ("en", "de"), ("up", "down"),
    ("over", "under"), ("pre", "post"), ("max", "min"), ("in", "out"),
]
_NEGATIVE_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non", "de", "mis")

# Scales whose ends oppose, as (dimension, sign): "smaller ... bring it down" asks the opposite
# of "increase", though no single word pair is a listed antonym.
_POLES = {
    ("size", +1): "increase raise rise high higher highest more big bigger biggest large larger "
                  "largest extend boost grow expand upgrade maximum max most long longer up",
    ("size", -1): "decrease reduce lower low lowest less fewer small smaller smallest shrink cut "
                  "downgrade minimum min least short shorter down",
    ("quality", +1): "good great excellent outstanding best better positive properly correctly "
                     "safe healthy success successful superior",
    ("quality", -1): "bad poor inadequate worst worse negative fault faulty broken wrong unsafe "
                     "failing failure damaged dangerous inferior",
}
# Closed classes of co-hyponyms: trading one member for another asks about something else
# ("red" vs "blue" light). Aliases of one member share a tuple.
_CONTRAST_SETS = [
    [("red",), ("orange",), ("yellow",), ("green",), ("blue",), ("purple",), ("pink",),
     ("black",), ("white",), ("grey", "gray"), ("brown",), ("silver",), ("gold", "golden")],
    [("glass",), ("plastic",), ("paper",), ("cardboard",), ("metal",), ("steel",),
     ("aluminium", "aluminum"), ("wood", "wooden"), ("cotton",), ("wool", "woollen"),
     ("leather",), ("silk",), ("ceramic",)],
    [("breakfast",), ("brunch",), ("lunch",), ("dinner", "supper"), ("tea",)],
    [("undergraduate", "bachelor", "bachelors", "ba", "bsc"),
     ("postgraduate", "master", "masters", "msc", "mba"), ("phd", "doctorate", "doctoral")],
    [("economy",), ("business",), ("premium",)],
    [("primary",), ("secondary",)],
    [("north", "northern"), ("south", "southern"), ("east", "eastern"), ("west", "western")],
    [("hourly", "hour"), ("daily", "day"), ("weekly", "week"), ("monthly", "month"),
     ("quarterly", "quarter"), ("yearly", "year", "annual", "annually")],
    [("mother", "mum", "mom"), ("father", "dad"), ("son",), ("daughter",), ("brother",),
     ("sister",), ("husband",), ("wife",), ("grandmother", "grandma", "gran"),
     ("grandfather", "grandpa", "grandad"), ("aunt",), ("uncle",)],
    [("abroad", "overseas", "international", "foreign"), ("home", "domestic", "local")],
    [("bus",), ("train",), ("tram",), ("coach",), ("taxi", "cab"), ("ferry",), ("plane",),
     ("car",), ("bike", "bicycle"), ("motorbike", "motorcycle"), ("van",), ("lorry", "truck")],
]

# Quantifiers and qualifiers: one on one side only changes what is asked. Words that share a
# class ask alike: "every room" / "all rooms" / "each room", "extra" / "another" / "more".
_SCOPE_CLASSES = {
    "all": ("all",), "entire": ("all",), "whole": ("all",), "every": ("all", "each"),
    "each": ("each",), "per": ("each",), "some": ("some",), "several": ("some",),
    "extra": ("extra",), "additional": ("extra",), "another": ("extra",), "more": ("extra",),
    "first": ("first",), "last": ("last",), "final": ("last",),
}
_SCOPE = frozenset("""
only most least many much few fewer both either other own except than less
""".split()) | frozenset(_SCOPE_CLASSES)
# Common gradable adjectives: a comparative or superlative on one side only ("the cheapest
# flight" vs "a flight") narrows the question. Left out: good/bad (idioms: "the best way to"),
# and those whose -er form is also a verb or a noun (lower, cleaner, lighter, cooler).
_GRADABLE = """
big busy cheap close cold deep early easy fast fine fresh hard healthy heavy high
hot large late long loud near new nice old poor quick quiet rich safe short simple slow small
soon strong tall thick thin tight warm weak wide young
""".split()
# Relational words: only a contrast (within vs after) changes what is asked.
_RELATIONAL = frozenset("within after before until over under above below between".split())

# Phrase structure, as far as word classes tell it. A determiner opens a noun phrase; so does
# a preposition where modifiers are compared ("for mature students").
_NOUN_PHRASE_START = frozenset(
    "a an the my your our their his her its this these those any".split()
)
_PREPOSITIONS = frozenset("""
about above across after against along among around at before behind below beneath beside
between beyond by despite down during for from in inside into like near of off on onto out
outside over past per since than through throughout till to toward towards under until up upon
via with within without
""".split())
_MODIFIER_SLOT = _NOUN_PHRASE_START | {"that"} | frozenset(
    "for on in at with from about by of during via through into without within across".split()
)
# In a question led by these, the main verb follows the subject: "does my pet insurance cover".
_AUXILIARIES = frozenset("do does did can could will would should may might must shall".split())
_BE = frozenset("is are was were".split())
_PRONOUNS = frozenset("i you we he she they it".split())

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1000000, "billion": 1000000000, "dozen": 12, "second": 2, "third": 3,
    "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
    "eleventh": 11, "twelfth": 12,
}
# "one" is a pronoun after these ("which one", "a new one") and before "of".
_ONE_PRONOUN_BEFORE = frozenset(
    "a the which this that new each any no every some another other only right same own".split()
)

_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_MONTHS = (
    "january february march april may june july august september october november december"
).split()
_DATE_WORDS = {
    **{d: d for d in _WEEKDAYS}, **{m: m for m in _MONTHS if m != "may"},
    "weekday": "weekday", "weekend": "weekend", "weeknight": "weekday", "today": "today",
    "tomorrow": "tomorrow", "yesterday": "yesterday", "tonight": "pm", "morning": "am",
    "afternoon": "pm", "evening": "pm", "night": "pm", "midnight": "am", "noon": "pm",
    "midday": "pm", "spring": "spring", "summer": "summer", "autumn": "autumn",
    "winter": "winter",
}
_RELATIVE = frozenset("last next this previous coming same".split())
_PERIODS = frozenset("day week month year weekend".split())

# Names of one country: "the US" and "America" name the same place.
_COUNTRY_ALIASES = [("us", "usa", "america"), ("uk", "britain")]

_CURRENCIES = {
    "usd": ("dollar", "$"), "gbp": ("pound", "£", "sterl"), "eur": ("euro", "€"),
    "jpy": ("yen",), "cad": ("canadian",), "aud": ("australian",),
}

_IRREGULAR = {
    "children": "child", "men": "man", "women": "woman", "people": "person", "feet": "foot",
    "teeth": "tooth", "mice": "mouse", "geese": "goose", "forgot": "forget",
    "forgotten": "forget", "lost": "lose", "lose": "lose", "losing": "lose",
    "closed": "close", "shut": "shut", "kids": "child", "kid": "child", "better": "better",
    "paid": "paid", "sold": "sell", "bought": "buy", "sent": "send", "left": "left",
    "began": "begin", "won": "win", "lent": "lend", "mild": "mild",
}


def stem(word: str) -> str:
    """A light suffix stripper: plurals, -ing, -ed, final e (enough to match word forms)."""
    w = word.lower()
    w = _IRREGULAR.get(w, w)
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith("sses"):
        w = w[:-2]
    elif len(w) > 4 and w.endswith("es") and w[-3] in "xz" or w.endswith(("ches", "shes")):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 4 and w.endswith("ied"):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith("ed"):
        w = w[:-2]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsaeiou":
        w = w[:-1]  # stopp -> stop, but keep "call", "less"
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


_ANTONYM_STEMS = frozenset(
    frozenset((stem(a), stem(b))) for a, b in _ANTONYMS if stem(a) != stem(b)
)
_NEGATOR_STEMS = frozenset(stem(w) for w in _NEGATORS) | _NEGATORS
_SCOPE_STEMS = frozenset(stem(w) for w in _SCOPE)
_COUNTRY_OF = {alias: group for group in _COUNTRY_ALIASES for alias in group}
_CURRENCY_OF = {stem(alias): code for code, aliases in _CURRENCIES.items() for alias in aliases}
_SYNONYM_OF = {stem(w): i for i, group in enumerate(_SYNONYMS) for w in group}
_STOP_STEMS = frozenset(stem(w) for w in _STOPWORDS) | _STOPWORDS
_POLE_OF = {stem(w): pole for pole, words in _POLES.items() for w in words.split()}
_CONTRAST_OF = {
    stem(alias): (i, j) for i, group in enumerate(_CONTRAST_SETS)
    for j, member in enumerate(group) for alias in member
}


def _degree_forms(base: str) -> tuple[str, str]:
    """Comparative and superlative of a one- or two-syllable adjective: big -> bigger, biggest."""
    if base.endswith("e"):
        return base + "r", base + "st"
    if base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ier", base[:-1] + "iest"
    vowels = [c for c in base if c in "aeiou"]
    if len(vowels) == 1 and base[-2] in "aeiou" and base[-1] not in "aeiouwxy":
        base += base[-1]  # big -> bigg-er
    return base + "er", base + "est"


_DEGREE_OF = {form: base for base in _GRADABLE for form in _degree_forms(base)}


def _edit_distance_le(a: str, b: str, limit: int) -> bool:
    """Damerau-Levenshtein(a, b) <= limit (adjacent transpositions count one)."""
    if abs(len(a) - len(b)) > limit:
        return False
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return False
        prev2, prev = prev, cur
    return prev[-1] <= limit


# ---------------------------------------------------------------- analysis of one text

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


# ---------------------------------------------------------------- the checks


def _prefix_opposites(x: str, y: str) -> bool:
    for p in _NEGATIVE_PREFIXES:
        for longer, shorter in ((x, y), (y, x)):
            if len(shorter) >= 3 and longer == p + shorter:
                return True
    for p, q in _OPPOSING_PREFIXES:
        for u, v in ((x, y), (y, x)):
            if u.startswith(p) and v.startswith(q) and len(u) - len(p) >= 3:
                if u[len(p):] == v[len(q):]:
                    return True
    return False


def _check_negation(a: Analysis, b: Analysis) -> str | None:
    if a.negation % 2 != b.negation % 2:
        return f"negators: {a.negation} vs {b.negation}"
    words_a = {t.stem for t in a.tokens}
    words_b = {t.stem for t in b.tokens}
    for x in words_a - words_b:
        for y in words_b - words_a:
            if frozenset((x, y)) in _ANTONYM_STEMS or _prefix_opposites(x, y):
                return f"opposites: {x!r} vs {y!r}"
    poles_a = {_POLE_OF[w] for w in words_a - words_b if w in _POLE_OF}
    poles_b = {_POLE_OF[w] for w in words_b - words_a if w in _POLE_OF}
    for dim, sign in poles_a - poles_b:
        if (dim, -sign) in poles_b - poles_a:
            return f"opposite ends of {dim}"
    return None


def _check_numbers(a: Analysis, b: Analysis) -> str | None:
    if Counter(a.numbers) != Counter(b.numbers):
        return f"numbers: {list(a.numbers)} vs {list(b.numbers)}"
    if a.dates != b.dates:
        return f"dates/times: {sorted(a.dates)} vs {sorted(b.dates)}"
    return None


def _acronym_in(acronym: str, initials: tuple[str, ...]) -> bool:
    if not 2 <= len(acronym) <= 6:
        return False
    joined = "".join(initials)
    return acronym in joined and any(
        "".join(initials[i:i + n]) == acronym
        for n in range(1, len(acronym) + 1)
        for i in range(len(initials) - n + 1)
    )


def _entity_present(entity: str, other: Analysis) -> bool:
    if entity.startswith('"'):
        return all(w in other.haystack or stem(w) in other.haystack for w in entity[1:].split())
    if entity in other.haystack or stem(entity) in other.haystack:
        return True
    if entity in _CURRENCIES and any(
        alias in other.haystack or stem(alias) in other.haystack for alias in _CURRENCIES[entity]
    ):
        return True
    if any(alias in other.entities for alias in _COUNTRY_OF.get(entity, ())):
        return True
    return entity.isalnum() and _acronym_in(entity, other.initials)


def _check_entities(a: Analysis, b: Analysis) -> str | None:
    for x, y in ((a, b), (b, a)):
        missing = [e.strip('"') for e in x.entities if not _entity_present(e, y)]
        if missing:
            return f"entities only on one side: {missing}"
    order_a = list(dict.fromkeys(e for e in a.entities if e in b.entities))
    order_b = list(dict.fromkeys(e for e in b.entities if e in a.entities))
    if len(order_a) >= 2 and order_a != order_b:
        return f"entity order: {order_a} vs {order_b}"
    (from_a, to_a), (from_b, to_b) = a.roles, b.roles
    if from_a & to_b and to_a & from_b and not from_a & from_b:
        return f"roles swapped: from {sorted(from_a)} to {sorted(to_a)}"
    return None


def _scope_classes(word: str) -> tuple[str, ...]:
    return _SCOPE_CLASSES.get(word, (word,))


def _check_scope(a: Analysis, b: Analysis) -> str | None:
    classes_a = {c for w in a.scope for c in _scope_classes(w)}
    classes_b = {c for w in b.scope for c in _scope_classes(w)}
    unmatched = sorted(
        w for x, other in ((a, classes_b), (b, classes_a)) for w in x.scope
        if not other.intersection(_scope_classes(w))
    )
    if unmatched:
        return f"quantifiers/qualifiers: {unmatched}"
    for x, y in ((a, b), (b, a)):
        if x.degrees and not y.degrees:
            bases = [w for w in sorted(x.degrees) if not _degree_matched(w, y)]
            if bases:
                return f"comparative/superlative of {bases} on one side"
    if a.relational and b.relational and a.relational != b.relational:
        return f"relations: {sorted(a.relational)} vs {sorted(b.relational)}"
    return None


def _degree_matched(base: str, other: Analysis) -> bool:
    """``base`` in ``other`` in any form, or a synonym or a word of the same end of its scale:
    "quickest" vs "quickly" or "fast", "a higher tier" vs "upgrade"."""
    group = _SYNONYM_OF.get(stem(base))
    pole = _POLE_OF.get(stem(base))
    return any(
        w.startswith(base) or group is not None and _SYNONYM_OF.get(w) == group
        or pole is not None and _POLE_OF.get(w) == pole
        for w in other.haystack
    )


def _check_contrast(a: Analysis, b: Analysis) -> str | None:
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

    def _checks(self, similarity: float | None):
        """(rule name, reason, check) in the order ``verify`` applies them."""
        return (
            ("negation", "negation", _check_negation),
            ("number_date", "number_date", _check_numbers),
            ("entity", "entity", _check_entities),
            ("scope", "scope", _check_scope),
            ("restriction", "scope", partial(self._check_restriction, similarity=similarity)),
            ("contrast", "content", _check_contrast),
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
