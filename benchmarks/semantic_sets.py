"""Labelled query-pair sets written by rule from public QA questions (NQ-open, HotpotQA).

Nobody designed the verifier on these questions. Each source question ``a`` gets pairs whose
``b`` is made from it by one documented transformation (``RULES`` below names them):

- ``paraphrase`` (same answer): a question-word rewrite ("who wrote X" -> "who is the author of
  X"), a synonym swap from a short table (movie/film ...) or a polite wrapper ("can you tell me
  X"), at least one of them; weakness: rule-made positives are closer in wording to ``a`` than
  a person's paraphrase, so recall on them flatters every system;
- ``near_repeat`` (same answer): the question again with one surface slip (first letter's case,
  question mark, a dropped "the", two letters swapped in a word of 6+ letters); sources
  alternate between a paraphrase and a near repeat;
- ``negation``: the first auxiliary negated ("is" -> "isn't"), else "never" after the question
  word ("who got X" -> "who never got X");
- ``number_date``: a year moved by 1-10, a number by 1-3, an ordinal or number word changed;
- ``entity_swap``: HotpotQA: a capitalised name (not the first word) replaced by a name from
  another question; NQ (lower-case): the phrase after the last preposition replaced by that of
  another question ("... in dragon ball z" -> "... in the curse of oak island");
- ``scope``: a restriction appended ("... in canada", "... for children");
- ``neighbour`` (NQ only, the one natural negative): the question of the held-apart pool (not a
  source) sharing most content words with ``a`` whose answers share none with ``a``'s.

Split: a source question and all its pairs go to ``heldout`` when sha256(seed:source) is odd,
else ``train``; it does not depend on order or on the other questions.

    python -m blendcache.benchmarks.semantic_sets --nq ../shared/data/rag/nq_open_oracle.jsonl.gz \
        --hotpot ../shared/data/rag/hotpotqa_distractor_100.json --out /tmp/semantic_sets
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SEED = 16
NQ_SOURCES = 1000  # the rest of NQ-open is the neighbour pool
POSITIVE_KINDS = ("paraphrase", "near_repeat")
NEGATIVE_KINDS = ("negation", "entity_swap", "number_date", "scope", "neighbour")

# (pattern on the lower-cased question, replacement): "who wrote X" -> "who is the author of X"
_REWRITES = [
    (r"^who wrote (.+)", r"who is the author of \1"),
    (r"^who sings (.+)", r"who is the singer of \1"),
    (r"^who sang (.+)", r"who was the singer of \1"),
    (r"^who plays (.+)", r"which actor plays \1"),
    (r"^who played (.+)", r"which actor played \1"),
    (r"^who is (.+)", r"who's \1"),
    (r"^what is (.+)", r"what's \1"),
    (r"^when did (.+)", r"in what year did \1"),
    (r"^when was (.+)", r"in what year was \1"),
    (r"^where is (.+)", r"whereabouts is \1"),
    (r"^where was (.+)", r"whereabouts was \1"),
    (r"^how many (.+)", r"what number of \1"),
]
_SYNONYMS = [("movie", "film"), ("film", "movie"), ("tv show", "television show"),
             ("largest", "biggest"), ("biggest", "largest"), ("the us", "the united states"),
             ("the uk", "the united kingdom"), ("begin", "start"), ("started", "began"),
             ("died", "passed away"), ("created", "made"), ("invented", "came up with")]
_WRAPPERS = ["can you tell me {q}", "i'd like to know {q}", "do you know {q}",
             "quick question: {q}", "{q} please"]
_AUX_NEGATED = {"is": "isn't", "was": "wasn't", "are": "aren't", "were": "weren't",
                "does": "doesn't", "did": "didn't", "do": "don't", "can": "can't",
                "will": "won't", "has": "hasn't", "have": "haven't"}
_ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]
_NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_SCOPES = [" in canada", " in india", " in europe", " in australia", " for children",
           " in the northern hemisphere", " outside the united states", " during world war ii"]
_PREPOSITION_TAIL = re.compile(r"^(.*\b(?:of|in|by|for|from|on|at)\s)(.+)$")
_NAME = re.compile(r"(?<!^)(?<![.?!] )\b([A-Z][\w'&.-]*(?:\s+[A-Z][\w'&.-]*)*)")
_STOP = frozenset("""a an the of in on at by for from to and or is was are were be been do does
did what who whom whose which when where why how many much it its this that these those with as
s""".split())


@dataclass(frozen=True)
class Source:
    """A question and its gold answers (lower-cased)."""

    id: str
    question: str
    answers: frozenset[str]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _content(text: str) -> frozenset[str]:
    return frozenset(w for w in _words(text) if w not in _STOP)


def paraphrase(question: str, rng: random.Random) -> str:
    """``question`` reworded by a rewrite or a synonym swap (else a wrapper), maybe wrapped;
    the case of names is kept."""
    text = " ".join(question.split()).rstrip("?").strip()
    changed = None
    for pattern, repl in _REWRITES:
        if re.match(pattern, text, flags=re.IGNORECASE):
            changed = re.sub(pattern, repl, text, flags=re.IGNORECASE)
            break
    if changed is None:
        for old, new in _SYNONYMS:
            if re.search(rf"\b{old}\b", text, flags=re.IGNORECASE):
                changed = re.sub(rf"\b{old}\b", new, text, count=1, flags=re.IGNORECASE)
                break
    if changed is None or rng.random() < 0.5:
        base = changed or text
        changed = rng.choice(_WRAPPERS).format(q=base[:1].lower() + base[1:])
    return changed + "?" if question.rstrip().endswith("?") else changed


def near_repeat(question: str, rng: random.Random) -> str:
    """``question`` asked again with a surface slip: case of the first letter flipped, the
    question mark dropped or added, "the" dropped, or two inner letters of a word swapped."""
    text = " ".join(question.split())
    edits = ["case", "mark"]
    if re.search(r"\bthe\b", text, flags=re.IGNORECASE):
        edits.append("article")
    if [w for w in text.split() if len(w) >= 6 and w.isalpha()]:
        edits.append("typo")
    edit = rng.choice(edits)
    if edit == "case":
        return (text[:1].lower() if text[:1].isupper() else text[:1].upper()) + text[1:]
    if edit == "mark":
        return text[:-1].rstrip() if text.endswith("?") else text + "?"
    if edit == "article":
        return re.sub(r"\bthe\s+", "", text, count=1, flags=re.IGNORECASE)
    words = text.split()
    i = rng.choice([k for k, w in enumerate(words) if len(w) >= 6 and w.isalpha()])
    j = rng.randint(1, len(words[i]) - 3)
    w = words[i]
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def negate(question: str) -> str | None:
    words = question.split()
    for i, w in enumerate(words[:4]):
        if w.lower() in _AUX_NEGATED:
            return " ".join(words[:i] + [_AUX_NEGATED[w.lower()]] + words[i + 1:])
    if len(words) > 2 and words[0].lower() in ("who", "what", "which"):
        return " ".join(words[:1] + ["never"] + words[1:])
    return None


def change_number(question: str, rng: random.Random) -> str | None:
    """A year moved by 1-10, a number by 1-3, else an ordinal or number word changed."""
    year = re.search(r"\b(1[5-9]\d\d|20\d\d)\b", question)
    if year:
        moved = int(year.group(1)) + rng.choice([-1, 1]) * rng.randint(1, 10)
        return question[:year.start()] + str(moved) + question[year.end():]
    number = re.search(r"\b(\d{1,3})\b", question)
    if number:
        moved = int(number.group(1)) + rng.randint(1, 3)
        return question[:number.start()] + str(moved) + question[number.end():]
    for table in (_ORDINALS, _NUMBER_WORDS):
        for i, word in enumerate(table):
            hit = re.search(rf"\b{word}\b", question, flags=re.IGNORECASE)
            if hit:
                other = table[(i + rng.randint(1, len(table) - 1)) % len(table)]
                return question[:hit.start()] + other + question[hit.end():]
    return None


def swap_entity(question: str, other: str, *, cased: bool) -> str | None:
    """A name of ``question`` replaced by one of ``other`` (cased), else the phrase after the
    last preposition replaced by ``other``'s."""
    if cased:
        mine, theirs = _NAME.findall(question), _NAME.findall(other)
        mine = [n for n in mine if n.lower() not in other.lower()]
        if mine and theirs:
            return question.replace(mine[-1], theirs[0], 1)
        return None
    mine = _PREPOSITION_TAIL.match(question.rstrip("?"))
    theirs = _PREPOSITION_TAIL.match(other.rstrip("?"))
    if mine and theirs and mine.group(2) != theirs.group(2):
        return mine.group(1) + theirs.group(2)
    return None


