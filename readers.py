"""Readers of the input files the CLI and the benchmarks take: JSON arrays or JSON lines."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from blendcache.errors import ConfigError


def read_json_rows(path: str | Path) -> list:
    """The rows of a JSON array or of JSON lines (optionally gzipped, ``.gz``)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        text = fh.read()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_documents(path: str | Path) -> list[str]:
    """Documents from a JSON array or JSON lines of strings or ``{"text", "id"?}`` objects."""
    try:
        rows = read_json_rows(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read documents from {path}: {exc}") from exc
    out = []
    for i, row in enumerate(rows):
        doc = row.get("text") if isinstance(row, dict) else row
        if not isinstance(doc, str) or not doc.strip():
            raise ConfigError(f"{path}: document {i} is not a string or a {{\"text\": ...}} "
                              f"object with text")
        out.append(doc)
    return out
