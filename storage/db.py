"""SQLAlchemy engine and declarative base shared by every metadata table.

SQLite (embedded, the default) or PostgreSQL (several replicas). Table modules in this package
(``chunk_store``, ``semantic_store``, ``requests``, ``feedback``) declare their rows on
:class:`Base` and their stores on :class:`TableStore`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Table, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool

from blendcache.errors import StorageError


SqlEngine = Engine  # a database's engine, named apart from the model's (recompute.model.Engine)


class Base(DeclarativeBase):
    pass


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their folder created and WAL mode."""
    try:
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
        if url.startswith("sqlite"):
            event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    except (SQLAlchemyError, OSError) as exc:
        raise StorageError(f"cannot open database {url}: {exc}") from exc


def ping(url: str, *, timeout_s: int = 5) -> None:
    """Open a fresh connection to ``url`` and run ``SELECT 1`` (the readiness probe); a
    StorageError says why it cannot. A SQLite file must exist: the probe creates nothing."""
    kwargs: dict = {"poolclass": NullPool}
    if url.startswith("sqlite:///") and ":memory:" not in url:
        url = f"sqlite:///file:{url[len('sqlite:///'):]}?mode=rw&uri=true"
    elif url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": timeout_s}
    engine = create_engine(url, **kwargs)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        cause = exc.orig if getattr(exc, "orig", None) is not None else exc
        reason = (str(cause).strip().splitlines() or [""])[0]
        raise StorageError(f"database unreachable ({type(cause).__name__}: {reason})") from exc
    finally:
        engine.dispose()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False, future=True)


@contextmanager
def session_scope(sessions: sessionmaker, what: str) -> Iterator[Session]:
    """A committed session; the one place SQLAlchemy errors turn into StorageError."""
    try:
        with sessions.begin() as session:
            yield session
    except SQLAlchemyError as exc:
        raise StorageError(f"{what}: {exc}") from exc


class TableStore:
    """A store of one table: an engine (or a database URL), its sessions, and the table made
    if missing. ``what`` names the store in its errors."""

    def __init__(self, engine: Engine | str, table: Table, what: str):
        self.engine = make_engine(engine) if isinstance(engine, str) else engine
        self._sessions = make_sessionmaker(self.engine)
        self._what = what
        with self._session():
            table.create(self.engine, checkfirst=True)

    def _session(self):
        return session_scope(self._sessions, self._what)
