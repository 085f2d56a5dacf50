"""The database engine: SQLite files are opened for several worker processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import text

from authentiq.errors import DatabaseNotFound
from authentiq.storage.db import make_engine, open_configured, sqlite_path


def _write(url: str, start: int) -> None:
    engine = make_engine(url)
    for i in range(start, start + 100):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (id) VALUES (:i)"), {"i": i})
    engine.dispose()


def test_sqlite_files_use_write_ahead_logging_and_take_writes_from_several_processes(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL: survives a power cut
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    # Four processes writing at once, with this process reading meanwhile: none is refused
    # ("database is locked") and no write is lost.
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write, args=(url, 1000 * n)) for n in range(4)]
    for w in writers:
        w.start()
    with engine.connect() as conn:
        while any(w.is_alive() for w in writers):
            conn.execute(text("SELECT count(*) FROM t")).scalar()
    for w in writers:
        w.join()
        assert w.exitcode == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 400
    engine.dispose()


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:////srv/aq/authentiq.db", "/srv/aq/authentiq.db"),
    ("sqlite:////srv/aq/authentiq.db?timeout=30", "/srv/aq/authentiq.db"),  # the query aside
    ("sqlite+pysqlite:///var/authentiq.db", "var/authentiq.db"),
    ("sqlite:///:memory:", None), ("sqlite://", None),
    ("sqlite:///file:aq?mode=memory&uri=true", None),
    ("postgresql://postgres@127.0.0.1:5432/test", None), ("not a url", None),
])
def test_the_file_of_an_sqlite_url(url: str, path: str | None) -> None:
    assert sqlite_path(url) == (None if path is None else Path(path))


def test_a_reading_command_refuses_a_database_that_is_not_there(tmp_path: Path) -> None:
    there = tmp_path / "authentiq.db"
    open_configured(f"sqlite:///{there}").dispose()  # made, as a server does at start
    open_configured(f"sqlite:///{there}?timeout=5", existing=True).dispose()  # a query string
    with pytest.raises(DatabaseNotFound, match="there is no database at"):
        open_configured(f"sqlite:///{tmp_path / 'athentiq.db'}", existing=True)
    assert not (tmp_path / "athentiq.db").exists()

