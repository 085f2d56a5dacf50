"""The database: engines, the schema (Alembic migrations in ``authentiq/storage/migrations/versions``)
and the shared change counters. Every store receives its engine from here; nothing else opens one.

Every process that opens the database calls :func:`prepare`: with ``AUTHENTIQ_MIGRATE=true`` (the
default) it upgrades the schema to this release's head first — in one transaction, under a
PostgreSQL advisory lock (a file lock beside a SQLite file), so several workers starting at once
migrate once and the others wait;
with ``false`` it only checks that a deploy step (``authentiq db upgrade``) already did.

A database made by release 0.1.0 (before migrations) has the tables but no ``alembic_version``:
it is recognised by its columns and stamped as the baseline revision, then upgraded.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlmodel import Field, Session, SQLModel, create_engine

from authentiq.errors import DatabaseNotFound, DatabaseSchemaError
from authentiq.settings import Settings

log = logging.getLogger(__name__)
BASELINE = "0001"  # the schema of release 0.1.0, which created its tables without migrations
LOCK_ID = 0x41757468  # "Auth": the advisory lock PostgreSQL migrations run under


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (sqlite:/// or postgresql://), without touching the schema."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if (path := sqlite_path(url)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "timeout": SQLITE_BUSY_S})
        event.listen(engine, "connect", _sqlite_wal)
        return engine
    return create_engine(url, pool_pre_ping=True)


SQLITE_BUSY_S = 30.0  # how long a write waits for another process's write (several workers)


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    """Write-ahead logging: readers never block the writer nor it them, which several worker
    processes on one SQLite file need, and a commit costs one fsync of the log (0.8 ms here
    against 1.8 ms with the rollback journal). ``synchronous=FULL`` keeps every committed report
    through a power cut."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


class Counter(SQLModel, table=True):
    """A named counter: bumped in the same transaction as a change others must notice
    (reference enrolments, the review chain's head)."""

    __tablename__ = "change_counters"
    name: str = Field(primary_key=True, max_length=32)
    value: int = 0


def ensure_counter(engine: Engine, name: str) -> None:
    """Create the named counter row once (idempotent; safe when workers race)."""
    with Session(engine) as session:
        if session.get(Counter, name) is None:
            session.add(Counter(name=name, value=0))
            try:
                session.commit()
            except IntegrityError:  # another worker created it first
                session.rollback()


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    return config


@cache
def head() -> str:
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: empty, or made before migrations)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def open_database(url: str, *, migrate: bool = True) -> Engine:
    """An engine on ``url`` whose schema is this release's (upgraded first when ``migrate``)."""
    engine = make_engine(url)
    try:
        prepare(engine, migrate=migrate)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _known(revision: str | None) -> None:
    """Refuse a database migrated by a newer release (a rolled-back deployment, say)."""
    if revision is None:
        return
    try:
        ScriptDirectory.from_config(_config()).get_revision(revision)
    except Exception:  # alembic raises several types for an unknown revision
        raise DatabaseSchemaError(
            f"the database is at schema revision {revision}, which this release ({head()}) does "
            f"not know: it was migrated by a newer release; run that release (or newer)") from None


def open_configured(url: str | None = None, *, existing: bool = False) -> Engine:
    """The commands' database: ``url`` or AUTHENTIQ_DATABASE_URL, prepared per AUTHENTIQ_MIGRATE.
    ``existing``: for commands that only read — an SQLite file that is not there is refused
    (:class:`DatabaseNotFound`) instead of created empty."""
    storage = Settings().storage
    url = url or storage.database_url
    path = sqlite_path(url)
    if existing and path is not None and not path.is_file():
        raise DatabaseNotFound(f"there is no database at {path}: check --database-url or "
                               f"AUTHENTIQ_DATABASE_URL (by default the database is "
                               f"authentiq.db in AUTHENTIQ_DATA_DIR; a server creates it on its "
                               f"first start)")
    return open_database(url, migrate=storage.migrate)


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (its query string aside); None for another database, an
    in-memory one or a ``file:`` URI."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:" or \
            name.startswith("file:"):
        return None
    return Path(name)


