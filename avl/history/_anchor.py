"""Anchors: the chain head kept where whoever can rewrite the database cannot reach.

A hash chain proves order, not completeness: restore a backup, or delete the last
entries and move the head row back, and the chain that is left still verifies. An
:class:`Anchor` (sequence number, head hash, time, an HMAC when keyed) taken now and
kept elsewhere (an append-only file on another machine, another database, a log
shipper) lets :meth:`History.verify` prove later that every entry up to it is still
there, unchanged.

The sinks here are small and each does one thing; any callable taking an
:class:`Anchor` is a sink too.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from avl._args import describe
from avl.errors import CorruptionError, InvalidInputError, NotFoundError

__all__ = [
    "Anchor",
    "AnchorSink",
    "CallbackAnchorSink",
    "FileAnchorSink",
    "HistoryAnchorSink",
    "LogAnchorSink",
    "as_sink",
    "read_anchors",
]

FORMAT = "avl.history.anchor/1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MAX_ANCHOR_FILE = 64 << 20


def _seq(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"Anchor.seq must be a non-negative int, got {describe(value)}")
    return value


def _hash(value: object) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise InvalidInputError(
            f"Anchor.head_hash must be 64 lower-case hex digits, got {describe(value)}"[:200]
        )
    return value


def _time(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"Anchor.time must be epoch seconds, got {describe(value)}")
    out = float(value)
    if not math.isfinite(out):
        raise InvalidInputError(f"Anchor.time must be finite, got {describe(value)}")
    return out


def _mac(value: object) -> str | None:
    if value is None or value == "":
        return None
    return _hash_named("Anchor.mac", value)


def _hash_named(name: str, value: object) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise InvalidInputError(f"{name} must be 64 lower-case hex digits, got {describe(value)}")
    return value


@attrs.frozen(kw_only=True)
class Anchor:
    """The head of a History's chain at one moment, to keep outside the database.

    Attributes:
        seq: the chain position of the head (0 for an empty history).
        head_hash: the hash of the entry at ``seq``.
        time: when the anchor was taken (epoch seconds, from the History's clock).
        mac: HMAC-SHA256 over ``seq``, ``head_hash`` and ``time`` with the History's
            key (``None`` when the History has no key). A keyed History refuses an
            anchor whose MAC does not match, so a forged anchor cannot vouch for a
            forged chain.

    Example:
        >>> a = Anchor(seq=3, head_hash="ab" * 32, time=1700000000.0)
        >>> Anchor.from_json(a.to_json()) == a
        True
    """

    seq: int = attrs.field(converter=_seq)
    head_hash: str = attrs.field(converter=_hash)
    time: float = attrs.field(converter=_time)
    mac: str | None = attrs.field(default=None, converter=_mac)

    def to_dict(self) -> dict[str, Any]:
        """The anchor as plain JSON values (with a ``format`` marker)."""
        return {
            "format": FORMAT,
            "seq": self.seq,
            "head_hash": self.head_hash,
            "time": self.time,
            "mac": self.mac,
        }

    def to_json(self) -> str:
        """One line of compact JSON (what the file sink appends)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: object) -> Anchor:
        """Rebuild an anchor from :meth:`to_dict`'s output.

        Raises:
            InvalidInputError: not an anchor mapping, or a field has a bad value.
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InvalidInputError(
                f"not an avl anchor (expected a JSON object with format {describe(FORMAT)})"
            )
        unknown = set(data) - {"format", "seq", "head_hash", "time", "mac"}
        if unknown:
            raise InvalidInputError(f"anchor has unknown field(s) {sorted(unknown)}")
        missing = {"seq", "head_hash", "time"} - set(data)
        if missing:
            raise InvalidInputError(f"anchor is missing field(s) {sorted(missing)}")
        return cls(
            seq=data["seq"], head_hash=data["head_hash"], time=data["time"], mac=data.get("mac")
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Anchor:
        """Parse :meth:`to_json`'s output.

        Raises:
            InvalidInputError: not JSON, or not an anchor.
        """
        if not isinstance(text, (str, bytes)):
            raise InvalidInputError(f"anchor JSON must be str or bytes, got {type(text).__name__}")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise InvalidInputError(f"anchor is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


@runtime_checkable
class AnchorSink(Protocol):
    """Somewhere to keep anchors: ``write`` must not return before the anchor is kept."""

    def write(self, anchor: Anchor) -> None:
        """Keep ``anchor``."""
        ...


class CallbackAnchorSink:
    """Hands each anchor to a function: a webhook call, a log shipper, a queue.

    Args:
        callback: called with the :class:`Anchor`; an exception it raises reaches the
            caller of :meth:`History.anchor` (the periodic anchoring logs it and
            retries at the next entry).

    Example:
        >>> kept = []
        >>> CallbackAnchorSink(kept.append).write(Anchor(seq=0, head_hash="0" * 64, time=0.0))
        >>> kept[0].seq
        0
    """

    def __init__(self, callback: Callable[[Anchor], object]) -> None:
        if not callable(callback):
            raise InvalidInputError(f"callback must be callable, got {type(callback).__name__}")
        self._callback = callback

    def write(self, anchor: Anchor) -> None:
        """Call the callback with ``anchor``."""
        self._callback(anchor)

    def __repr__(self) -> str:
        return f"CallbackAnchorSink({self._callback!r})"


class LogAnchorSink:
    """Writes each anchor as one JSON line to a :mod:`logging` logger.

    For deployments that already ship logs off the machine (journald, Fluent Bit,
    a SIEM): the shipped copy is the anchor.

    Args:
        logger: the logger (default ``logging.getLogger("avl.history.anchor")``).
        level: the log level (default ``INFO``).
    """

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self._logger = logger if logger is not None else logging.getLogger("avl.history.anchor")
        if isinstance(level, bool) or not isinstance(level, int):
            raise InvalidInputError(f"level must be a logging level int, got {describe(level)}")
        self._level = level

    def write(self, anchor: Anchor) -> None:
        """Log ``anchor`` as JSON."""
        self._logger.log(self._level, "%s", anchor.to_json())


class FileAnchorSink:
    """Appends each anchor as one JSON line to a file, fsync'd before returning.

    Keep the file where the database's writers cannot rewrite it: another machine's
    mount, an append-only (``chattr +a``) file, a WORM bucket synced from it.

    Args:
        path: the file (created if missing; its directory must exist).
        fsync: fsync after each anchor (default ``True``).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "anchors.jsonl")
        >>> sink = FileAnchorSink(path)
        >>> sink.write(Anchor(seq=1, head_hash="ab" * 32, time=1.0))
        >>> sink.latest().seq
        1
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidInputError(f"path must be a str or PathLike, got {type(path).__name__}")
        self.path = Path(_fs_path(path))
        self._fsync = bool(fsync)

    def write(self, anchor: Anchor) -> None:
        """Append ``anchor`` (one line) and fsync.

        Raises:
            InvalidInputError: not an :class:`Anchor`.
            BackendError: the file cannot be written.
        """
        from avl.errors import BackendError

        if not isinstance(anchor, Anchor):
            raise InvalidInputError(f"expected an Anchor, got {type(anchor).__name__}")
        line = (anchor.to_json() + "\n").encode("ascii")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                written = os.write(fd, line)
                while written < len(line):
                    written += os.write(fd, line[written:])
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise BackendError(
                f"cannot append an anchor to {describe(str(self.path))}: {exc}"
            ) from exc

    def latest(self) -> Anchor:
        """The last anchor in the file.

        Raises:
            NotFoundError: the file is missing or holds no anchor.
            CorruptionError: a line is not an anchor (names the line and offset).
        """
        anchors = read_anchors(self.path)
        if not anchors:
            raise NotFoundError(f"no anchor in {describe(str(self.path))}")
        return anchors[-1]

    def __repr__(self) -> str:
        return f"FileAnchorSink({str(self.path)!r})"


