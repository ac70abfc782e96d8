"""Database plumbing: declarative base with stable constraint names, one
engine per app, a scoped session per request, and SQLite tuned for a
single-folder install (WAL, foreign keys, busy timeout)."""
from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker

from collab import events

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """Naive UTC: stored the same way on SQLite and PostgreSQL."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def make_engine(url: str, pool_size: int = 10, overflow: int = 20, pool_timeout: float = 30.0) -> Engine:
    """The app's engine. hide_parameters: a database error's message (logged, and shown by `flask` commands)
    never carries the values of the statement that failed — they can be the text of a confidential post.
    The pool (PostgreSQL): `pool_size` kept open, up to `overflow` more under load, and a request waits
    `pool_timeout` seconds for one before it is answered 503 "busy" (collab/outage.py). Every web process
    has its own: processes × (size + overflow) must stay under the server's max_connections."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 15, "check_same_thread": False}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            # pysqlite's own transaction handling is off; the "begin" hook below starts them.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # A write transaction takes the lock up front, so two writers queue on
            # busy_timeout instead of failing on a read-to-write upgrade.
            immediate = conn.get_execution_options().get("sqlite_immediate")
            if immediate:
                _begin_immediate(conn)
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=overflow, pool_timeout=pool_timeout,
                         hide_parameters=True)


BUSY_TIMEOUT = 15.0  # seconds a writer waits for SQLite's write lock


def _begin_immediate(conn) -> None:
    """BEGIN IMMEDIATE, waiting for the write lock in short sleeps rather than in SQLite's busy handler.

    The busy handler sleeps inside C: under gevent that freezes every greenlet of the worker, including
    one that holds the lock and would release it once it runs again, so the wait could only end in
    "database is locked". time.sleep() lets them run (it yields under gevent). Same limit as before;
    a failure still surfaces from SQLAlchemy as an OperationalError."""
    raw = conn.connection.dbapi_connection
    raw.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT
        delay = 0.0005
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as err:
                if getattr(err, "sqlite_errorcode", sqlite3.SQLITE_BUSY) & 0xFF != sqlite3.SQLITE_BUSY:
                    break
            if time.monotonic() >= deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.005)
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # last try, through SQLAlchemy: raises as it always did
    finally:
        raw.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")


def _nothing_begun(sess: Session) -> bool:
    """True if the session's transaction has not reached the database yet and holds nothing to write or
    announce (e.g. it only took in an already loaded account): committing it would do nothing but run
    the commit hooks, so the write transaction can simply start in it."""
    trans = sess.get_transaction()
    return (trans is not None and trans.parent is None and not getattr(trans, "_connections", True)
            and not (sess.new or sess.dirty or sess.deleted) and not events.pending(sess))


class Database:
    """Holds the engine and the request-scoped session of one app."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.session: scoped_session[Session] = scoped_session(sessionmaker(expire_on_commit=False))

    def init_app(self, app) -> None:
        self.engine = make_engine(app.config["DATABASE_URL"], app.config.get("DATABASE_POOL_SIZE", 10),
                                  app.config.get("DATABASE_POOL_OVERFLOW", 20),
                                  app.config.get("DATABASE_POOL_TIMEOUT", 30.0))
        self.session.remove()
        self.session.configure(bind=self.engine)
        app.extensions["collab_db"] = self

        @app.teardown_appcontext
        def _remove_session(_exc):
            self.session.remove()

    def begin_write(self) -> None:
        """Start a write transaction (IMMEDIATE on SQLite), ending any read-only one."""
        sess = self.session()
        if sess.in_transaction() and not _nothing_begun(sess):
            sess.commit()
        sess.connection(execution_options={"sqlite_immediate": True})

    @property
    def is_sqlite(self) -> bool:
        return self.engine is not None and self.engine.dialect.name == "sqlite"


# -- lookups remembered for one transaction ----------------------------------------------------------

_TX_MEMOS: set[str] = set()


def transaction_memo(session: Session, name: str) -> dict:
    """A dict kept in `session.info` for the rest of its transaction, for a lookup asked many times
    in one request (a thread page asks about each post's author and room). Every such dict is forgotten
    at any flush, write statement, commit or rollback, so a check made inside a write transaction always
    reads the database."""
    _TX_MEMOS.add(name)
    return session.info.setdefault(name, {})


def _forget_memos(session: Session) -> None:
    for name in _TX_MEMOS:
        session.info.pop(name, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, _transaction) -> None:
    _forget_memos(session)


@event.listens_for(Session, "after_flush")
def _forget_at_flush(session: Session, _context) -> None:
    _forget_memos(session)


@event.listens_for(Session, "do_orm_execute")
def _forget_at_write(state) -> None:
    if not state.is_select:
        _forget_memos(state.session)
