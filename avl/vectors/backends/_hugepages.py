"""Transparent huge pages for a loaded hnswlib graph's bottom layer (Linux, best effort).

A graph search reads a few hundred to a few thousand vectors scattered over the
graph's bottom layer: one array of ``max_elements`` rows, each the node's links,
its vector and its label (about 1.6 KiB a row at 384 dimensions: 32 MB for 20,000
vectors). With 4 KiB pages nearly every vector read is a TLB miss, and a virtual
machine pays for each with a two-level page walk. Backed by 2 MiB pages, the same
array needs 512 times fewer TLB entries: searches ran about 3 % faster at 20,000 and
100,000 vectors here (``benches/bench_vectors.py --only hugepages``).

Where the kernel leaves huge pages to each program (``madvise`` in
``/sys/kernel/mm/transparent_hugepage/enabled``, the common default), a program
asks for them with ``madvise(MADV_HUGEPAGE)`` on the memory itself. hnswlib does
not, and it does not say where the array is: it ``malloc``\\s it, and glibc may
serve that from a mapping of its own or from its heap. So, right after
``load_index`` has read a graph file into the array, :func:`advise_loaded` finds
the array by its content: it reads the file's first and last rows, and looks for
them, one array apart, in the process's writable memory (read through
``/proc/self/mem``, which fails cleanly where a page is gone; 16-50 ms for 300 MB).
Only a whole copy of the array holds both: ``malloc_trim`` first returns freed
heap pages to the system, so a freed copy of the graph (a layout writes one)
cannot match, and the graph a layout renumbered holds its rows in another order.
A stale copy can remain inside memory a later allocation took but has not
written, so the array is told from any copy by flipping row 0's deleted mark
through hnswlib (and back at once) and seeing where the byte changes.

The array's pages in use are then advised and collapsed into huge pages at once
(``MADV_COLLAPSE``, Linux 6.1 and later; about 2.5 ms per MB), and the rest gets
huge pages as later inserts write it. The advice changes no byte of the array
(the probe's flag is back before anything else sees the graph), only how the
kernel maps it. This is an optimisation, never a condition: any
failure, or a system without it, leaves the graph as hnswlib made it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from avl.vectors.backends._hnsw_layout import FILE_HEADER

__all__ = ["MIN_BYTES", "advise_loaded"]

_MADV_HUGEPAGE = 14
_MADV_COLLAPSE = 25
_HUGE = 2 << 20
_PAGE = 4096
_CHUNK = 4 << 20  # bytes read at a time while searching (under half of MIN_BYTES, so
# no read holds a whole copy of an array that could be mistaken for it)

_MAX_HITS = 8  # copies of the array looked at, at most
_DELETE_MARK = 0x01  # hnswlib's deleted flag, in the third byte of a row

MIN_BYTES = 4 * _HUGE
"""A smaller bottom layer is left alone: it spans a few huge pages at most."""


_THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
_functions: dict[str, Any] = {}  # libc's functions, loaded on first use (False: none)


def _libc(name: str, argtypes: list[Any]) -> Any:
    fn = _functions.get(name)
    if fn is None:
        try:
            fn = getattr(ctypes.CDLL(None, use_errno=True), name)
            fn.argtypes = argtypes
            fn.restype = ctypes.c_int
        except (OSError, AttributeError):
            fn = False
        _functions[name] = fn
    return fn


def _available() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return "[never]" not in _THP.read_text()
    except OSError:
        return False


def advise_loaded(index: Any, path: Path) -> bool:
    """Back the bottom layer that ``index.load_index(path)`` just filled with huge
    pages.

    Args:
        index: the ``hnswlib.Index`` that loaded ``path``.
        path: the graph file it loaded (still on disk, unchanged).

    Returns:
        Whether the layer was found and advised (``False`` changes nothing).
    """
    try:
        with path.open("rb") as f:
            head = f.read(FILE_HEADER.size)
            if len(head) != FILE_HEADER.size:
                return False
            links_at, _, count, row, _, offset = FILE_HEADER.unpack(head)[:6]
            used = count * row
            if count < 2 or used < MIN_BYTES or not 0 < offset < row or not _available():
                return False
            if links_at != 0:  # a row must begin with its links (and deleted mark)
                return False
            if int(index.get_max_elements()) < count:
                return False
            # a row's vector and label: its links may be rewritten as the graph grows
            f.seek(FILE_HEADER.size + offset)
            first = f.read(row - offset)
            f.seek(FILE_HEADER.size + (count - 1) * row + offset)
            last = f.read(row - offset)
        if len(first) != row - offset or len(last) != row - offset:
            return False
        # row 0 begins with its links: the array starts ``offset`` bytes before
        starts = [at - offset for at in _find(first, last, (count - 1) * row, used)]
        start = _live(index, int.from_bytes(first[-8:], "little"), starts)
        if start is None:
            return False
        return _advise(start, start + int(index.get_max_elements()) * row, start + used)
    except Exception:  # an optimisation only
        return False


def _live(index: Any, label: int, starts: list[int]) -> int | None:
    """Which of ``starts`` is ``index``'s own array, not a stale copy of the same
    bytes (left in memory a later allocation took but has not written): flipping
    row 0's deleted mark through hnswlib (the third byte of the row) must show
    there, and only there. The mark is put back at once; ``None`` unless exactly
    one candidate follows it."""
    if not starts:
        return None
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:

        def marks() -> list[int]:
            return [os.pread(fd, 1, start + 2)[0] & _DELETE_MARK for start in starts]

        before = marks()
        try:
            index.mark_deleted(label)
            after = marks()
            index.unmark_deleted(label)
        except RuntimeError:  # already deleted: the other way round
            index.unmark_deleted(label)
            after = marks()
            index.mark_deleted(label)
        live = [s for s, b, a in zip(starts, before, after, strict=True) if b != a]
        return live[0] if len(live) == 1 and marks() == before else None
    finally:
        os.close(fd)


def _advise(start: int, end: int, written: int) -> bool:
    """``madvise`` the array ``[start, end)`` for huge pages and collapse its
    written part ``[start, written)`` now (whole 2 MiB pages inside it only)."""
    madvise = _libc("madvise", [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int])
    if not madvise:
        return False
    lo = -(-start // _PAGE) * _PAGE  # (madvise takes whole pages)
    if madvise(lo, end // _PAGE * _PAGE - lo, _MADV_HUGEPAGE) != 0:
        return False
    lo = -(-start // _HUGE) * _HUGE
    hi = written // _HUGE * _HUGE
    if hi > lo:
        madvise(lo, hi - lo, _MADV_COLLAPSE)  # (refused before Linux 6.1: then later)
    return True


def _writable() -> list[tuple[int, int]]:
    """The process's private writable memory, anonymous or heap, as ranges of
    adjacent mappings (one array can span several: NumPy's own ``madvise`` on its
    large arrays splits the heap into mappings with different flags)."""
    found: list[tuple[int, int]] = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 5 or not fields[1].startswith("rw") or fields[1][3] != "p":
            continue
        if len(fields) == 6 and fields[5].strip() != "[heap]":
            continue  # a file, the stack, the vdso...
        lo_text, _, hi_text = fields[0].partition("-")
        lo, hi = int(lo_text, 16), int(hi_text, 16)
        if found and found[-1][1] == lo:
            found[-1] = (found[-1][0], hi)
        else:
            found.append((lo, hi))
    return found


def _find(first: bytes, last: bytes, gap: int, used: int) -> list[int]:
    """The addresses (at most :data:`_MAX_HITS`) holding ``first`` with ``last``
    ``gap`` bytes further, in writable memory of at least ``used`` bytes.

    Only a whole copy of the array matches both (a row's vector and label are
    unique in it). A freed copy is gone after ``malloc_trim``, and the graph a
    layout renumbered holds the rows in another order; a stale copy inside memory
    a later allocation took but has not written can remain (:func:`_live` tells
    it from the array).
    """
    trim = _libc("malloc_trim", [ctypes.c_size_t])
    if trim:
        trim(0)  # freed heap pages (an old copy of the graph) are given back
    # the array starts 16-byte aligned and a row's vector at a multiple of 4 bytes
    # into it: candidates are the aligned 32-bit words equal to the vector's first
    key = int.from_bytes(first[:4], sys.byteorder)
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    hits: list[int] = []
    try:
        for lo, hi in _writable():
            if hi - lo < used:
                continue
            for at in range(lo, hi, _CHUNK):
                # each read overlaps the next by the pattern's length; a match is
                # taken in the read where it starts
                try:
                    data = os.pread(fd, min(_CHUNK + len(first), hi - at), at)
                except OSError:  # unmapped meanwhile
                    break
                words = np.frombuffer(data, dtype=np.uint32, count=min(len(data), _CHUNK) // 4)
                for word in np.flatnonzero(words == key).tolist():
                    i = 4 * int(word)
                    if data[i : i + len(first)] != first or at + i + gap + len(last) > hi:
                        continue
                    with contextlib.suppress(OSError):
                        if os.pread(fd, len(last), at + i + gap) == last:
                            hits.append(at + i)
                            if len(hits) >= _MAX_HITS:
                                return hits
        return hits
    finally:
        os.close(fd)
