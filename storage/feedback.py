"""Rows of the error-rate guarantee's evidence: one per observed candidate (was serving it right?).

Written by explorations, audits and explicit feedback (index/guarantee.py); read back whole at
start-up, so what the cache learned survives restarts. Same database as ``semantic_store``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Boolean, Float, Index, Integer, String, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from blendcache.storage.db import Base, TableStore

SOURCES = ("explore", "audit", "feedback")


class FeedbackRow(Base):
    __tablename__ = "semantic_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(128))
    entry_id: Mapped[int] = mapped_column(Integer)  # the semantic entry judged (may be gone)
    score: Mapped[float] = mapped_column(Float)  # the candidate's score when it was judged
    correct: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(16))  # one of SOURCES
    created: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_feedback_namespace", "tenant", "category"),)


@dataclass(frozen=True)
class Observation:
    """Whether serving entry ``entry_id`` at ``score`` was right, and who said so."""

    tenant: str
    category: str
    entry_id: int
    score: float
    correct: bool
    source: str  # one of SOURCES
    created: float


class FeedbackStore(TableStore):
    """Append-only access to ``semantic_feedback`` (an engine or a database URL)."""

    def __init__(self, engine: Engine | str):
        super().__init__(engine, FeedbackRow.__table__, "feedback store")

    def insert(self, observations: Sequence[Observation]) -> None:
        with self._session() as session:
            session.add_all([FeedbackRow(
                tenant=o.tenant, category=o.category, entry_id=o.entry_id, score=o.score,
                correct=o.correct, source=o.source, created=o.created) for o in observations])

    def all(self, *, batch_size: int = 5000) -> Iterator[list[Observation]]:
        """Every observation in the order written, as batches (for the rebuild at start-up)."""
        last_id = 0
        while True:
            with self._session() as session:
                rows = session.scalars(select(FeedbackRow).where(FeedbackRow.id > last_id)
                                       .order_by(FeedbackRow.id).limit(batch_size)).all()
                batch = [Observation(r.tenant, r.category, r.entry_id, r.score, r.correct,
                                     r.source, r.created) for r in rows]
                if rows:
                    last_id = rows[-1].id
            if not batch:
                return
            yield batch
