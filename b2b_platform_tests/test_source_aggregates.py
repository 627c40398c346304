"""Fingerprint queries over a SQLite source answered again from a kept result only while
the file is exactly as it was: any write, a copy over it, new values, another query or a
PostgreSQL source asks the database."""

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

import source_db.database as source_database
from b2b_platform.lib.resources import SourceDatabaseResource
from source_db import SourceDatabase

QUERY = "SELECT count(*) AS n, sum(x) AS total FROM t WHERE x >= ?"


def _source(path: Path, values: list[int]) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    conn.close()
    return path


def _write(path: Path, value: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO t VALUES (?)", (value,))
    conn.close()


@pytest.fixture
def settled(monkeypatch):
    """Every file counts as settled at once (the real wait is a tenth of a second, two
    seconds where the file system keeps whole seconds)."""
    monkeypatch.setattr(source_database, "SETTLED_SECONDS", 0.0)
    monkeypatch.setattr(source_database, "COARSE_SETTLED_SECONDS", 0.0)


@pytest.fixture
def open_umask():
    """An operator's umask that lets everyone read what is created."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def queries(monkeypatch):
    """The queries that reached the database."""
    asked: list[str] = []
    fetch = SourceDatabaseResource.fetch_arrow

    def counted(self, query, params=()):
        asked.append(query)
        return fetch(self, query, params)

    monkeypatch.setattr(SourceDatabaseResource, "fetch_arrow", counted)
    return asked


def test_file_state_changes_with_every_write_and_copy(tmp_path, settled):
    path = _source(tmp_path / "b2b.db", [1, 2])
    database = SourceDatabase(f"sqlite:///{path}")
    first = database.file_state()
    assert first is not None and database.file_state() == first
    _write(path, 3)  # one row: the size may stay, the change counter moves
    second = database.file_state()
    assert second not in (None, first)
    # the old bytes copied back with their times: the inode's change time still moves
    shutil.copy2(path, tmp_path / "copy.db")
    _write(path, 4)
    shutil.copy2(tmp_path / "copy.db", path)
    assert database.file_state() not in (first, second, None)


def test_file_state_changes_with_every_commit_in_wal_mode(tmp_path, settled):
    path = _source(tmp_path / "b2b.db", [1])
    writer = sqlite3.connect(path, isolation_level=None)  # kept open: the log stays
    writer.execute("PRAGMA journal_mode=WAL")
    database = SourceDatabase(f"sqlite:///{path}")
    seen = [database.file_state()]
    for value in (2, 3):
        writer.execute("INSERT INTO t VALUES (?)", (value,))
        seen.append(database.file_state())
    # everything checkpointed and the log emptied: it starts over with new salts
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    seen.append(database.file_state())
    writer.execute("INSERT INTO t VALUES (4)")
    seen.append(database.file_state())
    writer.close()
    assert None not in seen and len(set(seen)) == len(seen), seen


def test_no_state_for_a_fifo_or_a_directory_and_no_wait_on_them(tmp_path, settled):
    import threading

    fifo = tmp_path / "b2b.db"
    os.mkfifo(fifo)  # opened for reading with no writer, it would block forever
    (tmp_path / "dir.db").mkdir()
    states: list[str | None] = []
    reader = threading.Thread(
        target=lambda: states.extend(
            SourceDatabase(f"sqlite:///{path}").file_state() for path in (fifo, tmp_path / "dir.db")
        ),
        daemon=True,
    )
    reader.start()
    reader.join(10)
    assert not reader.is_alive() and states == [None, None]


def test_no_state_for_a_fresh_write_a_missing_file_or_postgresql(tmp_path, monkeypatch):
    monkeypatch.setattr(source_database, "SETTLED_SECONDS", 60.0)  # a slow machine's minute
    path = _source(tmp_path / "b2b.db", [1])
    assert SourceDatabase(f"sqlite:///{path}").file_state() is None  # written just now
    assert SourceDatabase(f"sqlite:///{tmp_path / 'none.db'}").file_state() is None
    assert SourceDatabase("postgresql://postgres@127.0.0.1/test").file_state() is None


def test_kept_result_answers_only_while_the_file_is_unchanged(
    tmp_path, settled, queries, open_umask
):
    path = _source(tmp_path / "b2b.db", [1, 2, 3])
    source = SourceDatabaseResource(url=f"sqlite:///{path}", aggregates_dir=str(tmp_path / "kept"))
    assert source.fetch_aggregate(QUERY, [2]).to_pylist() == [{"n": 2, "total": 5}]
    assert source.fetch_aggregate(QUERY, [2]).to_pylist() == [{"n": 2, "total": 5}]
    assert len(queries) == 1  # the second answer was the kept one
    assert source.fetch_aggregate(QUERY, [1]).to_pylist() == [{"n": 3, "total": 6}]
    assert len(queries) == 2  # other values: asked
    _write(path, 10)
    assert source.fetch_aggregate(QUERY, [1]).to_pylist() == [{"n": 4, "total": 16}]
    assert len(queries) == 3  # the file changed: asked
    other = "SELECT max(x) AS top FROM t WHERE x >= ?"
    assert source.fetch_aggregate(other, [1]).to_pylist() == [{"top": 10}]
    assert len(queries) == 4  # another query keeps its own result
    # aggregates of the source's rows: the owner's only, whatever the umask
    assert {oct(kept.stat().st_mode & 0o777) for kept in (tmp_path / "kept").iterdir()} == {"0o600"}
    assert (tmp_path / "kept").stat().st_mode & 0o077 == 0


def test_nothing_kept_without_a_directory_or_for_a_torn_file(tmp_path, settled, queries):
    path = _source(tmp_path / "b2b.db", [1, 2])
    plain = SourceDatabaseResource(url=f"sqlite:///{path}")
    plain.fetch_aggregate(QUERY, [0])
    plain.fetch_aggregate(QUERY, [0])
    assert len(queries) == 2
    kept = tmp_path / "kept"
    source = SourceDatabaseResource(url=f"sqlite:///{path}", aggregates_dir=str(kept))
    source.fetch_aggregate(QUERY, [0])
    (result_file,) = kept.iterdir()
    result_file.write_bytes(result_file.read_bytes()[:20])  # a crash mid-write, say
    assert source.fetch_aggregate(QUERY, [0]).to_pylist() == [{"n": 2, "total": 3}]
    assert len(queries) == 4
