"""Request records: one row per answered request (tenant, category, outcome, similarity, chunks
reused of total, tokens, TTFT, total time), and the aggregates the admin UI draws from them.

Rows are written in batches by the server's record writer (middleware/records.py), off the
requests' path, and purged past ``[storage] request_retention_days``. Times are Unix seconds
(``created``) and milliseconds (``ttft_ms``, ``latency_ms``). SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Float, Integer, String, cast, delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from blendcache.storage.db import Base, TableStore


class RequestRow(Base):
    __tablename__ = "request_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created: Mapped[float] = mapped_column(Float, index=True)
    tenant: Mapped[str] = mapped_column(String(128), index=True)
    category: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))  # semantic-hit | blend | miss
    similarity: Mapped[float | None] = mapped_column(Float, nullable=True)  # semantic hits only
    chunks_reused: Mapped[int] = mapped_column(Integer, default=0)
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    tokens_reused: Mapped[int] = mapped_column(Integer, default=0)
    tokens_recomputed: Mapped[int] = mapped_column(Integer, default=0)
    ttft_ms: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class RequestRecord:
    """One answered request. ``similarity``: the cached query's, on a semantic hit (else None);
    ``chunks_reused`` of ``chunks_total``: the request's document chunks found in a tier."""

    created: float  # Unix seconds, when the answer was complete
    tenant: str
    category: str
    outcome: str
    ttft_ms: float
    latency_ms: float
    similarity: float | None = None
    chunks_reused: int = 0
    chunks_total: int = 0
    tokens_reused: int = 0
    tokens_recomputed: int = 0


@dataclass(frozen=True)
class TimelineCell:
    """Requests of one category and outcome whose ``created`` falls in the bucket that starts
    at ``start`` (Unix seconds, a multiple of the bucket's width), and their TTFTs' sum."""

    start: float
    category: str
    outcome: str
    requests: int
    ttft_ms_sum: float


@dataclass(frozen=True)
class OutcomeTimes:
    """TTFT of one outcome's requests, in milliseconds."""

    requests: int
    mean_ttft_ms: float
    p50_ttft_ms: float


class RequestStore(TableStore):
    def __init__(self, engine: Engine):
        super().__init__(engine, RequestRow.__table__, "request records")

    def add_many(self, records: list[RequestRecord]) -> None:
        if records:
            with self._session() as s:
                s.add_all([RequestRow(**r.__dict__) for r in records])

    def purge(self, older_than: float) -> int:
        """Delete the rows created before ``older_than`` (Unix seconds); how many went."""
        with self._session() as s:
            return s.execute(delete(RequestRow).where(RequestRow.created < older_than)).rowcount

    def recent(self, limit: int, *, tenant: str | None = None,
               category: str | None = None) -> list[RequestRecord]:
        """The newest ``limit`` records, of one tenant and/or category when given."""
        query = select(RequestRow).order_by(RequestRow.created.desc(), RequestRow.id.desc())
        if tenant is not None:
            query = query.where(RequestRow.tenant == tenant)
        if category is not None:
            query = query.where(RequestRow.category == category)
        with self._session() as s:
            return [_record(row) for row in s.scalars(query.limit(limit))]

    def names(self) -> tuple[list[str], list[str]]:
        """The tenants and categories that have records (the page's filters), sorted."""
        with self._session() as s:
            tenants = s.scalars(select(RequestRow.tenant).distinct()).all()
            categories = s.scalars(select(RequestRow.category).distinct()).all()
        return sorted(tenants), sorted(categories)

    def first_created(self, *, since: float = 0.0) -> float | None:
        """When the oldest record created at or after ``since`` was made (None: there is none)."""
        with self._session() as s:
            return s.scalar(select(func.min(RequestRow.created))
                            .where(RequestRow.created >= since))

    def timeline(self, bucket_s: float, *, since: float) -> list[TimelineCell]:
        """Requests per time bucket of ``bucket_s`` seconds, category and outcome, from
        ``since`` on; only the buckets that have any, oldest first."""
        bucket = self._floor(RequestRow.created / bucket_s).label("bucket")
        query = (select(bucket, RequestRow.category, RequestRow.outcome, func.count(),
                        func.sum(RequestRow.ttft_ms))
                 .where(RequestRow.created >= since)
                 .group_by(bucket, RequestRow.category, RequestRow.outcome)
                 .order_by(bucket, RequestRow.category, RequestRow.outcome))
        with self._session() as s:
            return [TimelineCell(int(b) * bucket_s, category, outcome, n, float(total))
                    for b, category, outcome, n, total in s.execute(query)]

    def ttft_by_outcome(self, *, since: float = 0.0) -> dict[str, OutcomeTimes]:
        """Mean and median TTFT per outcome of the records from ``since`` on: the measured miss
        TTFT that "TTFT saved" is counted against."""
        out = {}
        with self._session() as s:
            rows = s.execute(select(RequestRow.outcome, func.count(), func.avg(RequestRow.ttft_ms))
                             .where(RequestRow.created >= since)
                             .group_by(RequestRow.outcome)).all()
            for outcome, n, mean in rows:
                out[outcome] = OutcomeTimes(n, float(mean), self._median(s, outcome, n, since))
        return out

    def _median(self, session, outcome: str, n: int, since: float) -> float:
        # NOTE: by ORDER BY and OFFSET: SQLite has no percentile function.
        query = (select(RequestRow.ttft_ms)
                 .where(RequestRow.outcome == outcome, RequestRow.created >= since)
                 .order_by(RequestRow.ttft_ms).offset((n - 1) // 2).limit(2 - n % 2))
        middle = session.scalars(query).all()
        return sum(middle) / len(middle)

    def _floor(self, expr):
        """floor(expr) for positive values: SQLite's CAST truncates (it has no floor without
        its math extension), PostgreSQL's rounds."""
        if self.engine.dialect.name == "sqlite":
            return cast(expr, Integer)
        return func.floor(expr)


def _record(row: RequestRow) -> RequestRecord:
    return RequestRecord(created=row.created, tenant=row.tenant, category=row.category,
                         outcome=row.outcome, ttft_ms=row.ttft_ms, latency_ms=row.latency_ms,
                         similarity=row.similarity, chunks_reused=row.chunks_reused,
                         chunks_total=row.chunks_total, tokens_reused=row.tokens_reused,
                         tokens_recomputed=row.tokens_recomputed)
