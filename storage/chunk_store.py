"""Metadata rows of stored chunk KV caches: key, model, tokens, bytes, tier, times, hits.

The blobs themselves live in the tiers (``storage/blobs``); these rows make the chunk cache
inspectable (admin UI, ``blendcache stats``) and survive restarts. SQLAlchemy errors become
:class:`StorageError` in ``db.session_scope`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Float, Integer, String, delete, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from blendcache.storage.db import Base, TableStore


class ChunkRow(Base):
    __tablename__ = "chunks"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), index=True)  # model fingerprint
    tokens: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(String(16))  # deepest tier holding it: memory | disk
    created: Mapped[float] = mapped_column(Float)
    last_access: Mapped[float] = mapped_column(Float)
    hits: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class ChunkMeta:
    key: str
    model: str
    tokens: int
    bytes: int
    tier: str
    created: float
    last_access: float
    hits: int


class ChunkStore(TableStore):
    def __init__(self, engine: Engine):
        super().__init__(engine, ChunkRow.__table__, "chunk metadata")

    def upsert_many(self, metas: list[ChunkMeta]) -> None:
        with self._session() as s:
            for meta in metas:
                s.merge(ChunkRow(**meta.__dict__))

    def record_hits(self, keys: list[str], *, now: float) -> None:
        if not keys:
            return
        with self._session() as s:
            s.execute(update(ChunkRow).where(ChunkRow.key.in_(keys))
                      .values(hits=ChunkRow.hits + 1, last_access=now))

    def set_tier(self, keys: list[str], tier: str) -> None:
        if keys:
            with self._session() as s:
                s.execute(update(ChunkRow).where(ChunkRow.key.in_(keys)).values(tier=tier))

    def delete_many(self, keys: list[str]) -> None:
        if keys:
            with self._session() as s:
                s.execute(delete(ChunkRow).where(ChunkRow.key.in_(keys)))

    def get(self, key: str) -> ChunkMeta | None:
        with self._session() as s:
            row = s.get(ChunkRow, key)
            return None if row is None else _meta(row)

    def top(self, n: int) -> list[ChunkMeta]:
        """The ``n`` most reused chunks (most hits first; the latest used first among equals)."""
        with self._session() as s:
            rows = s.scalars(select(ChunkRow).order_by(ChunkRow.hits.desc(),
                                                       ChunkRow.last_access.desc()).limit(n))
            return [_meta(row) for row in rows]

    def summary(self) -> dict[str, int]:
        with self._session() as s:
            count, total_bytes, tokens, hits = s.execute(select(
                func.count(ChunkRow.key), func.coalesce(func.sum(ChunkRow.bytes), 0),
                func.coalesce(func.sum(ChunkRow.tokens), 0),
                func.coalesce(func.sum(ChunkRow.hits), 0))).one()
        return {"chunks": count, "bytes": total_bytes, "tokens": tokens, "hits": hits}


def _meta(row: ChunkRow) -> ChunkMeta:
    return ChunkMeta(row.key, row.model, row.tokens, row.bytes, row.tier, row.created,
                     row.last_access, row.hits)
