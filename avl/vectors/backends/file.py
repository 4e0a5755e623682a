"""``file:///path``: the exact index persisted crash-safely in a directory.

Layout of the store directory::

    LOCK          held with an exclusive ``flock`` while a process has the store open
    snapshot      the whole index at some generation G (checksummed)
    log.G         operations since that snapshot, appended and fsync'd per call

Each log record is ``length | crc32(payload) | crc32(length) | payload`` (three
little-endian u32, so a damaged length is detected too); the payload is an
operation byte (``A`` add, ``U`` upsert, ``D`` delete), a JSON header with the ids
and metadata, and the raw float32 vectors. A call returns only after its record
is written and fsync'd, so an acknowledged write survives ``kill -9`` and power
loss (as far as the disk honours fsync).

On open the snapshot is verified and the log replayed. A record cut short at the
end of the log, or a checksum failure in the *last* record, is the write that was
in flight when the process died: it is discarded and the log truncated. Any other
checksum failure, a bad header or an unreadable snapshot raises
:class:`~avl.errors.CorruptionError`; nothing is repaired silently.

When the log grows past ``snapshot_bytes`` (or :meth:`FileBackend.compact` is
called) a snapshot of generation G+1 is written to a temporary file, fsync'd,
renamed over ``snapshot`` and the directory fsync'd; then ``log.G+1`` starts and
``log.G`` is removed. A crash at any point leaves either the old snapshot with its
complete log or the new snapshot (whose log may be missing, meaning empty).

A second process (or a second store in the same process) opening the directory
gets :class:`~avl.errors.LockedError`; there is no shared or read-only mode.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from avl.errors import BackendError, ConfigError, CorruptionError, LockedError
from avl.vectors._exact import ExactIndex
from avl.vectors._filters import Filter
from avl.vectors._types import FloatMatrix, Hit, Metric, Record
from avl.vectors.backends.memory import check_new

__all__ = ["FileBackend", "open_backend"]

_SNAP_MAGIC = b"AVLVSNP1"
_LOG_MAGIC = b"AVLVLOG1"
_REC = struct.Struct("<III")
_LEN = struct.Struct("<I")
_SNAP_HEAD = struct.Struct("<8sQI")
_U32 = struct.Struct("<I")


@contextlib.contextmanager
def _translate(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise BackendError(f"file vector store: {what} failed: {exc}") from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _encode(
    op: bytes, ids: Sequence[str], vectors: FloatMatrix | None, meta: Sequence[Any]
) -> bytes:
    header = json.dumps({"ids": list(ids), "meta": list(meta)}, separators=(",", ":")).encode()
    body = b"" if vectors is None else np.ascontiguousarray(vectors, dtype="<f4").tobytes()
    payload = op + _U32.pack(len(header)) + header + body
    return (
        _REC.pack(len(payload), zlib.crc32(payload), zlib.crc32(_LEN.pack(len(payload)))) + payload
    )


class FileBackend:
    """The exact index, persisted with an fsync'd operation log and snapshots.

    Args:
        path: the store directory (created if missing).
        dim: the vector dimension.
        metric: the metric.
        snapshot_bytes: write a snapshot when the log exceeds this many bytes.
        fsync: fsync each write (turn off only for throwaway data).

    Raises:
        LockedError: another process (or store object) has the directory open.
        CorruptionError: committed data failed verification.
        ConfigError: the store on disk has another ``dim`` or ``metric``.
        BackendError: the directory could not be read or written.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        dim: int,
        metric: Metric | str = Metric.COSINE,
        *,
        snapshot_bytes: int = 64 << 20,
        fsync: bool = True,
    ) -> None:
        self._dir = Path(path)
        self._index = ExactIndex(dim, Metric(metric))
        self._snapshot_bytes = snapshot_bytes
        self._fsync = fsync
        self._gen = 0
        self._log_fd = -1
        self._log_size = 0
        with _translate(f"opening {self._dir}"):
            self._dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self._dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            raise LockedError(
                f"vector store {str(self._dir)!r} is open in another process or store object"
            ) from exc
        try:
            with _translate(f"loading {self._dir}"):
                self._load()
        except BaseException:
            self.close()
            raise

    # -- properties ----------------------------------------------------------
    @property
    def dim(self) -> int:
        """The vector dimension."""
        return self._index.dim

    @property
    def metric(self) -> Metric:
        """The metric."""
        return self._index.metric

    @property
    def path(self) -> Path:
        """The store directory."""
        return self._dir

    @property
    def index(self) -> ExactIndex:
        """The in-memory exact index."""
        return self._index

    # -- loading -------------------------------------------------------------
    def _load(self) -> None:
        snap = self._dir / "snapshot"
        if snap.exists():
            self._read_snapshot(snap)
        for other in self._dir.glob("log.*"):
            suffix = other.name[4:]
            if not suffix.isdigit():
                continue
            if int(suffix) > self._gen:
                raise CorruptionError(
                    f"{str(other)!r} is newer than the snapshot (generation {self._gen}): "
                    "the snapshot is missing or was replaced"
                )
            if int(suffix) < self._gen:
                other.unlink()  # superseded by the snapshot
        with contextlib.suppress(FileNotFoundError):
            (self._dir / "snapshot.tmp").unlink()
        log = self._dir / f"log.{self._gen}"
        if log.exists():
            self._replay(log)
        else:
            self._start_log(log)
        self._log_fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        self._log_size = os.fstat(self._log_fd).st_size

    def _start_log(self, log: Path) -> None:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, _LOG_MAGIC)
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self._dir)

    def _read_snapshot(self, snap: Path) -> None:
        data = snap.read_bytes()
        if len(data) < _SNAP_HEAD.size:
            raise CorruptionError(f"snapshot {str(snap)!r} is truncated")
        magic, length, crc = _SNAP_HEAD.unpack_from(data)
        payload = memoryview(data)[_SNAP_HEAD.size :]
        if magic != _SNAP_MAGIC:
            raise CorruptionError(f"snapshot {str(snap)!r} has a bad header")
        if len(payload) != length or zlib.crc32(payload) != crc:
            raise CorruptionError(f"snapshot {str(snap)!r} failed its checksum")
        (hlen,) = _U32.unpack_from(payload)
        header = json.loads(bytes(payload[4 : 4 + hlen]))
        self._check_shape(int(header["dim"]), str(header["metric"]))
        ids: list[str] = header["ids"]
        vectors = np.frombuffer(payload[4 + hlen :], dtype="<f4").reshape(len(ids), self.dim)
        self._index.add(ids, vectors.astype(np.float32), header["meta"])
        self._gen = int(header["gen"])

    def _check_shape(self, dim: int, metric: str) -> None:
        if dim != self.dim or metric != self.metric.value:
            raise ConfigError(
                f"vector store {str(self._dir)!r} holds dim={dim}, metric={metric!r}; "
                f"opened with dim={self.dim}, metric={self.metric.value!r}"
            )

    def _replay(self, log: Path) -> None:
        data = log.read_bytes()
        if data[: len(_LOG_MAGIC)] != _LOG_MAGIC:
            if len(data) < len(_LOG_MAGIC) and _LOG_MAGIC.startswith(data):
                self._start_log(log)  # crashed while creating the log
                return
            raise CorruptionError(f"log {str(log)!r} has a bad header")
        pos = len(_LOG_MAGIC)
        end = len(data)
        view = memoryview(data)
        while pos < end:
            if end - pos < _REC.size:
                break  # torn header of the last record
            length, crc, len_crc = _REC.unpack_from(data, pos)
            if zlib.crc32(_LEN.pack(length)) != len_crc:
                raise CorruptionError(
                    f"log {str(log)!r}: record at byte {pos} has a damaged header"
                )
            start = pos + _REC.size
            if start + length > end:
                break  # torn payload of the last record
            payload = view[start : start + length]
            if zlib.crc32(payload) != crc:
                if start + length == end:
                    break  # the last record was in flight
                raise CorruptionError(f"log {str(log)!r}: record at byte {pos} failed its checksum")
            try:
                self._apply(payload)
            except (ValueError, KeyError, TypeError) as exc:
                raise CorruptionError(
                    f"log {str(log)!r}: record at byte {pos} is malformed: {exc}"
                ) from exc
            pos = start + length
        if pos < end:
            with open(log, "r+b") as fh:
                fh.truncate(pos)
                fh.flush()
                os.fsync(fh.fileno())

    def _apply(self, payload: memoryview) -> None:
        op = bytes(payload[:1])
        (hlen,) = _U32.unpack_from(payload, 1)
        header = json.loads(bytes(payload[5 : 5 + hlen]))
        ids: list[str] = header["ids"]
        if op == b"D":
            self._index.delete(ids)
            return
        if op not in (b"A", b"U"):
            raise ValueError(f"unknown operation {op!r}")
        vectors = np.frombuffer(payload[5 + hlen :], dtype="<f4").reshape(len(ids), self.dim)
        self._index.upsert(ids, vectors.astype(np.float32), header["meta"])

    # -- writing -------------------------------------------------------------
    def _append(self, record: bytes) -> None:
        with _translate("writing the log"):
            written = os.write(self._log_fd, record)
            while written < len(record):
                written += os.write(self._log_fd, record[written:])
            if self._fsync:
                os.fsync(self._log_fd)
        self._log_size += len(record)

    def _after_write(self) -> None:
        if self._log_size > self._snapshot_bytes:
            self.compact()

    def compact(self) -> None:
        """Write a snapshot of the current state and start an empty log.

        Raises:
            BackendError: the snapshot could not be written (the store stays valid).
        """
        gen = self._gen + 1
        index = self._index
        header = json.dumps(
            {
                "dim": self.dim,
                "metric": self.metric.value,
                "gen": gen,
                "ids": index.ids,
                "meta": index.metadata,
            },
            separators=(",", ":"),
        ).encode()
        body = index.vectors().astype("<f4", copy=False).tobytes()
        payload = _U32.pack(len(header)) + header + body
        tmp = self._dir / "snapshot.tmp"
        with _translate("writing a snapshot"):
            with open(tmp, "wb") as fh:
                fh.write(_SNAP_HEAD.pack(_SNAP_MAGIC, len(payload), zlib.crc32(payload)))
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._dir / "snapshot")
            _fsync_dir(self._dir)
            new_log = self._dir / f"log.{gen}"
            self._start_log(new_log)
            old_fd, old_gen = self._log_fd, self._gen
            self._log_fd = os.open(new_log, os.O_WRONLY | os.O_APPEND)
            self._gen = gen
            self._log_size = len(_LOG_MAGIC)
            os.close(old_fd)
            with contextlib.suppress(FileNotFoundError):
                (self._dir / f"log.{old_gen}").unlink()

    def add(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert new ids (logged and fsync'd before returning)."""
        check_new(self._index, ids)
        self._append(_encode(b"A", ids, vectors, metadata))
        self._index.add(ids, vectors, metadata)
        self._after_write()

    def upsert(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert or replace (logged and fsync'd before returning)."""
        self._append(_encode(b"U", ids, vectors, metadata))
        self._index.upsert(ids, vectors, metadata)
        self._after_write()

    def delete(self, ids: Sequence[str]) -> int:
        """Remove ids (logged and fsync'd before returning)."""
        present = [i for i in ids if i in self._index]
        if not present:
            return 0
        self._append(_encode(b"D", present, None, []))
        removed = self._index.delete(present)
        self._after_write()
        return removed

    # -- reading -------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> list[Record | None]:
        """Records for ``ids`` (``None`` where unknown)."""
        return [self._index.get(i) for i in ids]

    def count(self) -> int:
        """How many vectors are stored."""
        return len(self._index)

    def search_many(self, queries: FloatMatrix, k: int, where: Filter) -> list[list[Hit]]:
        """Exact top-``k`` per query."""
        return self._index.search_many(queries, k, where)

    def disk_bytes(self) -> int:
        """Bytes used on disk by the snapshot and the log."""
        total = 0
        for name in ("snapshot", f"log.{self._gen}"):
            with contextlib.suppress(FileNotFoundError):
                total += (self._dir / name).stat().st_size
        return total

    def close(self) -> None:
        """Close the log and release the lock (idempotent)."""
        if self._log_fd >= 0:
            os.close(self._log_fd)
            self._log_fd = -1
        if self._lock_fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1


def path_of(url: str) -> Path:
    """The filesystem path of a ``file:///path`` or ``annoy:///path`` URL.

    Raises:
        ConfigError: the URL has a host or no path.
    """
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(
            f"{url!r}: use three slashes for a local path, e.g. {parts.scheme}:///var/lib/store"
        )
    path = unquote(parts.path)
    if not path or path == "/":
        raise ConfigError(f"{url!r} has no path")
    return Path(path)


def int_option(url: str, known: dict[str, int]) -> dict[str, int]:
    """Parse integer query options of ``url`` against ``known`` defaults.

    Raises:
        ConfigError: an unknown option or a non-integer value.
    """
    out = dict(known)
    for key, values in parse_qs(urlsplit(url).query).items():
        if key not in known:
            raise ConfigError(f"unknown option {key!r} in {url!r} (known: {', '.join(known)})")
        try:
            out[key] = int(values[-1])
        except ValueError:
            raise ConfigError(f"option {key!r} in {url!r} must be an int") from None
    return out


def open_backend(url: str, *, dim: int, metric: Metric) -> FileBackend:
    """Open ``file:///path[?snapshot_bytes=N&fsync=0|1]``.

    Raises:
        ConfigError: bad URL or option.
        LockedError: another process has the store open.
        CorruptionError: committed data failed verification.
        BackendError: the directory could not be read or written.
    """
    opts = int_option(url, {"snapshot_bytes": 64 << 20, "fsync": 1})
    return FileBackend(
        path_of(url), dim, metric, snapshot_bytes=opts["snapshot_bytes"], fsync=bool(opts["fsync"])
    )
