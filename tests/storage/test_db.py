"""The database engine: SQLite files are opened for several worker processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from sqlalchemy import text

from authentiq.storage.db import make_engine


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
