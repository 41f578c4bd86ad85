"""Per-category similarity thresholds from labelled query pairs, and their TOML section.

For each category: the lowest threshold whose precision over the pairs it would serve (similarity
>= threshold and, with ``verify``, passed by the verifier) reaches the target with enough support.

What "category" means here: a pair file's ``category`` is taken as a *serving* category only when
every category in the file has pairs of both labels. Otherwise (fow_cache, whose ``category`` is
the kind of pair: paraphrase, negation ...) the kinds are pooled into ``default_category``, since
a serving category receives all kinds at once and a threshold must hold for their mix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blendcache.config import CategoryConfig
from blendcache.errors import ConfigError
from blendcache.index.verifier import Verifier

FALLBACK_THRESHOLD = 0.95


@dataclass(frozen=True)
class LabelledPair:
    """Two queries and whether one's answer serves the other."""

    a: str
    b: str
    same: bool
    category: str | None = None
    id: str | None = None


def load_pairs(path: str | Path) -> list[LabelledPair]:
    """Pairs from JSONL: ``{a, b, same_answer, category?}`` or ``{text_a, text_b, label}``."""
    pairs = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if "a" in row and "b" in row and "same_answer" in row:
                a, b, same = row["a"], row["b"], row["same_answer"]
            elif "text_a" in row and "text_b" in row and "label" in row:
                a, b, same = row["text_a"], row["text_b"], row["label"]
            else:
                raise ConfigError(f"{path}:{lineno}: need a/b/same_answer or text_a/text_b/label")
            pairs.append(LabelledPair(
                a=a, b=b, same=bool(int(same)) if isinstance(same, str) else bool(same),
                category=row.get("category"), id=row.get("id"),
            ))
    return pairs


def serving_groups(
    pairs: Sequence[LabelledPair], default_category: str = "default"
) -> dict[str, list[int]]:
    """Pair indices per serving category (see the module docstring for the rule)."""
    by_cat: dict[str, list[int]] = {}
    for i, pair in enumerate(pairs):
        by_cat.setdefault(pair.category or default_category, []).append(i)
    both_labels = all(
        {pairs[i].same for i in idx} == {True, False} for idx in by_cat.values()
    )
    if both_labels:
        return by_cat
    return {default_category: list(range(len(pairs)))}


def pick_threshold(
    sims: np.ndarray,
    accepted: np.ndarray,
    same: np.ndarray,
    *,
    target_precision: float,
    min_support: int,
    grid: np.ndarray | None = None,
) -> float | None:
    """Lowest threshold on ``grid`` with precision >= target over >= ``min_support`` hits."""
    grid = np.round(np.arange(0.50, 0.991, 0.01), 2) if grid is None else grid
    for threshold in grid:
        served = (sims >= threshold) & accepted
        n = int(served.sum())
        if n >= min_support and same[served].mean() >= target_precision:
            return float(threshold)
    return None


def calibrate(
    pairs_path: str | Path,
    *,
    target_precision: float | Mapping[str, float],
    embedder,
    verify: bool = True,
    verifier: Verifier | None = None,
    default_category: str = "default",
    min_support: int = 20,
    fallback: float = FALLBACK_THRESHOLD,
) -> dict[str, float]:
    """Threshold per serving category; ``fallback`` where no threshold meets the target.
    ``target_precision``: one target for every category, or one per category name (a category
    it does not name gets the ``"*"`` entry, else 0.95)."""
    pairs = load_pairs(pairs_path)
    if not pairs:
        raise ConfigError(f"{pairs_path}: no pairs")
    vec_a = embedder.embed([p.a for p in pairs])
    vec_b = embedder.embed([p.b for p in pairs])
    sims = np.einsum("nd,nd->n", vec_a, vec_b)  # (n,)
    if verify:
        verifier = verifier or Verifier(vocabulary=getattr(embedder, "vocabulary", None))
        accepted = np.array([
            verifier.verify(p.b, p.a, similarity=float(s)).accepted for p, s in zip(pairs, sims)
        ])
    else:
        accepted = np.ones(len(pairs), dtype=bool)
    same = np.array([p.same for p in pairs])
    out = {}
    for category, idx in serving_groups(pairs, default_category).items():
        idx = np.asarray(idx)
        threshold = pick_threshold(
            sims[idx], accepted[idx], same[idx],
            target_precision=_target(target_precision, category), min_support=min_support,
        )
        out[category] = fallback if threshold is None else threshold
    return out


def _target(target_precision: float | Mapping[str, float], category: str) -> float:
    if isinstance(target_precision, Mapping):
        return float(target_precision.get(category, target_precision.get("*", 0.95)))
    return float(target_precision)


def write_thresholds(
    config_toml_path: str | Path,
    thresholds: dict[str, float],
    *,
    base: Sequence[CategoryConfig] = (),
) -> None:
    """Merge ``thresholds`` into the TOML file at ``config_toml_path`` (created if missing):
    an existing ``[[semantic.categories]]`` table of the same name gets its ``threshold``
    replaced, everything else in the file (other sections, keys, comments) is kept; a category
    the file lacks is appended with its other fields from ``base`` (or the defaults)."""
    import tomlkit

    path = Path(config_toml_path)
    try:
        doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else (
            tomlkit.document())
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path}: not valid TOML, nothing written: {exc}") from exc
    semantic = doc.setdefault("semantic", tomlkit.table())
    tables = semantic.setdefault("categories", tomlkit.aot())
    by_name = {cat.name: cat for cat in base}
    for name, threshold in thresholds.items():
        table = next((t for t in tables if t.get("name") == name), None)
        if table is None:
            table = _category_table(by_name.get(name, CategoryConfig(name=name)))
            tables.append(table)
        table["threshold"] = round(float(threshold), 4)
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")


def _category_table(cat: CategoryConfig):
    """A new ``[[semantic.categories]]`` table with ``cat``'s fields."""
    import tomlkit

    table = tomlkit.table()
    table["name"] = cat.name
    table["ttl_s"] = float(cat.ttl_s)  # tomlkit writes inf as TOML's inf
    table["max_entries"] = cat.max_entries
    table["eviction"] = cat.eviction
    table["context_sensitive"] = cat.context_sensitive
    if cat.recompute_ratio is not None:
        table["recompute_ratio"] = cat.recompute_ratio
    if cat.examples:
        table["examples"] = list(cat.examples)
    return table