def widen_scope(question: str, rng: random.Random) -> str:
    mark = "?" if question.rstrip().endswith("?") else ""
    return question.rstrip().rstrip("?") + rng.choice(_SCOPES) + mark


def neighbour(source: Source, pool: Sequence[Source]) -> str | None:
    """The pool question sharing most content words (>= 2) with ``source``, answers disjoint."""
    mine = _content(source.question)
    best, best_n = None, 1
    for cand in pool:
        n = len(mine & _content(cand.question))
        if n > best_n and not (cand.answers & source.answers):
            best, best_n = cand.question, n
    return best


def _negative(kind: str, src: Source, rng: random.Random, others: Sequence[Source],
              pool: Sequence[Source], cased: bool) -> str | None:
    if kind == "negation":
        return negate(src.question)
    if kind == "number_date":
        return change_number(src.question, rng)
    if kind == "entity_swap":
        return swap_entity(src.question, rng.choice(others).question, cased=cased)
    if kind == "scope":
        return widen_scope(src.question, rng)
    return neighbour(src, pool) if pool else None


def build_pairs(sources: Sequence[Source], *, name: str, seed: int = SEED, positives: int = 1,
                negatives: int = 1, pool: Sequence[Source] = (), cased: bool = False
                ) -> list[dict]:
    """Per source: ``positives`` positives (paraphrase and near repeat in turn) and
    ``negatives`` negatives of different kinds
    (kinds taken in turn from ``NEGATIVE_KINDS``, the first that applies)."""
    rng = random.Random(f"{seed}:{name}")
    rows: list[dict] = []
    counts: Counter[str] = Counter()
    kinds = [k for k in NEGATIVE_KINDS if k != "neighbour" or pool]
    for i, src in enumerate(sources):
        made: list[tuple[str, str]] = []
        for k in range(positives):
            # alternate between sources (and between a source's positives)
            kind = ("paraphrase", "near_repeat")[(i + k) % 2]
            b = (paraphrase if kind == "paraphrase" else near_repeat)(src.question, rng)
            if b != src.question and b not in (m[1] for m in made):
                made.append((kind, b))
        for k in range(len(kinds)):
            if sum(1 for m in made if m[0] not in POSITIVE_KINDS) == negatives:
                break
            kind = kinds[(i + k) % len(kinds)]
            b = _negative(kind, src, rng, sources, pool, cased)
            if b and b.lower().strip() != src.question.lower().strip():
                made.append((kind, b))
        split = "heldout" if _held_out(seed, f"{name}:{src.id}") else "train"
        for kind, b in made:
            counts[kind] += 1
            rows.append({"id": f"{name}-{kind}-{counts[kind]:04d}", "category": kind,
                         "a": src.question, "b": b, "same_answer": kind in POSITIVE_KINDS,
                         "source": src.id, "split": split})
    return rows


