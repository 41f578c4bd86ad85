"""Rows of the semantic cache: one per cached answer, with the query embedding as float32 bytes.

SQLite by default, any SQLAlchemy URL otherwise. The in-memory indexes (``index/``) are rebuilt
from these rows at start-up; SQLAlchemy errors become ``StorageError`` in ``db.session_scope``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import (
    Float, Index, Integer, LargeBinary, String, Text, delete, func, select, update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from blendcache.storage.db import Base, TableStore


class SemanticEntryRow(Base):
    __tablename__ = "semantic_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(256))
    query: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian
    context_fingerprint: Mapped[str | None] = mapped_column(String(128), nullable=True)
    response: Mapped[str] = mapped_column(Text)  # JSON of the answer
    created: Mapped[float] = mapped_column(Float)
    expires: Mapped[float | None] = mapped_column(Float, nullable=True)  # None: never
    hits: Mapped[int] = mapped_column(Integer, default=0)
    last_hit: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (
        Index("ix_semantic_namespace", "tenant", "category", "model"),
        Index("ix_semantic_expires", "expires"),
        # NOTE: ids are never reused (SQLite's default reuses the highest deleted one), so a
        # client's stale entry id (DELETE /v1/blendcache/entries/{id}) never names a newer
        # answer. Tables created before this keep SQLite's default.
        {"sqlite_autoincrement": True},
    )


@dataclass(frozen=True)
class NewSemanticEntry:
    """What the cache writes; the store assigns the id."""

    tenant: str
    category: str
    model: str
    query: str
    embedding: np.ndarray  # (dim,) float32
    response: str  # JSON text
    created: float
    expires: float | None
    context_fingerprint: str | None = None


@dataclass(frozen=True)
class SemanticEntry:
    """One stored entry as read back."""

    id: int
    tenant: str
    category: str
    model: str
    query: str
    embedding: np.ndarray  # (dim,) float32
    context_fingerprint: str | None
    response: str
    created: float
    expires: float | None
    hits: int
    last_hit: float | None

    @property
    def namespace(self) -> tuple[str, str, str]:
        return (self.tenant, self.category, self.model)


def _to_entry(row: SemanticEntryRow) -> SemanticEntry:
    return SemanticEntry(
        id=row.id, tenant=row.tenant, category=row.category, model=row.model, query=row.query,
        embedding=np.frombuffer(row.embedding, dtype="<f4").copy(),
        context_fingerprint=row.context_fingerprint, response=row.response,
        created=row.created, expires=row.expires, hits=row.hits or 0, last_hit=row.last_hit,
    )


class SemanticStore(TableStore):
    """Batched access to ``semantic_entries``. Pass an engine or a database URL (a file, not
    ``:memory:``: SQLAlchemy gives each thread its own in-memory database)."""

    def __init__(self, engine: Engine | str):
        super().__init__(engine, SemanticEntryRow.__table__, "semantic store")

    def insert(self, entries: Sequence[NewSemanticEntry]) -> list[int]:
        """Insert ``entries`` in one transaction; their new ids, in order."""
        rows = [
            SemanticEntryRow(
                tenant=e.tenant, category=e.category, model=e.model, query=e.query,
                embedding=np.asarray(e.embedding, dtype="<f4").tobytes(),
                context_fingerprint=e.context_fingerprint, response=e.response,
                created=e.created, expires=e.expires, hits=0, last_hit=None,
            )
            for e in entries
        ]
        with self._session() as session:
            session.add_all(rows)
            session.flush()
            return [row.id for row in rows]

    def get_many(self, ids: Sequence[int]) -> dict[int, SemanticEntry]:
        """The entries of ``ids`` that exist, by id."""
        if not ids:
            return {}
        with self._session() as session:
            rows = session.scalars(
                select(SemanticEntryRow).where(SemanticEntryRow.id.in_(list(ids)))
            )
            return {row.id: _to_entry(row) for row in rows}

    def touch(self, id_: int, *, now: float) -> None:
        """Count one hit on ``id_`` at time ``now``."""
        with self._session() as session:
            session.execute(
                update(SemanticEntryRow)
                .where(SemanticEntryRow.id == id_)
                .values(hits=SemanticEntryRow.hits + 1, last_hit=now)
            )

    def delete_many(self, ids: Sequence[int]) -> int:
        """Delete ``ids``; the number of rows removed."""
        if not ids:
            return 0
        with self._session() as session:
            result = session.execute(
                delete(SemanticEntryRow).where(SemanticEntryRow.id.in_(list(ids)))
            )
            return result.rowcount or 0

    def expired(self, now: float) -> list[SemanticEntry]:
        """Entries whose ``expires`` is at or before ``now``."""
        with self._session() as session:
            rows = session.scalars(
                select(SemanticEntryRow)
                .where(SemanticEntryRow.expires.is_not(None), SemanticEntryRow.expires <= now)
                .order_by(SemanticEntryRow.id)
            )
            return [_to_entry(row) for row in rows]

    def all_for_rebuild(self, *, batch_size: int = 5000) -> Iterator[list[SemanticEntry]]:
        """Every entry, in id order, as batches of ``batch_size`` (for index rebuilds)."""
        last_id = 0
        while True:
            with self._session() as session:
                rows = session.scalars(
                    select(SemanticEntryRow)
                    .where(SemanticEntryRow.id > last_id)
                    .order_by(SemanticEntryRow.id)
                    .limit(batch_size)
                ).all()
                batch = [_to_entry(row) for row in rows]
            if not batch:
                return
            last_id = batch[-1].id
            yield batch

    def ids(self, *, tenant: str | None = None, category: str | None = None) -> list[int]:
        """Ids of the entries of ``tenant`` (None: every tenant) in ``category`` (None: every
        category), in id order (what an invalidation deletes)."""
        query = select(SemanticEntryRow.id).order_by(SemanticEntryRow.id)
        if tenant is not None:
            query = query.where(SemanticEntryRow.tenant == tenant)
        if category is not None:
            query = query.where(SemanticEntryRow.category == category)
        with self._session() as session:
            return list(session.scalars(query))

    def count(self) -> int:
        """Number of stored entries."""
        with self._session() as session:
            return int(session.scalar(select(func.count(SemanticEntryRow.id))) or 0)
