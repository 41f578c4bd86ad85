"""``blendcache stats`` as text: the figures of GET /v1/blendcache/stats as plain tables (the
admin page is later work; these are the same numbers). An API key's view has its own tenant's
rows only; the admin token's (or an open server's) adds per-category outcomes, both caches and
the chunk tiers."""

from __future__ import annotations

from blendcache.client.results import Stats

OUTCOMES = ("semantic-hit", "blend", "miss")


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def table(header: list[str], rows: list[list]) -> str:
    """Columns padded to their widest cell: numbers right-aligned, text left."""
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [all(_number(row[i]) for row in cells[1:]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if right else c.ljust(w)
                       for c, w, right in zip(row, widths, numeric)).rstrip() for row in cells]
    return "\n".join(lines)


def _number(cell: str) -> bool:
    return cell.rstrip("%").replace(".", "", 1).isdigit() or cell == "-"


def format_stats(stats: Stats) -> str:
    parts = [_tenants(stats)]
    if stats.categories is not None:
        parts.append(_categories(stats))
    parts.append(_entries(stats))
    if stats.semantic_cache is not None:
        parts.append(_semantic(stats.semantic_cache))
    if stats.chunk_cache is not None:
        parts.append(_tiers(stats.chunk_cache))
    return "\n\n".join(parts) + "\n"


def _tenants(stats: Stats) -> str:
    rows = [[t.name, t.requests, *(t.outcomes.get(o, 0) for o in OUTCOMES),
             _pct(t.outcomes.get("semantic-hit", 0), t.requests),
             _pct(t.outcomes.get("blend", 0), t.requests), t.tokens_reused, t.tokens_recomputed]
            for t in stats.tenants.values()]
    return "requests by tenant\n" + table(
        ["tenant", "requests", *OUTCOMES, "hit rate", "blend rate", "tokens reused",
         "tokens recomputed"], rows)


def _categories(stats: Stats) -> str:
    rows = []
    for name, outcomes in sorted(stats.categories.items()):
        total = sum(outcomes.values())
        rows.append([name, total, *(outcomes.get(o, 0) for o in OUTCOMES),
                     _pct(outcomes.get("semantic-hit", 0), total)])
    return ("requests by category, every tenant ('none': not classified, the semantic cache "
            "skipped)\n" + table(["category", "requests", *OUTCOMES, "hit rate"], rows))


def _entries(stats: Stats) -> str:
    rows = [[t.name, space, n] for t in stats.tenants.values()
            for space, n in sorted(t.semantic_entries.items())]
    return "semantic cache entries\n" + table(["tenant", "category/model", "entries"], rows)


def _semantic(semantic: dict) -> str:
    rejections = ", ".join(f"{k} {v}" for k, v in sorted(semantic.get("rejections", {}).items())
                           if v) or "none"
    return ("semantic cache\n" + table(
        ["lookups", "hits", "misses", "hit rate", "expired"],
        [[semantic["lookups"], semantic["hits"], semantic["misses"],
          _pct(semantic["hits"], semantic["lookups"]), semantic.get("expired", 0)]])
        + f"\nverifier rejections: {rejections}")


def _tiers(chunk: dict) -> str:
    rows = [[name, t["hits"], t["misses"], _pct(t["hits"], t["hits"] + t["misses"]), t["puts"],
             t["evictions"], t["entries"], t["bytes"]] for name, t in chunk["tiers"].items()]
    text = "chunk cache tiers\n" + table(
        ["tier", "hits", "misses", "hit rate", "puts", "evictions", "entries", "bytes"], rows)
    stored = chunk.get("stored")
    if stored:
        text += (f"\nstored: {stored['chunks']} chunks, {stored['tokens']} tokens, "
                 f"{stored['bytes']} bytes; {chunk['prefills']} prefilled since start")
    return text