def prepare(engine: Engine, *, migrate: bool = True) -> None:
    """Make sure the database has this release's schema (see the module's doc)."""
    if migrate:
        upgrade(engine)
        return
    at = current(engine)
    _known(at)
    if at != head():
        raise DatabaseSchemaError(
            f"the database is at schema revision {at or 'none'}, this release needs {head()}: run "
            f"`authentiq db upgrade` (or start with AUTHENTIQ_MIGRATE=true)")


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Processes of one host migrating one SQLite file take turns (SQLite's DDL would race)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def _migrating(engine: Engine) -> Iterator[tuple[Connection, Config, str | None]]:
    """One transaction under the migration lock (advisory on PostgreSQL, a file lock beside a
    SQLite file): its connection, Alembic's config on it and the revision it starts from."""
    with _sqlite_file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        before = MigrationContext.configure(conn).get_current_revision()
        _known(before)
        yield conn, _config(conn), before


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """(revision before, revision after); before is the baseline for a release 0.1.0 database."""
    with _migrating(engine) as (conn, config, before):
        if before is None and _has_release_tables(conn):
            _check_baseline(conn)
            command.stamp(config, BASELINE)
            log.warning("database made by release 0.1.0 (no migration history): stamped as "
                        "revision %s", BASELINE)
            before = BASELINE
        command.upgrade(config, revision)
        after = MigrationContext.configure(conn).get_current_revision()
    if after != before:
        log.info("database schema upgraded: %s → %s", before or "empty", after)
    return before, after


def downgrade(engine: Engine, revision: str) -> tuple[str | None, str | None]:
    """(revision before, after) — to roll back to an older release, run this release's
    downgrade to that release's head first (an older release refuses a newer schema)."""
    with _migrating(engine) as (conn, config, before):
        command.downgrade(config, revision)
        after = MigrationContext.configure(conn).get_current_revision()
    log.info("database schema downgraded: %s → %s", before, after)
    return before, after


def _has_release_tables(conn: Connection) -> bool:
    return inspect(conn).has_table("reports")


@cache
def _baseline_columns() -> dict[str, frozenset[str]]:
    """Table → columns of the baseline revision, read off a scratch in-memory database."""
    from sqlalchemy import create_engine

    scratch = create_engine("sqlite://")
    try:
        with scratch.begin() as conn:
            command.upgrade(_config(conn), BASELINE)
            found = inspect(conn)
            return {t: frozenset(c["name"] for c in found.get_columns(t))
                    for t in found.get_table_names() if t != "alembic_version"}
    finally:
        scratch.dispose()


def _check_baseline(conn: Connection) -> None:
    """An unversioned database must be exactly release 0.1.0's; anything older is refused."""
    found = inspect(conn)
    lacking, absent = [], []
    for table, columns in sorted(_baseline_columns().items()):
        if not found.has_table(table):
            absent.append(f"no {table!r} table")
            continue
        missing = sorted(columns - {c["name"] for c in found.get_columns(table)})
        if missing:
            lacking.append(f"{table!r} lacks {', '.join(missing)}")
    problems = lacking + absent
    if problems:
        raise DatabaseSchemaError(
            f"the database was made by a release older than 0.1.0, which no migration covers "
            f"({'; '.join(problems[:5])}). Point AUTHENTIQ_DATABASE_URL at a new database (or "
            f"move var/ away for the embedded default).")


def _revision(message: str) -> None:
    """Autogenerate a revision against a scratch SQLite database upgraded to head."""
    from sqlalchemy import create_engine

    scratch = create_engine("sqlite://")
    with scratch.begin() as conn:
        command.upgrade(_config(conn), "head")
        number = f"{int(head()[:4]) + 1:04d}"  # ids start with a 4-digit number
        command.revision(_config(conn), message=message, autogenerate=True, rev_id=number)
    scratch.dispose()


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "revision":
        sys.exit('usage: python -m authentiq.storage.db revision "what changed"')
    _revision(sys.argv[2])