def _held_out(seed: int, key: str) -> bool:
    return hashlib.sha256(f"{seed}:{key}".encode()).digest()[-1] % 2 == 1


def load_nq(path: str | Path) -> list[Source]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [Source(f"nq{i}", r["question"].strip(), frozenset(a.lower() for a in r["answers"]))
            for i, r in enumerate(rows)]


def load_hotpot(path: str | Path) -> list[Source]:
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    return [Source(str(r["id"]), r["question"].strip(),
                   frozenset(a.lower() for a in r["answers"])) for r in rows]


def build_sets(nq_path: str | Path, hotpot_path: str | Path, *, seed: int = SEED,
               nq_sources: int = NQ_SOURCES) -> dict[str, list[dict]]:
    """``{"nq_rule": rows, "hotpot_rule": rows}``: ``nq_sources`` sampled NQ-open questions,
    one positive (paraphrase or near repeat, alternately) and one negative each; every HotpotQA
    question, two positives (one of each) and three negatives of different kinds.

    More sources give a longer stream: the sample's first ``NQ_SOURCES`` are the default set's
    sources (the shuffle is the seed's), and a source falls in the same half whatever the
    count, so the held-out half of a larger set holds no source of the default train half
    (its pairs may be written differently: the rules draw from the other questions)."""
    nq = load_nq(nq_path)
    if not 0 < nq_sources < len(nq):
        raise ValueError(f"nq_sources must be in 1..{len(nq) - 1} (the rest is the pool)")
    order = list(range(len(nq)))
    random.Random(seed).shuffle(order)
    sources = [nq[i] for i in sorted(order[:nq_sources])]
    pool = [nq[i] for i in sorted(order[nq_sources:])]
    hotpot = load_hotpot(hotpot_path)
    return {
        "nq_rule": build_pairs(sources, name="nq", seed=seed, pool=pool),
        "hotpot_rule": build_pairs(hotpot, name="hotpot", seed=seed, positives=2, negatives=3,
                                   cased=True),
    }


