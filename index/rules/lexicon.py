"""The word lists the rules read (general English) and ``stem``: negators, antonyms and
converse roles, synonyms, opposing prefixes, scales, closed classes, quantifiers, units, dates."""

from __future__ import annotations

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