def _fs_path(path: str | os.PathLike[str]) -> str:
    """``path`` if the file system can name it (no NUL, encodable)."""
    try:
        raw = os.fsdecode(os.fspath(path))
        os.fsencode(raw)
    except Exception as exc:  # a bad type, an unencodable name, a failing __fspath__
        raise InvalidInputError(f"not a usable file path: {describe(path)}") from exc
    if "\x00" in raw:
        raise InvalidInputError(f"a file path cannot contain NUL: {describe(path)}")
    return raw


def read_anchors(path: str | os.PathLike[str]) -> list[Anchor]:
    """Every anchor in a file written by :class:`FileAnchorSink` (or one JSON anchor).

    A line that is not an anchor is never skipped: a damaged file raises, naming the
    line, its byte offset and how many anchors follow it.

    Args:
        path: the file.

    Returns:
        The anchors, oldest first.

    Raises:
        NotFoundError: the file does not exist.
        CorruptionError: a line is damaged (the last line too: an anchor is appended
            whole and fsync'd before it counts as kept, so a torn line is damage).
        InvalidInputError: ``path`` is not a path.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(f"path must be a str or PathLike, got {type(path).__name__}")
    p = Path(_fs_path(path))
    try:
        size = p.stat().st_size
        if size > _MAX_ANCHOR_FILE:
            raise InvalidInputError(
                f"{describe(str(p))} is {size} bytes; an anchor file above {_MAX_ANCHOR_FILE} bytes "
                "is not read (rotate it)"
            )
        data = p.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no anchor file at {describe(str(p))}") from None
    except OSError as exc:
        raise NotFoundError(f"cannot read anchor file {describe(str(p))}: {exc}") from exc
    stripped = data.strip()
    if stripped.startswith(b"{") and b"\n" not in stripped:
        # One anchor, as `avl history anchor` prints it (possibly without a newline).
        try:
            return [Anchor.from_json(stripped)]
        except InvalidInputError as exc:
            raise CorruptionError(
                f"{describe(str(p))}: byte 0: not an anchor ({exc}); 1 anchor affected",
                path=str(p),
                offset=0,
                records_affected=1,
            ) from exc
    out: list[Anchor] = []
    lines = data.split(b"\n")
    offset = 0
    for number, raw in enumerate(lines, start=1):
        last = number == len(lines)
        if not raw.strip():
            offset += len(raw) + 1
            continue
        problem = ""
        if last:
            problem = "the line is not terminated (a torn write)"
        else:
            try:
                out.append(Anchor.from_json(raw))
            except InvalidInputError as exc:
                problem = str(exc)
        if problem:
            following = sum(1 for rest in lines[number:] if rest.strip())
            raise CorruptionError(
                f"{describe(str(p))}: line {number} (byte {offset}) is damaged: {problem}; "
                f"{1 + following} anchor line(s) from there on are affected",
                path=str(p),
                offset=offset,
                records_affected=1 + following,
            )
        offset += len(raw) + 1
    return out


class HistoryAnchorSink:
    """Records each anchor as an entry of another History (another database).

    The entry has ``role="avl-anchor"``, ``tags=("avl-anchor",)``, ``user`` set to
    ``source`` and the anchor's JSON as ``question``; that History's own chain then
    covers the anchors too.

    Args:
        history: the History to write into (not the one being anchored).
        source: a name for the anchored History (so one store can keep the anchors
            of several).
    """

    def __init__(self, history: Any, *, source: str = "history") -> None:
        if not hasattr(history, "record") or not hasattr(history, "search"):
            raise InvalidInputError(f"expected a History, got {type(history).__name__}")
        if not isinstance(source, str) or not source:
            raise InvalidInputError(f"source must be a non-empty string, got {describe(source)}")
        self._history = history
        self._source = source

    def write(self, anchor: Anchor) -> None:
        """Record ``anchor`` as one entry.

        Raises:
            BackendError: the other History could not record it.
        """
        from avl.history._entry import Entry

        self._history.record(
            Entry(
                user=self._source,
                role="avl-anchor",
                question=anchor.to_json(),
                tags=("avl-anchor",),
                outcome="ok",
            )
        )

    def latest(self) -> Anchor:
        """The newest anchor recorded for ``source``.

        Raises:
            NotFoundError: none recorded.
            CorruptionError: the entry does not hold an anchor.
        """
        page = self._history.search(user=self._source, tags="avl-anchor", limit=1)
        if not page:
            raise NotFoundError(f"no anchor recorded for {describe(self._source)}")
        entry = page[0]
        try:
            return Anchor.from_json(entry.question)
        except InvalidInputError as exc:
            raise CorruptionError(
                f"anchor entry {entry.id} (seq {entry.seq}) is damaged: {exc}"
            ) from exc


def as_sink(value: object) -> AnchorSink:
    """An :class:`AnchorSink` from a sink, a callable or a file path.

    Raises:
        InvalidInputError: none of those.
    """
    if callable(getattr(type(value), "write", None)):
        return value  # type: ignore[return-value]  # an AnchorSink: write(anchor)
    if isinstance(value, (str, os.PathLike)):
        return FileAnchorSink(value)
    if callable(value):
        return CallbackAnchorSink(value)
    raise InvalidInputError(
        f"an anchor sink must have write(anchor), be callable or be a path, got "
        f"{type(value).__name__}"
    )
