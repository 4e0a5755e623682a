"""``file:///path``: the exact index persisted crash-safely in a directory.

Layout of the store directory::

    LOCK          held with an exclusive ``flock`` while a process has the store open
    snapshot      the whole index at some generation G (in checksummed chunks)
    log.G         operations since that snapshot, appended and fsync'd per call

Every record (a log operation, a snapshot chunk) is framed as ``sync marker |
length | record number | crc32(length, number) | crc32(payload) | payload``: a
damaged length, a record out of place and a damaged payload are each detected, and
the sync marker lets a reader find the intact records after a damaged one to count
them. A log operation is an operation byte (``A`` add, ``U`` upsert, ``D`` delete),
a JSON header with the ids and metadata, and the raw float32 vectors. A call returns
only after its record is written and fsync'd, so an acknowledged write survives
``kill -9`` and power loss (as far as the disk honours fsync).

The log starts with a checksummed header: the store's ``dim`` and metric, whether
the store was closed cleanly, and how many records (and bytes) the log holds; every
append rewrites it in the same fsync. So on open:

- a store that was **closed cleanly** must hold exactly what it held at close: any
  flipped byte, truncation (even at a record boundary) or appended garbage raises
  :class:`~avl.errors.CorruptionError`;
- in a store whose last process **crashed**, only the last write can be missing or
  torn (it may have been in flight, never acknowledged): it is discarded, logged as
  a warning on ``avl.vectors`` with the file, offset and bytes. Anything more
  missing, or damage with intact records after it, raises.

A :class:`~avl.errors.CorruptionError` names the file, the byte offset and how many
acknowledged records the damage reaches (``records_affected``, counted from the
clean-close header, or from the intact records found after the damage). Nothing is
repaired silently: :func:`repair` (``avl vectors repair PATH``, or
``file:///path?repair=1``) keeps every record before the first damage in each file,
moves the damaged files aside (``<name>.damaged-N``), writes a fresh snapshot and
returns a :class:`RepairReport` of what was lost, also logged as warnings.

When the log grows past ``snapshot_bytes`` (or :meth:`FileBackend.compact` is
called) the next generation's empty log is created (written to a temporary file,
fsync'd, renamed), then a snapshot of generation G+1 is written the same way, then
``log.G`` is removed. A crash at any point leaves the old snapshot with its complete
log (plus, perhaps, an empty log of the next generation, which is removed) or the
new snapshot with its log.

Stores written by the first format (``AVLVLOG1``/``AVLVSNP1``) are read and
rewritten in the current one on open.

A second process (or a second store in the same process) opening the directory
gets :class:`~avl.errors.LockedError`; there is no shared or read-only mode.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import struct
import weakref
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import numpy as np

from avl._args import describe
from avl.errors import (
    BackendError,
    ConfigError,
    CorruptionError,
    InvalidInputError,
    LockedError,
    NotFoundError,
)
from avl.vectors._exact import ExactIndex
from avl.vectors._filters import Filter
from avl.vectors._types import FloatMatrix, Hit, Metric, Record
from avl.vectors.backends.memory import check_new

__all__ = ["Damage", "FileBackend", "RepairReport", "check", "open_backend", "repair"]

log = logging.getLogger("avl.vectors")

_LOG_MAGIC = b"AVLVLOG2"
_SNAP_MAGIC = b"AVLVSNP2"
_LOG_MAGIC_V1 = b"AVLVLOG1"
_SNAP_MAGIC_V1 = b"AVLVSNP1"
_SYNC = b"\xa7\x1bVR"
# sync, payload length, record number, crc32(length, number), crc32(payload)
_FRAME = struct.Struct("<4sIIII")
_LEN_NUM = struct.Struct("<II")
# magic, state, metric code, reserved, dim, records, bytes, crc32 of bytes 8..32
_LOG_HEAD = struct.Struct("<8sBBHIQQI")
_SNAP_HEAD = struct.Struct("<8sII")  # magic, JSON header length, its crc32
_U32 = struct.Struct("<I")
_CLEAN, _DIRTY = ord("C"), ord("D")
_METRIC_CODE = {Metric.COSINE: 1, Metric.IP: 2, Metric.L2: 3}
_CODE_METRIC = {v: k for k, v in _METRIC_CODE.items()}
#: The largest vector dimension a file store accepts (as VectorStore).
MAX_DIM = 65_536
_CHUNK_BYTES = 256 << 10  # a damaged snapshot chunk loses at most about this much

# first format (read for migration only)
_REC_V1 = struct.Struct("<III")
_LEN_V1 = struct.Struct("<I")
_SNAP_HEAD_V1 = struct.Struct("<8sQI")


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


def _frame(index: int, payload: bytes) -> bytes:
    length = len(payload)
    return (
        _FRAME.pack(
            _SYNC, length, index, zlib.crc32(_LEN_NUM.pack(length, index)), zlib.crc32(payload)
        )
        + payload
    )


def _encode(
    op: bytes, ids: Sequence[str], vectors: FloatMatrix | None, meta: Sequence[Any]
) -> bytes:
    header = json.dumps({"ids": list(ids), "meta": list(meta)}, separators=(",", ":")).encode()
    body = b"" if vectors is None else np.ascontiguousarray(vectors, dtype="<f4").tobytes()
    return op + _U32.pack(len(header)) + header + body


def _log_header(state: int, metric: Metric, dim: int, count: int, size: int) -> bytes:
    body = struct.pack("<BBHIQQ", state, _METRIC_CODE[metric], 0, dim, count, size)
    return _LOG_MAGIC + body + _U32.pack(zlib.crc32(body))


@attrs.frozen(kw_only=True)
class Damage:
    """One damaged place in a store file.

    Attributes:
        path: the file.
        offset: the byte offset where the damage starts.
        records_affected: acknowledged records from there on (``None`` when unknown).
        message: what is wrong.
    """

    path: str
    offset: int
    records_affected: int | None
    message: str

    def error(self) -> CorruptionError:
        """This damage as the :class:`~avl.errors.CorruptionError` a strict open raises."""
        return CorruptionError(
            self.message,
            path=self.path,
            offset=self.offset,
            records_affected=self.records_affected,
        )


@attrs.frozen(kw_only=True)
class RepairReport:
    """What a repair found and lost.

    Attributes:
        path: the store directory.
        damage: every damaged place found (empty when the store was intact).
        records_lost: acknowledged records dropped (log operations and snapshot
            entries from the first damage in each file on; ``0`` when intact).
        ids_lost: the ids of dropped records that could still be read (records past
            a damaged one whose own bytes are intact); a damaged record's ids cannot
            be known.
        bytes_discarded: bytes of the store files that were not kept.
        kept_aside: where the damaged files were moved (nothing is deleted).
        vectors: how many vectors the store holds after the repair.
    """

    path: str
    damage: tuple[Damage, ...] = ()
    records_lost: int = 0
    ids_lost: tuple[str, ...] = ()
    bytes_discarded: int = 0
    kept_aside: tuple[str, ...] = ()
    vectors: int = 0

    @property
    def intact(self) -> bool:
        """Whether nothing was damaged."""
        return not self.damage

    def summary(self) -> str:
        """One paragraph for a person (what the CLI prints)."""
        if self.intact:
            return f"{self.path}: intact ({self.vectors} vectors)"
        lines = [
            f"{self.path}: REPAIRED, {self.records_lost} acknowledged record(s) lost, "
            f"{self.bytes_discarded} byte(s) discarded; {self.vectors} vectors kept"
        ]
        lines += [f"  {d.message}" for d in self.damage]
        if self.ids_lost:
            shown = ", ".join(repr(i) for i in self.ids_lost[:20])
            more = f" and {len(self.ids_lost) - 20} more" if len(self.ids_lost) > 20 else ""
            lines.append(f"  ids known to be lost: {shown}{more}")
        lines += [f"  damaged file kept as {p}" for p in self.kept_aside]
        return "\n".join(lines)


@attrs.define
class _Scan:
    """Frames read from a buffer: the intact run from the start, then what follows."""

    frames: list[tuple[int, memoryview]]  # (offset, payload), numbered from ``first``
    end: int  # the offset after the last intact frame of the run
    problem: str = ""  # why the run stopped before the end of the buffer
    later: list[tuple[int, int, memoryview]] = attrs.Factory(list)  # (offset, number, payload)


def _scan(data: bytes, start: int, first: int) -> _Scan:
    view = memoryview(data)
    pos, number, end = start, first, len(data)
    frames: list[tuple[int, memoryview]] = []
    problem = ""
    while pos < end:
        if end - pos < _FRAME.size:
            problem = "a record header is cut short"
            break
        sync, length, num, hcrc, pcrc = _FRAME.unpack_from(data, pos)
        if sync != _SYNC or zlib.crc32(_LEN_NUM.pack(length, num)) != hcrc:
            problem = "a record header is damaged"
            break
        if num != number:
            problem = f"record number {num} stands where {number} belongs"
            break
        if pos + _FRAME.size + length > end:
            problem = "a record is cut short"
            break
        payload = view[pos + _FRAME.size : pos + _FRAME.size + length]
        if zlib.crc32(payload) != pcrc:
            problem = "a record failed its checksum"
            break
        frames.append((pos, payload))
        pos += _FRAME.size + length
        number += 1
    scan = _Scan(frames=frames, end=pos, problem=problem)
    if problem:
        scan.later = _resync(data, pos + 1)
    return scan


def _resync(data: bytes, start: int) -> list[tuple[int, int, memoryview]]:
    """Every intact frame after ``start`` (found by its sync marker)."""
    view = memoryview(data)
    out: list[tuple[int, int, memoryview]] = []
    pos = data.find(_SYNC, start)
    while pos >= 0 and len(data) - pos >= _FRAME.size:
        _, length, num, hcrc, pcrc = _FRAME.unpack_from(data, pos)
        stop = pos + _FRAME.size + length
        if zlib.crc32(_LEN_NUM.pack(length, num)) == hcrc and stop <= len(data):
            payload = view[pos + _FRAME.size : stop]
            if zlib.crc32(payload) == pcrc:
                out.append((pos, num, payload))
                pos = data.find(_SYNC, stop)
                continue
        pos = data.find(_SYNC, pos + 1)
    return out


def _op_ids(payload: memoryview) -> list[str]:
    """The ids a log operation names (best effort, for the repair report)."""
    try:
        (hlen,) = _U32.unpack_from(payload, 1)
        ids = json.loads(bytes(payload[5 : 5 + hlen]))["ids"]
        return [i for i in ids if isinstance(i, str)]
    except (ValueError, KeyError, TypeError, struct.error, RecursionError):
        return []


def _chunk_ids(payload: memoryview) -> list[str]:
    try:
        (hlen,) = _U32.unpack_from(payload, 0)
        ids = json.loads(bytes(payload[4 : 4 + hlen]))["ids"]
        return [i for i in ids if isinstance(i, str)]
    except (ValueError, KeyError, TypeError, struct.error, RecursionError):
        return []


def _check_ids_meta(header: Any) -> tuple[list[str], list[dict[str, Any]]]:
    if not isinstance(header, dict):
        raise ValueError("the record header is not an object")
    ids, meta = header.get("ids"), header.get("meta")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError("the record's ids are not a list of strings")
    if not isinstance(meta, list) or not all(isinstance(m, dict) for m in meta):
        raise ValueError("the record's metadata is not a list of objects")
    return ids, meta


class FileBackend:
    """The exact index, persisted with an fsync'd operation log and snapshots.

    Args:
        path: the store directory (created if missing).
        dim: the vector dimension (1..65,536).
        metric: the metric.
        snapshot_bytes: write a snapshot when the log exceeds this many bytes.
        fsync: fsync each write (turn off only for throwaway data).
        repair: on damage, keep what is intact, move the damaged files aside and
            write a fresh snapshot instead of raising; :attr:`repair_report` says
            what was lost (also logged as warnings on ``avl.vectors``).

    Raises:
        LockedError: another process (or store object) has the directory open.
        CorruptionError: committed data failed verification (names the file, the
            offset and how many acknowledged records are affected).
        ConfigError: the store on disk has another ``dim`` or ``metric``, the path
            is a file, or a bad argument.
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
        repair: bool = False,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)) or "\x00" in os.fspath(path):
            raise ConfigError(f"path must be a file-system path, got {describe(path)}")
        if isinstance(dim, bool) or not isinstance(dim, int) or not 0 < dim <= MAX_DIM:
            raise ConfigError(f"dim must be an int in 1..{MAX_DIM}, got {describe(dim)}")
        if isinstance(snapshot_bytes, bool) or not isinstance(snapshot_bytes, int):
            raise ConfigError(f"snapshot_bytes must be an int, got {describe(snapshot_bytes)}")
        try:
            if not isinstance(metric, (str, Metric)):
                raise ValueError(metric)
            metric = Metric(metric)
        except ValueError:
            raise ConfigError(f"unknown metric {describe(metric)}") from None
        self._dir = Path(path)
        self._index = ExactIndex(dim, metric)
        self._snapshot_bytes = max(snapshot_bytes, 1)
        self._fsync = bool(fsync)
        self._repair = bool(repair)
        self._gen = 0
        # the open files, shared with a finalizer: a store dropped without close()
        # (a notebook cell run again, a temporary) closes them when it is
        # collected, so its lock does not outlive it (the log stays marked dirty
        # and the next open checks it, as after a crash)
        self._files = _Files()
        weakref.finalize(self, self._files.close)
        self._size = 0  # bytes in the log
        self._count = 0  # records in the log
        self._broken = ""
        self._damage: list[Damage] = []
        self._ids_lost: list[str] = []
        self._records_lost = 0
        self._discarded = 0
        self._aside: list[str] = []
        self._migrate = False
        #: What :meth:`__init__` repaired (``None`` without ``repair=True``).
        self.repair_report: RepairReport | None = None
        if self._dir.exists() and not self._dir.is_dir():
            raise ConfigError(
                f"vector store path {str(self._dir)!r} is a file; a store is a directory"
            )
        with _translate(f"opening {self._dir}"):
            self._dir.mkdir(parents=True, exist_ok=True)
            self._files.lock = os.open(self._dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._files.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._files.lock)
            self._files.lock = -1
            raise LockedError(
                f"vector store {str(self._dir)!r} is open in another process or store object"
            ) from exc
        try:
            with _translate(f"loading {self._dir}"):
                self._load()
        except BaseException:
            self._release()
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

    # -- damage --------------------------------------------------------------
    def _damaged(
        self,
        file: Path,
        offset: int,
        affected: int | None,
        what: str,
        *,
        lost_ids: Sequence[str] = (),
        discarded: int = 0,
    ) -> None:
        """Raise, or (repairing) note the damage and carry on with what is intact."""
        n = "an unknown number of" if affected is None else str(affected)
        damage = Damage(
            path=str(file),
            offset=offset,
            records_affected=affected,
            message=(
                f"{str(file)!r}: byte {offset}: {what}; {n} acknowledged record(s) "
                "from there on are affected"
            ),
        )
        if not self._repair:
            raise damage.error()
        log.warning("vector store damaged (repairing): %s", damage.message)
        self._damage.append(damage)
        self._records_lost += affected or 0
        self._ids_lost.extend(lost_ids)
        self._discarded += discarded
        self._aside.append(file.name)

    # -- loading -------------------------------------------------------------
    def _load(self) -> None:
        snap = self._dir / "snapshot"
        snapshot_v1 = False
        if snap.exists():
            snapshot_v1 = self._read_snapshot(snap)
        with contextlib.suppress(FileNotFoundError):
            (self._dir / "snapshot.tmp").unlink()
        with contextlib.suppress(FileNotFoundError):
            (self._dir / "log.tmp").unlink()
        for other in sorted(self._dir.glob("log.*")):
            suffix = other.name[4:]
            if not suffix.isdigit():
                continue
            gen = int(suffix)
            if gen == self._gen + 1 and self._empty_log(other):
                other.unlink()  # created by a compaction that did not finish
            elif gen > self._gen:
                self._damaged(
                    other,
                    0,
                    None,
                    f"a log of generation {gen} is newer than the snapshot (generation "
                    f"{self._gen}): the snapshot is missing or was replaced",
                    discarded=other.stat().st_size,
                )
            elif gen < self._gen:
                other.unlink()  # superseded by the snapshot
        current = self._dir / f"log.{self._gen}"
        if current.exists():
            self._replay(current)
        elif snap.exists() and not snapshot_v1:
            self._damaged(
                current,
                0,
                None,
                "the log of the current generation is missing (writes since the last "
                "snapshot may be lost)",
            )
        if self._damage or self._migrate:
            self._rewrite()
            return
        if not current.exists():
            self._create_log(current, 0)
        self._open_log(current, self._count)
        if self._repair:
            self.repair_report = RepairReport(path=str(self._dir), vectors=len(self._index))

    def _empty_log(self, path: Path) -> bool:
        try:
            data = path.read_bytes()
        except OSError:
            return False
        if len(data) != _LOG_HEAD.size or data[:8] != _LOG_MAGIC:
            return False
        *_, count, size, crc = _LOG_HEAD.unpack_from(data)
        return bool(zlib.crc32(data[8:32]) == crc and count == 0 and size == _LOG_HEAD.size)

    def _create_log(self, path: Path, count: int) -> None:
        """A new, empty log (temporary file, fsync, rename, directory fsync)."""
        tmp = self._dir / "log.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, _log_header(_DIRTY, self.metric, self.dim, count, _LOG_HEAD.size))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(self._dir)

    def _open_log(self, path: Path, count: int) -> None:
        """Make ``path`` the log written to (positional writes: the header is rewritten
        in place, records go at ``self._size``) and mark it dirty."""
        fd = os.open(path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            os.pwrite(fd, _log_header(_DIRTY, self.metric, self.dim, count, size), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._files.log, self._size, self._count = fd, size, count

    def _write_state(self, state: int) -> None:
        """Rewrite the log header in place (one sector): dirty on open, clean on close."""
        header = _log_header(state, self.metric, self.dim, self._count, self._size)
        os.pwrite(self._files.log, header, 0)
        os.fsync(self._files.log)

    def _check_shape(self, dim: int, metric: str) -> None:
        if dim != self.dim or metric != self.metric.value:
            raise ConfigError(
                f"vector store {str(self._dir)!r} holds dim={dim}, metric={metric!r}; "
                f"opened with dim={self.dim}, metric={self.metric.value!r}"
            )

    def _read_snapshot(self, snap: Path) -> bool:
        """Load the snapshot; returns whether it was in the first format."""
        data = snap.read_bytes()
        if data[:8] == _SNAP_MAGIC_V1:
            self._read_snapshot_v1(snap, data)
            self._migrate = True
            return True
        if len(data) < _SNAP_HEAD.size or data[:8] != _SNAP_MAGIC:
            self._gen = self._newest_log()
            self._damaged(snap, 0, None, "the snapshot's header is damaged", discarded=len(data))
            return False
        _, hlen, hcrc = _SNAP_HEAD.unpack_from(data)
        raw = data[_SNAP_HEAD.size : _SNAP_HEAD.size + hlen]
        header: Any = None
        if len(raw) == hlen and zlib.crc32(raw) == hcrc:
            with contextlib.suppress(ValueError, RecursionError):
                header = json.loads(raw)
        if not isinstance(header, dict) or not {"dim", "metric", "gen", "count"} <= set(header):
            self._gen = self._newest_log()
            self._damaged(
                snap, 8, None, "the snapshot's description is damaged", discarded=len(data)
            )
            return False
        self._check_shape(header["dim"], header["metric"])
        self._gen = int(header["gen"])
        total = int(header["count"])
        scan = _scan(data, _SNAP_HEAD.size + hlen, 0)
        kept = 0
        for offset, payload in scan.frames:
            try:
                kept += self._load_chunk(payload)
            except (ValueError, KeyError, TypeError, struct.error, RecursionError) as exc:
                self._damaged(
                    snap,
                    offset,
                    total - kept,
                    f"a snapshot chunk is malformed ({exc})",
                    discarded=len(data) - offset,
                )
                return False
        if scan.problem or kept != total:
            at = scan.end
            why = scan.problem or (
                f"the snapshot ends after {kept} of its {total} entries"
                if kept < total
                else f"the snapshot holds {kept} entries, its header says {total}"
            )
            lost: list[str] = []
            for _, _, payload in scan.later:
                lost.extend(_chunk_ids(payload))
            self._damaged(
                snap, at, max(total - kept, 0), why, lost_ids=lost, discarded=len(data) - at
            )
        return False

    def _newest_log(self) -> int:
        """The newest log generation on disk (the snapshot's, when its header is lost)."""
        gens = [int(p.name[4:]) for p in self._dir.glob("log.*") if p.name[4:].isdigit()]
        return max(gens, default=0)

    def _load_chunk(self, payload: memoryview) -> int:
        (hlen,) = _U32.unpack_from(payload, 0)
        ids, meta = _check_ids_meta(json.loads(bytes(payload[4 : 4 + hlen])))
        if len(meta) != len(ids):
            raise ValueError("ids and metadata differ in length")
        vectors = np.frombuffer(payload[4 + hlen :], dtype="<f4").reshape(len(ids), self.dim)
        self._index.upsert(ids, vectors.astype(np.float32), meta)
        return len(ids)

    def _read_snapshot_v1(self, snap: Path, data: bytes) -> None:
        if len(data) < _SNAP_HEAD_V1.size:
            raise CorruptionError(f"snapshot {str(snap)!r} is truncated", path=str(snap))
        _, length, crc = _SNAP_HEAD_V1.unpack_from(data)
        payload = memoryview(data)[_SNAP_HEAD_V1.size :]
        if len(payload) != length or zlib.crc32(payload) != crc:
            raise CorruptionError(
                f"snapshot {str(snap)!r} failed its checksum", path=str(snap), offset=0
            )
        (hlen,) = _U32.unpack_from(payload)
        header = json.loads(bytes(payload[4 : 4 + hlen]))
        self._check_shape(int(header["dim"]), str(header["metric"]))
        ids: list[str] = header["ids"]
        vectors = np.frombuffer(payload[4 + hlen :], dtype="<f4").reshape(len(ids), self.dim)
        self._index.add(ids, vectors.astype(np.float32), header["meta"])
        self._gen = int(header["gen"])

    def _replay(self, path: Path) -> None:
        data = path.read_bytes()
        if data[:8] == _LOG_MAGIC_V1:
            self._replay_v1(path, data)
            self._migrate = True
            return
        head_ok = False
        if len(data) >= _LOG_HEAD.size and data[:8] == _LOG_MAGIC:
            _, state, code, _, dim, count, size, crc = _LOG_HEAD.unpack_from(data)
            head_ok = zlib.crc32(data[8:32]) == crc and state in (_CLEAN, _DIRTY)
            if head_ok and code in _CODE_METRIC:
                self._check_shape(dim, _CODE_METRIC[code].value)
        if not head_ok:
            self._damaged(path, 0, None, "the log's header is damaged")
            # repairing: keep what parses, as if the last process had crashed
            state, count, size = _DIRTY, 0, _LOG_HEAD.size
        scan = _scan(data, _LOG_HEAD.size, 0)
        applied = 0
        for offset, payload in scan.frames:
            try:
                self._apply(payload)
            except (ValueError, KeyError, TypeError, struct.error, RecursionError) as exc:
                later = [o for o, _ in scan.frames if o > offset]
                self._damaged(
                    path,
                    offset,
                    max(count - applied, 1 + len(later)),
                    f"a record is malformed ({exc})",
                    discarded=len(data) - offset,
                )
                self._truncate_at(path, offset, applied)
                return
            applied += 1
        end = scan.end
        problem, affected = "", 0
        last_later = max((num for _, num, _ in scan.later), default=-1)
        if state == _CLEAN:
            # closed cleanly: exactly what the header counts, nothing more, nothing less
            if scan.problem or applied < count:
                problem = scan.problem or (
                    f"the log ends after {applied} of the {count} records it held when it "
                    "was closed"
                )
                affected = count - applied
            elif applied > count or len(data) != size:
                problem = (
                    f"{len(data) - size} unexpected byte(s) after the {count} records the log "
                    "held when it was closed"
                )
        elif applied > count + 1:
            problem = f"{applied - count} record(s) beyond the {count} the log header counts"
        elif applied < count - 1 or (scan.problem and scan.later):
            # Not closed cleanly: every append updates the header's count in the same
            # fsync, so only the last write (in flight when the process stopped) may
            # be missing or torn. More than that missing, or intact records after
            # the damage, is damage.
            problem = scan.problem or (
                f"the log ends after {applied} of the {count} records it counts"
            )
            affected = max(count - applied, last_later + 1 - applied, 1)
        if problem:
            self._damaged(
                path,
                end,
                max(affected, 0),
                problem,
                lost_ids=[i for *_, p in scan.later for i in _op_ids(p)],
                discarded=len(data) - end,
            )
            self._truncate_at(path, end, applied)
            return
        if state == _DIRTY and (end < len(data) or applied == count - 1):
            # the write in flight when the last process stopped: never acknowledged
            log.warning(
                "vector store %r was not closed cleanly: the write in flight when it "
                "stopped (record %d) is discarded (%d byte(s) at byte %d of %r%s)",
                str(self._dir),
                count - 1 if applied == count - 1 else applied,
                len(data) - end,
                end,
                str(path),
                f": {scan.problem}" if scan.problem else "",
            )
            self._truncate_at(path, end, applied, force=True)
            return
        self._count = applied

    def _truncate_at(self, path: Path, end: int, applied: int, *, force: bool = False) -> None:
        self._count = applied
        if self._repair and not force:
            return  # the whole store is rewritten; the damaged file is kept aside
        with open(path, "r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())

    def _replay_v1(self, log_path: Path, data: bytes) -> None:
        pos, end = len(_LOG_MAGIC_V1), len(data)
        view = memoryview(data)
        while pos < end:
            if end - pos < _REC_V1.size:
                break
            length, crc, len_crc = _REC_V1.unpack_from(data, pos)
            if zlib.crc32(_LEN_V1.pack(length)) != len_crc:
                raise CorruptionError(
                    f"log {str(log_path)!r}: record at byte {pos} has a damaged header",
                    path=str(log_path),
                    offset=pos,
                )
            start = pos + _REC_V1.size
            if start + length > end:
                break
            payload = view[start : start + length]
            if zlib.crc32(payload) != crc:
                if start + length == end:
                    break
                raise CorruptionError(
                    f"log {str(log_path)!r}: record at byte {pos} failed its checksum",
                    path=str(log_path),
                    offset=pos,
                )
            try:
                self._apply(payload)
            except (ValueError, KeyError, TypeError) as exc:
                raise CorruptionError(
                    f"log {str(log_path)!r}: record at byte {pos} is malformed: {exc}",
                    path=str(log_path),
                    offset=pos,
                ) from exc
            pos = start + length
        if pos < end:
            log.warning(
                "vector store %r: discarding a torn last record (%d bytes) of %r",
                str(self._dir),
                end - pos,
                str(log_path),
            )

    def _apply(self, payload: memoryview) -> None:
        op = bytes(payload[:1])
        (hlen,) = _U32.unpack_from(payload, 1)
        ids, meta = _check_ids_meta(json.loads(bytes(payload[5 : 5 + hlen])))
        if op == b"D":
            self._index.delete(ids)
            return
        if op not in (b"A", b"U"):
            raise ValueError(f"unknown operation {op!r}")
        if len(meta) != len(ids) or len(set(ids)) != len(ids):
            raise ValueError("ids and metadata differ in length, or ids repeat")
        vectors = np.frombuffer(payload[5 + hlen :], dtype="<f4").reshape(len(ids), self.dim)
        self._index.upsert(ids, vectors.astype(np.float32), meta)

    def _rewrite(self) -> None:
        """After a repair or a migration: keep damaged files aside, write a fresh state."""
        kept: list[str] = []
        if self._repair:
            for name in dict.fromkeys(self._aside):
                src = self._dir / name
                if not src.exists():
                    continue
                n = 1
                while (self._dir / f"{name}.damaged-{n}").exists():
                    n += 1
                dst = self._dir / f"{name}.damaged-{n}"
                os.replace(src, dst)
                kept.append(dst.name)
            _fsync_dir(self._dir)
        self._gen_write(self._gen + 1, remove_old=True)
        if self._repair:
            report = RepairReport(
                path=str(self._dir),
                damage=tuple(self._damage),
                records_lost=self._records_lost,
                ids_lost=tuple(dict.fromkeys(self._ids_lost)),
                bytes_discarded=self._discarded,
                kept_aside=tuple(kept),
                vectors=len(self._index),
            )
            self.repair_report = report
            if not report.intact:
                log.warning("vector store repaired: %s", report.summary())

    # -- writing -------------------------------------------------------------
    def _append(self, payload: bytes) -> None:
        if self._broken:
            raise BackendError(
                f"file vector store {str(self._dir)!r} cannot be written any more: "
                f"{self._broken}; close and reopen it"
            )
        record = memoryview(_frame(self._count, payload))
        size = self._size + len(record)
        header = _log_header(_DIRTY, self.metric, self.dim, self._count + 1, size)
        try:
            done = 0
            while done < len(record):
                done += os.pwrite(self._files.log, record[done:], self._size + done)
            # the header counts this record too, flushed by the same fsync: after a
            # crash, only this write can be missing
            os.pwrite(self._files.log, header, 0)
            if self._fsync:
                os.fsync(self._files.log)
        except OSError as exc:
            # Take the partial record back, so later writes never follow garbage.
            try:
                os.ftruncate(self._files.log, self._size)
                os.pwrite(
                    self._files.log,
                    _log_header(_DIRTY, self.metric, self.dim, self._count, self._size),
                    0,
                )
                os.fsync(self._files.log)
            except OSError as again:
                self._broken = f"a failed write could not be undone ({again})"
            raise BackendError(f"file vector store: writing the log failed: {exc}") from exc
        self._size = size
        self._count += 1

    def _after_write(self) -> None:
        if self._size > self._snapshot_bytes:
            self.compact()

    def _gen_write(self, gen: int, *, remove_old: bool) -> None:
        """Create generation ``gen``: its empty log first, then its snapshot."""
        new_log = self._dir / f"log.{gen}"
        self._create_log(new_log, 0)
        index = self._index
        header = json.dumps(
            {
                "dim": self.dim,
                "metric": self.metric.value,
                "gen": gen,
                "count": len(index),
            },
            separators=(",", ":"),
        ).encode()
        tmp = self._dir / "snapshot.tmp"
        ids, meta = index.ids, index.metadata
        per_chunk = max(1, _CHUNK_BYTES // (4 * self.dim + 64))
        vectors = index.vectors()
        with open(tmp, "wb") as fh:
            fh.write(_SNAP_HEAD.pack(_SNAP_MAGIC, len(header), zlib.crc32(header)))
            fh.write(header)
            for n, lo in enumerate(range(0, len(ids), per_chunk)):
                hi = lo + per_chunk
                head = json.dumps({"ids": ids[lo:hi], "meta": meta[lo:hi]}).encode()
                body = vectors[lo:hi].astype("<f4", copy=False).tobytes()
                fh.write(_frame(n, _U32.pack(len(head)) + head + body))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._dir / "snapshot")
        _fsync_dir(self._dir)
        old_fd, old_gen = self._files.log, self._gen
        self._open_log(new_log, 0)  # the switch: nothing before this changed our state
        self._gen = gen
        if old_fd >= 0:
            os.close(old_fd)
        if remove_old:
            for other in self._dir.glob("log.*"):
                suffix = other.name[4:]
                if suffix.isdigit() and int(suffix) != gen:
                    other.unlink()
        elif old_gen != gen:
            with contextlib.suppress(FileNotFoundError):
                (self._dir / f"log.{old_gen}").unlink()

    def compact(self) -> None:
        """Write a snapshot of the current state and start an empty log.

        Raises:
            BackendError: the snapshot could not be written (the store stays valid).
        """
        with _translate("writing a snapshot"):
            self._gen_write(self._gen + 1, remove_old=False)

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
        """Mark the log closed cleanly, close it and release the lock (idempotent).

        After a clean close, any change to the files (a flipped byte, a truncation,
        appended bytes) is reported as corruption on the next open.
        """
        if self._files.log >= 0 and not self._broken:
            with contextlib.suppress(OSError):
                self._write_state(_CLEAN)
        self._release()

    def _release(self) -> None:
        if self._files.log >= 0:
            os.close(self._files.log)
            self._files.log = -1
        if self._files.lock >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self._files.lock, fcntl.LOCK_UN)
            os.close(self._files.lock)
            self._files.lock = -1


class _Files:
    """A :class:`FileBackend`'s open file descriptors (-1: none), apart from the
    backend so that a finalizer can close what a collected backend left open."""

    __slots__ = ("lock", "log")

    def __init__(self) -> None:
        self.lock = -1  # the lock file's (closing it releases the ``flock``)
        self.log = -1  # the log's, open for appending

    def close(self) -> None:
        """Close both (idempotent)."""
        for name in self.__slots__:
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                with contextlib.suppress(OSError):
                    os.close(fd)


def _shape_of(path: Path) -> tuple[int, Metric] | None:
    """``(dim, metric)`` of a store, from its snapshot or its log header."""
    snap = path / "snapshot"
    with contextlib.suppress(OSError, ValueError, KeyError, struct.error, RecursionError):
        data = snap.read_bytes()
        if data[:8] == _SNAP_MAGIC:
            _, hlen, hcrc = _SNAP_HEAD.unpack_from(data)
            raw = data[_SNAP_HEAD.size : _SNAP_HEAD.size + hlen]
            if zlib.crc32(raw) == hcrc:
                header = json.loads(raw)
                return int(header["dim"]), Metric(header["metric"])
        if data[:8] == _SNAP_MAGIC_V1:
            (hlen,) = _U32.unpack_from(data, _SNAP_HEAD_V1.size)
            start = _SNAP_HEAD_V1.size + 4
            header = json.loads(data[start : start + hlen])
            return int(header["dim"]), Metric(header["metric"])
    for log_path in sorted(path.glob("log.*")):
        with contextlib.suppress(OSError, ValueError, struct.error):
            data = log_path.read_bytes()[: _LOG_HEAD.size]
            if len(data) == _LOG_HEAD.size and data[:8] == _LOG_MAGIC:
                _, _, code, _, dim, _, _, crc = _LOG_HEAD.unpack_from(data)
                if zlib.crc32(data[8:32]) == crc and code in _CODE_METRIC:
                    return int(dim), _CODE_METRIC[code]
    return None


def _resolve(
    path: str | os.PathLike[str], dim: int | None, metric: Metric | str | None
) -> tuple[Path, int, Metric]:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(f"path must be a path, got {type(path).__name__}")
    p = Path(path)
    if not p.is_dir():
        raise NotFoundError(f"no vector store at {str(p)!r}")
    shape = _shape_of(p)
    if dim is None or metric is None:
        if shape is None:
            raise ConfigError(
                f"cannot tell the dim and metric of {str(p)!r} (both headers are damaged); "
                "pass dim= and metric="
            )
        dim = shape[0] if dim is None else dim
        metric = shape[1] if metric is None else metric
    return p, dim, Metric(metric)


def repair(
    path: str | os.PathLike[str], *, dim: int | None = None, metric: Metric | str | None = None
) -> RepairReport:
    """Repair a file store in place: keep what is intact, report what was lost, loudly.

    Every record before the first damage in each file is kept; the damaged files are
    moved aside (``<name>.damaged-N``), never deleted; a fresh snapshot and log are
    written. Each damage is logged as a warning on ``avl.vectors``.

    Args:
        path: the store directory (must not be open).
        dim: the vector dimension (read from the store when omitted).
        metric: the metric (read from the store when omitted).

    Returns:
        The :class:`RepairReport` (``intact`` when nothing was wrong).

    Raises:
        NotFoundError: no directory at ``path``.
        LockedError: the store is open.
        ConfigError: the dim and metric cannot be read and were not given.
        BackendError: the directory could not be read or written.
    """
    p, d, m = _resolve(path, dim, metric)
    backend = FileBackend(p, d, m, repair=True)
    try:
        report = backend.repair_report
    finally:
        backend.close()
    assert report is not None
    return report


def check(
    path: str | os.PathLike[str], *, dim: int | None = None, metric: Metric | str | None = None
) -> int:
    """Open a store strictly and close it again: how many vectors it holds.

    A store that was not closed cleanly has its torn last write discarded, as an
    open would.

    Raises:
        CorruptionError: the store is damaged (names the file, offset and records).
        NotFoundError: no directory at ``path``.
        LockedError: the store is open.
        ConfigError: the dim and metric cannot be read and were not given.
    """
    p, d, m = _resolve(path, dim, metric)
    backend = FileBackend(p, d, m)
    try:
        return backend.count()
    finally:
        backend.close()


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
    if "\x00" in path:
        raise ConfigError(f"{url!r}: a path cannot contain NUL")
    return Path(path)


INT32_MAX = 2**31 - 1
"""The largest value a C ``int`` option of a wrapped library takes."""


def check_options(backend: str, limits: dict[str, tuple[float, float, float | None]]) -> None:
    """Refuse option values outside ``name: (value, low, high)`` (inclusive;
    ``high`` ``None``: no upper bound) with a :class:`~avl.errors.ConfigError`
    naming the option and its range, before a wrapped library sees them (it would
    fail with its own error, or silently: an Annoy index of no trees finds nothing).

    Raises:
        ConfigError: the first option out of its range.
    """
    for name, (value, low, high) in limits.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{backend} option {name} must be a number, got {describe(value)}")
        if value < low or (high is not None and value > high):
            span = (
                f"at least {_number(low)}"
                if high is None
                else f"between {_number(low)} and {_number(high)}"
            )
            raise ConfigError(f"{backend} option {name} must be {span}, got {value!r}")


def _number(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else repr(x)


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
    """Open ``file:///path[?snapshot_bytes=N&fsync=0|1&repair=0|1]``.

    With ``repair=1`` a damaged store is repaired on open (see :func:`repair`; the
    backend's ``repair_report`` says what was lost) instead of raising.

    Raises:
        ConfigError: bad URL or option.
        LockedError: another process has the store open.
        CorruptionError: committed data failed verification.
        BackendError: the directory could not be read or written.
    """
    opts = int_option(url, {"snapshot_bytes": 64 << 20, "fsync": 1, "repair": 0})
    return FileBackend(
        path_of(url),
        dim,
        metric,
        snapshot_bytes=opts["snapshot_bytes"],
        fsync=bool(opts["fsync"]),
        repair=bool(opts["repair"]),
    )
