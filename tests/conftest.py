"""Shared fixtures: real service endpoints and the shared data corpora.

Services are read from ``AVL_TEST_POSTGRES_DSN``, ``AVL_TEST_MYSQL_URL`` and
``AVL_TEST_REDIS_URL``. An unreachable service skips its tests with the reason,
except when ``CI`` is set: then the test fails.
"""

from __future__ import annotations

import importlib
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = bool(os.environ.get("CI"))

POSTGRES_DSN = os.environ.get("AVL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("AVL_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("AVL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail when running under CI."""
    if IN_CI:
        pytest.fail(f"required under CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)  # (need_module runs at import time too)


def need_module(name: str, reason: str | None = None) -> Any:
    """Import ``name``; when it is missing, :func:`unavailable` (skip, or fail under
    CI, where every extra is installed). ``pytest.importorskip`` would skip under CI
    too and hide a missing dependency."""
    try:
        with warnings.catch_warnings():  # as importorskip: an import's own warnings
            warnings.simplefilter("ignore")  # are not the test's
            return importlib.import_module(name)
    except ImportError:
        unavailable(reason or f"{name} is not installed")


def _reachable(url: str, default_port: int) -> str | None:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return None
    except OSError as exc:
        return f"{host}:{port} unreachable ({exc})"


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of the real PostgreSQL server (skips/fails when unreachable)."""
    problem = _reachable(POSTGRES_DSN, 5432)
    if problem:
        unavailable(f"PostgreSQL {problem}; set AVL_TEST_POSTGRES_DSN")
    return POSTGRES_DSN


@pytest.fixture(scope="session")
def mysql_url() -> str:
    """URL of the real MariaDB/MySQL server (skips/fails when unreachable)."""
    problem = _reachable(MYSQL_URL, 3306)
    if problem:
        unavailable(f"MySQL/MariaDB {problem}; set AVL_TEST_MYSQL_URL")
    return MYSQL_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real Redis server (skips/fails when unreachable)."""
    problem = _reachable(REDIS_URL, 6379)
    if problem:
        unavailable(f"Redis {problem}; set AVL_TEST_REDIS_URL")
    return REDIS_URL


def shared_data_dir() -> Path:
    """Where ``shared/data`` is: ``AVL_SHARED_DATA`` or ``../shared/data`` beside the repo."""
    env = os.environ.get("AVL_SHARED_DATA")
    return Path(env) if env else (ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared corpora directory (skips/fails when absent)."""
    path = shared_data_dir()
    if not path.is_dir():
        reason = f"shared data not found at {path}; set AVL_SHARED_DATA"
        if os.environ.get("AVL_TEST_NO_SHARED_DATA"):
            # hosted CI (GitHub) has no shared/ beside the clone: said explicitly there
            pytest.skip(reason)
        unavailable(reason)
    return path


@pytest.fixture
def span_exporter() -> Iterator[Any]:
    """An OpenTelemetry SDK in-memory exporter behind a fresh *global* tracer provider.

    The global provider can be set once per process; like OpenTelemetry's own test
    helpers, this resets the API's private "set once" guard before and after, so each
    test gets its own provider and later tests see none.
    """
    trace = need_module("opentelemetry.trace")
    sdk_trace = need_module("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.util._once import Once

    def reset() -> None:
        trace._TRACER_PROVIDER_SET_ONCE = Once()
        trace._TRACER_PROVIDER = None

    reset()
    exporter = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        provider.shutdown()
        reset()