def describe(rows: Sequence[dict]) -> dict:
    """Counts per split and kind."""
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        out.setdefault(row["split"], Counter())[row["category"]] += 1
    return {split: dict(sorted(c.items())) for split, c in sorted(out.items())}


def write_sets(sets: dict[str, list[dict]], out_dir: str | Path, *, inputs: dict) -> None:
    """DIR/NAME/{train,heldout}.jsonl and DIR/NAME/README.json (how made, counts)."""
    for name, rows in sets.items():
        folder = Path(out_dir) / name
        folder.mkdir(parents=True, exist_ok=True)
        for split in ("train", "heldout"):
            lines = [json.dumps(r, ensure_ascii=False) for r in rows if r["split"] == split]
            (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        readme = {"made_by": "python -m blendcache.benchmarks.semantic_sets", "inputs": inputs,
                  "seed": SEED, "how": __doc__, "counts": describe(rows)}
        (folder / "README.json").write_text(json.dumps(readme, indent=2) + "\n",
                                            encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nq", required=True, help="nq_open_oracle.jsonl.gz")
    parser.add_argument("--hotpot", required=True, help="hotpotqa_distractor_100.json")
    parser.add_argument("--out", required=True, help="folder to write the sets into")
    parser.add_argument("--nq-sources", type=int, default=NQ_SOURCES,
                        help=f"NQ-open questions made into pairs (default {NQ_SOURCES}; the "
                             "rest are the neighbour pool)")
    args = parser.parse_args(argv)
    sets = build_sets(args.nq, args.hotpot, nq_sources=args.nq_sources)
    write_sets(sets, args.out, inputs={"nq": Path(args.nq).name,
                                       "hotpot": Path(args.hotpot).name,
                                       "nq_sources": args.nq_sources})
    for name, rows in sets.items():
        print(name, json.dumps(describe(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
