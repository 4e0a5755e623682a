"""``hnsw:///path``: an hnswlib graph over the vectors, for the highest QPS.

The vectors, ids and metadata are kept by a :class:`~.file.FileBackend` in the
directory (crash-safe, the source of truth: every write is logged and fsync'd
before the call returns). An hnswlib index over them lives in memory and is
updated inside each write: new vectors are inserted, deleted ones are marked
deleted, replaced ones are both. A later insert reuses the label of a deleted
vector (hnswlib updates that graph node in place), so the graph holds at most as
many nodes as the store ever held at once.

A large batch (4,096 vectors or more) goes into the graph in a seeded shuffle,
which gives it its best links (a caller's order is often grouped by source, and a
grouped order costs recall). Once a quarter of the graph went in since the last
time, the graph's nodes are renumbered so that similar vectors sit together in
memory, in rows padded so that each vector starts on a cache line
(:mod:`._hnsw_layout`): every search answers the same, faster.

The index is saved beside the data on :meth:`HnswBackend.close`, on
:meth:`HnswBackend.save`, and after enough writes (``save_every`` or a quarter of
the store, whichever is larger). A save writes ``hnsw-<n>.bin`` and fsyncs it,
then atomically replaces the manifest ``hnsw.json`` (its CRC-32, parameters and
the id of every graph label) and fsyncs the directory; a crash at any point leaves
the previous save usable. On open the saved index is verified against the
manifest and then reconciled with the data, exactly: vectors written since the
save are inserted, ids deleted since are marked deleted, and vectors replaced
since (found by comparing every saved vector with the stored one) are re-inserted.
A missing, damaged or mismatched save is not an error (the index is derived data):
the index is rebuilt from the data, which takes a while for large stores.

Scores mean the same as in the exact backends: cosine similarity (vectors are
normalised, so the graph uses hnswlib's inner-product space), inner product, or
Euclidean distance (hnswlib reports its square). Metadata filters are applied
before ranking: a filter matching at most ``exact_below`` vectors is searched
exactly; otherwise the graph search checks the filter as it walks (hnswlib's
filter callback), and falls back to an exact scan of the matching vectors if the
graph yields fewer than ``k``.

Options (URL query): ``m`` (16; graph links per node), ``ef_construction`` (200),
``ef_search`` (50; raised to ``k`` when ``k`` is larger), ``exact_below`` (2048),
``save_every`` (10000), ``threads`` (0: all cores, for inserts and batched
searches), ``seed`` (100), ``huge_pages`` (1: give a loaded graph transparent huge
pages on Linux, see :mod:`._hugepages`), ``snapshot_bytes``, ``fsync`` and
``repair`` (as for ``file://``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from itertools import repeat
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from avl._optional import require
from avl.errors import BackendError
from avl.vectors._filters import Filter
from avl.vectors._order import MIN_ORDERED
from avl.vectors._types import (
    EMPTY_METADATA,
    FloatMatrix,
    Hit,
    Metric,
    Record,
    metadata_view,
    plain_sq_norm,
    stored_hits,
)
from avl.vectors.backends import _hugepages as hugepages
from avl.vectors.backends._hnsw_layout import CACHE_LINE, SCRATCH_GLOB, relaid
from avl.vectors.backends.file import (
    INT32_MAX,
    FileBackend,
    check_options,
    int_option,
    path_of,
)

__all__ = ["HnswBackend", "open_backend"]

_SPACE = {Metric.COSINE: "ip", Metric.IP: "ip", Metric.L2: "l2"}
_MANIFEST = "hnsw.json"
_FORMAT = 1
_CHUNK = 1 << 20
_ORDERED_CHUNK = 16_384  # rows per add_items call when a batch is shuffled
_NO_META = EMPTY_METADATA  # the metadata of a free label and of every empty dict


@contextlib.contextmanager
def _translate(what: str) -> Iterator[None]:
    try:
        yield
    except (RuntimeError, ValueError, MemoryError, IndexError) as exc:
        raise BackendError(f"hnsw vector store: {what} failed: {exc}") from exc


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class HnswBackend:
    """Approximate search on an hnswlib graph, persisted like ``file://``.

    Args:
        path: the store directory.
        dim: the vector dimension.
        metric: the metric.
        m: graph links per node (hnswlib's ``M``).
        ef_construction: candidate list size while inserting.
        ef_search: candidate list size while searching (at least ``k`` is used).
        exact_below: a filter matching at most this many vectors is searched exactly.
        save_every: save the index after this many writes (or a quarter of the
            store, whichever is larger); it is also saved on :meth:`close`.
        threads: hnswlib threads for inserts and batched searches (0: all cores).
        seed: hnswlib's random seed.
        snapshot_bytes: as for :class:`~.file.FileBackend`.
        fsync: as for :class:`~.file.FileBackend`.
        repair: as for :class:`~.file.FileBackend` (repair damaged data on open
            instead of raising; ``?repair=1`` in the URL).
        huge_pages: give a loaded graph's bottom layer transparent huge pages on
            Linux (see :mod:`._hugepages`; ``?huge_pages=0`` in the URL turns it off).

    Raises:
        MissingDependencyError: ``hnswlib`` is not installed (``pip install 'avl[hnsw]'``).
        ConfigError: an option out of its range (``m`` 1-10,000, ``ef_*`` and
            ``save_every`` at least 1, ``seed`` a non-negative 64-bit int), or the
            store on disk has another ``dim``/``metric``.
        LockedError: another process has the directory open.
        CorruptionError: the committed data failed verification.
        BackendError: the directory could not be read or the index not built.
    """

    def __init__(
        self,
        path: str | Path,
        dim: int,
        metric: Metric | str = Metric.COSINE,
        *,
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 50,
        exact_below: int = 2048,
        save_every: int = 10_000,
        threads: int = 0,
        seed: int = 100,
        snapshot_bytes: int = 64 << 20,
        fsync: bool = True,
        repair: bool = False,
        huge_pages: bool = True,
    ) -> None:
        check_options(
            "hnsw",
            {
                "m": (m, 1, 10_000),  # (hnswlib caps M at 10,000 with a warning)
                "ef_construction": (ef_construction, 1, INT32_MAX),
                "ef_search": (ef_search, 1, INT32_MAX),
                "exact_below": (exact_below, 0, None),
                "save_every": (save_every, 1, None),
                "threads": (threads, 0, INT32_MAX),
                "seed": (seed, 0, 2**63 - 1),
            },
        )
        self._hnswlib = require("hnswlib", extra="hnsw")
        self._data = FileBackend(
            path, dim, metric, snapshot_bytes=snapshot_bytes, fsync=fsync, repair=repair
        )
        self._dir = Path(path)
        self._m = m
        self._ef_construction = ef_construction
        self._ef_search = ef_search
        self._exact_below = exact_below
        self._save_every = save_every
        # 0: every core. (hnswlib's own "-1" is not that: set as the index's
        # default it made inserts run on one thread)
        self._threads = threads if threads > 0 else max(1, os.cpu_count() or 1)
        self._seed = seed
        self._fsync = fsync
        self._huge_pages = bool(huge_pages)
        self.huge_pages = False
        """Whether the graph's bottom layer was given transparent huge pages when it
        was last loaded (on open, or after a layout; see :mod:`._hugepages`).
        ``?huge_pages=0`` turns the attempt off."""
        self._l2 = self._data.metric is Metric.L2
        self._cosine = self._data.metric is Metric.COSINE
        self._shape = (dim,)
        # the fast path's query, copied here under the lock (see search_one)
        self._query = _on_lines((dim,))
        self._lock = threading.RLock()
        self._index: Any = None
        self._ef = 0
        # label -> the id (None: deleted) and the read-only metadata view of the
        # vector under that graph label (two flat lists: a hit touches less memory)
        self._by_label: list[str | None] = []
        self._meta_by_label: list[MappingProxyType[str, Any]] = []
        # labels whose metadata is not empty: with none, hits skip the list (after
        # the graph search every read of it is a cache miss)
        self._with_meta = 0
        self._label_of: dict[str, int] = {}
        self._free: list[int] = []  # labels of deleted vectors, reused by inserts
        self._unlaid = 0  # nodes inserted since the graph was last laid out
        self._unsaved = 0
        self._saved_gen = 0
        self._closed = False
        self.opened_from = "empty"
        """How the index was made on open: ``"saved"`` (loaded and reconciled),
        ``"rebuilt"`` (from the data) or ``"empty"``."""
        try:
            self._open_index()
        except BaseException:
            self._data.close()
            raise

    # -- properties ----------------------------------------------------------
    @property
    def dim(self) -> int:
        """The vector dimension."""
        return self._data.dim

    @property
    def metric(self) -> Metric:
        """The metric."""
        return self._data.metric

    @property
    def indexed(self) -> int:
        """How many live vectors the graph holds (equal to :meth:`count`)."""
        return len(self._label_of)

    def disk_bytes(self) -> int:
        """Bytes on disk: the persisted vectors and the saved index."""
        total = self._data.disk_bytes()
        for name in (_MANIFEST, f"hnsw-{self._saved_gen}.bin"):
            with contextlib.suppress(FileNotFoundError):
                total += (self._dir / name).stat().st_size
        return total

    # -- the graph -----------------------------------------------------------
    def _loaded(self, index: Any, path: Path) -> None:
        """``index`` was just loaded from ``path``: give its bottom layer huge pages
        (see :mod:`._hugepages`)."""
        self.huge_pages = self._huge_pages and hugepages.advise_loaded(index, path)

    def _new_index(self, capacity: int) -> Any:
        index = self._hnswlib.Index(space=_SPACE[self.metric], dim=self.dim)
        index.init_index(
            max_elements=max(capacity, 1024),
            M=self._m,
            ef_construction=self._ef_construction,
            random_seed=self._seed,
        )
        index.set_num_threads(self._threads)
        self.huge_pages = False
        self._ef = 0
        self._unlaid = 0
        return index

    def _reserve(self, extra: int) -> None:
        index = self._index
        need = index.get_current_count() + extra
        cap = index.get_max_elements()
        if need > cap:
            with _translate("growing the index"):
                index.resize_index(max(need, 2 * cap))

    def _insert(
        self, ids: Sequence[str], vectors: FloatMatrix, metas: Sequence[dict[str, Any]]
    ) -> None:
        """Insert ``ids`` under the labels of deleted vectors first, then new ones."""
        if not ids:
            return
        m = len(ids)
        free = self._free
        reused = free[len(free) - min(m, len(free)) :]
        start = len(self._by_label)
        fresh = list(range(start, start + m - len(reused)))
        labels = reused + fresh
        self._reserve(len(fresh))
        label_array = np.asarray(labels, dtype=np.int64)
        shuffled = m >= MIN_ORDERED
        with _translate("inserting into the index"):
            if not shuffled:
                self._index.add_items(vectors, label_array, num_threads=self._threads)
            else:
                # a large batch goes in shuffled (the graph gets its best links: a
                # caller's order is often grouped by source), in bounded copies
                order = np.random.default_rng(self._seed).permutation(m)
                for s in range(0, m, _ORDERED_CHUNK):
                    part = order[s : s + _ORDERED_CHUNK]
                    self._index.add_items(
                        vectors[part], label_array[part], num_threads=self._threads
                    )
        self._unlaid += m
        if shuffled and 4 * self._unlaid >= self._index.get_current_count():
            self._lay_out()
        del free[len(free) - len(reused) :]
        self._by_label.extend([None] * len(fresh))
        self._meta_by_label.extend([_NO_META] * len(fresh))
        by_label, meta_by_label, label_of = self._by_label, self._meta_by_label, self._label_of
        with_meta = 0
        for ident, md, label in zip(ids, metas, labels, strict=True):
            by_label[label] = ident
            meta_by_label[label] = metadata_view(md)
            label_of[ident] = label
            if md:
                with_meta += 1
        self._with_meta += with_meta

    def _lay_out(self) -> None:
        """Renumber the graph's nodes so that similar vectors sit together in
        memory (searches touch fewer pages; see :mod:`._hnsw_layout`). Labels and
        results do not change. Done after a large batch once a quarter of the
        nodes went in since the last layout, so its cost stays a fixed share of
        the inserts'."""
        index = relaid(self._index, self.metric, self._dir, loaded=self._loaded)
        if index is not None:
            index.set_num_threads(self._threads)
            self._index = index
            self._ef = 0  # (set again by the next search)
        self._unlaid = 0

    def _remove(self, ids: Sequence[str]) -> None:
        """Mark the labels of ``ids`` deleted (unknown ids are ignored)."""
        for ident in ids:
            label = self._label_of.pop(ident, None)
            if label is not None:
                with _translate("deleting from the index"):
                    self._index.mark_deleted(label)
                self._by_label[label] = None
                if self._meta_by_label[label] is not _NO_META:
                    self._with_meta -= 1
                self._meta_by_label[label] = _NO_META
                self._free.append(label)

    def _rebuild(self) -> None:
        data = self._data.index
        self._index = self._new_index(len(data) + len(data) // 4)
        self._by_label = []
        self._meta_by_label = []
        self._with_meta = 0
        self._label_of = {}
        self._free = []
        if len(data):
            self._insert(list(data.ids), data.vectors(), list(data.metadata))

    def _open_index(self) -> None:
        for stale in self._dir.glob(SCRATCH_GLOB):  # a layout cut short by a crash
            with contextlib.suppress(OSError):
                stale.unlink()
        loaded = self._load_saved()
        if loaded is None:
            self._rebuild()
            self.opened_from = "rebuilt" if len(self._data.index) else "empty"
            if len(self._data.index):
                self._unsaved = len(self._data.index)
            return
        self.opened_from = "saved"
        self._reconcile(loaded)

    def _load_saved(self) -> list[str | None] | None:
        """The saved index and its label -> id list, or ``None`` (rebuild) when there
        is no usable save."""
        try:
            manifest = json.loads((self._dir / _MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        try:
            if (
                manifest["format"] != _FORMAT
                or manifest["dim"] != self.dim
                or manifest["space"] != _SPACE[self.metric]
                or manifest["metric"] != self.metric.value
                or manifest["m"] != self._m
                or manifest["ef_construction"] != self._ef_construction
            ):
                return None
            gen = int(manifest["gen"])
            labels: list[str | None] = list(manifest["labels"])
            capacity = int(manifest["max_elements"])
            crc = int(manifest["crc32"])
            size = int(manifest["size"])
        except (KeyError, TypeError, ValueError):
            return None
        if not all(x is None or isinstance(x, str) for x in labels):
            return None
        path = self._dir / f"hnsw-{gen}.bin"
        try:
            if path.stat().st_size != size or _crc32(path) != crc:
                return None
        except OSError:
            return None
        index = self._hnswlib.Index(space=_SPACE[self.metric], dim=self.dim)
        try:
            index.load_index(str(path), max_elements=capacity)
            present = set(index.get_ids_list())
        except (RuntimeError, ValueError, MemoryError):
            return None
        if index.get_current_count() != len(labels) or present != set(range(len(labels))):
            return None
        self._loaded(index, path)
        index.set_num_threads(self._threads)
        self._index = index
        self._ef = 0
        self._unlaid = 0
        self._saved_gen = gen
        return labels

    def _reconcile(self, labels: list[str | None]) -> None:
        """Bring the loaded index up to date with the data (exact)."""
        data = self._data.index
        row_map = data.row_map
        vectors = data.vectors()
        alive = [(lab, ident) for lab, ident in enumerate(labels) if ident is not None]
        self._by_label = [None] * len(labels)
        self._meta_by_label = [_NO_META] * len(labels)
        self._label_of = {}
        # labels saved as deleted are deleted nodes of the loaded graph: reusable
        self._free = [lab for lab, ident in enumerate(labels) if ident is None]
        stale: list[int] = []
        keep: list[tuple[int, str, int]] = []
        for lab, ident in alive:
            row = row_map.get(ident)
            if row is None or ident in self._label_of:
                stale.append(lab)
            else:
                keep.append((lab, ident, row))
                self._label_of[ident] = lab
        if keep:
            with _translate("reading the saved index"):
                saved = self._index.get_items([lab for lab, _, _ in keep], return_type="numpy")
            rows = np.fromiter((row for _, _, row in keep), dtype=np.intp, count=len(keep))
            changed = np.flatnonzero(
                (np.asarray(saved, dtype=np.float32) != vectors[rows]).any(axis=1)
            )
            for j in changed.tolist():
                lab, ident, _ = keep[j]
                stale.append(lab)
                del self._label_of[ident]
        meta = data.metadata
        self._with_meta = 0
        for ident, lab in self._label_of.items():
            self._by_label[lab] = ident
            view = metadata_view(meta[row_map[ident]])
            self._meta_by_label[lab] = view
            if view is not _NO_META:
                self._with_meta += 1
        with _translate("reconciling the saved index"):
            for lab in stale:
                self._index.mark_deleted(lab)
        self._free.extend(stale)
        missing = [ident for ident in data.ids if ident not in self._label_of]
        if missing:
            rows = np.fromiter((row_map[i] for i in missing), dtype=np.intp, count=len(missing))
            self._insert(missing, vectors[rows], [meta[r] for r in rows.tolist()])
        self._unsaved = len(missing) + len(stale)

    # -- saving --------------------------------------------------------------
    def save(self) -> None:
        """Save the index now (atomically; the previous save stays usable until
        the new one is complete).

        Raises:
            BackendError: the index could not be written.
        """
        with self._lock:
            gen = self._saved_gen + 1
            path = self._dir / f"hnsw-{gen}.bin"
            try:
                with _translate("saving the index"):
                    self._index.save_index(str(path))
                if self._fsync:
                    _fsync_file(path)
                manifest = {
                    "format": _FORMAT,
                    "dim": self.dim,
                    "metric": self.metric.value,
                    "space": _SPACE[self.metric],
                    "m": self._m,
                    "ef_construction": self._ef_construction,
                    "gen": gen,
                    "max_elements": int(self._index.get_max_elements()),
                    "size": path.stat().st_size,
                    "crc32": _crc32(path),
                    "labels": self._by_label,
                }
                tmp = self._dir / (_MANIFEST + ".tmp")
                with open(tmp, "w", encoding="utf-8") as fh:
                    json.dump(manifest, fh, separators=(",", ":"))
                    fh.flush()
                    if self._fsync:
                        os.fsync(fh.fileno())
                os.replace(tmp, self._dir / _MANIFEST)
                if self._fsync:
                    fd = os.open(self._dir, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    path.unlink()
                raise BackendError(f"hnsw vector store: saving the index failed: {exc}") from exc
            old = self._dir / f"hnsw-{self._saved_gen}.bin"
            self._saved_gen = gen
            self._unsaved = 0
            with contextlib.suppress(OSError):
                old.unlink()

    def _after_write(self, changed: int) -> None:
        self._unsaved += changed
        if self._unsaved >= max(self._save_every, len(self._label_of) // 4):
            self.save()

    # -- writes --------------------------------------------------------------
    def add(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert new ids (logged, then inserted into the graph)."""
        with self._lock:
            self._data.add(ids, vectors, metadata)
            self._insert(ids, vectors, self._stored_meta(ids))
            self._after_write(len(ids))

    def upsert(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert or replace (a replaced vector gets a new graph label)."""
        with self._lock:
            self._data.upsert(ids, vectors, metadata)
            self._remove(ids)
            self._insert(ids, vectors, self._stored_meta(ids))
            self._after_write(len(ids))

    def delete(self, ids: Sequence[str]) -> int:
        """Remove ids (marked deleted in the graph)."""
        with self._lock:
            removed = self._data.delete(ids)
            self._remove(ids)
            if removed:
                self._after_write(removed)
            return removed

    def _stored_meta(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The metadata dicts the data index stored for ``ids`` (shared, never mutated)."""
        index = self._data.index
        row_map, meta = index.row_map, index.metadata
        return [meta[row_map[i]] for i in ids]

    # -- reads ---------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> list[Record | None]:
        """Records for ``ids`` (``None`` where unknown)."""
        return self._data.get(ids)

    def count(self) -> int:
        """How many vectors are stored."""
        return self._data.count()

    def _set_ef(self, k: int) -> None:
        ef = max(self._ef_search, k)
        if ef != self._ef:
            self._index.set_ef(ef)
            self._ef = ef

    def _hits(self, labels: list[int], dists: list[float], norm: float = 1.0) -> list[Hit]:
        # the ids (and metadata views) gathered first, in one C loop: after the graph
        # search each read misses the cache, and a tight loop overlaps the misses
        # (deleted labels never come back, so no id is None)
        ids: list[str] = list(map(self._by_label.__getitem__, labels))  # type: ignore[arg-type]
        metas: Iterable[MappingProxyType[str, Any]] = (
            map(self._meta_by_label.__getitem__, labels)
            if self._with_meta
            else repeat(_NO_META)  # the common store without metadata: one shared view
        )
        if self._l2:  # hnswlib's l2 space reports the squared distance
            scores = [math.sqrt(d) if d > 0.0 else 0.0 for d in dists]
        elif norm != 1.0:  # the inner-product space reports 1 - q.x
            scores = [(1.0 - d) / norm for d in dists]
        else:
            scores = [1.0 - d for d in dists]
        return stored_hits(ids, scores, metas)

    def search_one(self, query: npt.NDArray[Any], k: int) -> list[Hit] | None:
        """The fast path of :meth:`VectorStore.search` (see :class:`VectorBackend`):
        one unfiltered query; ``None`` when ``query`` is not a finite, non-zero
        float32 vector of the right dimension (the store then validates it). For
        ``cosine`` a query whose norm is within 1e-3 of 1 (what embedders return) is
        searched as is and its scores divided by the norm; any other is normalised
        first."""
        sq = plain_sq_norm(query, self._shape)
        if sq is None:
            return None
        norm = 1.0
        scale = None
        if self._cosine:
            norm = math.sqrt(sq)
            if not 0.999 <= norm <= 1.001:
                scale = np.float32(1.0 / norm)
                norm = 1.0
        with self._lock:
            alive = len(self._label_of)
            if k > alive:
                if not alive:
                    return []
                k = alive
            if k > self._ef or self._ef != self._ef_search:
                self._set_ef(k)
            # hnswlib reads the query in every distance it computes: on a cache line
            # of its own (like the graph's vectors, see _hnsw_layout) none of those
            # loads straddles two lines, which made searches about 8 % faster than
            # with a query 16 bytes off a line (what NumPy's large arrays give)
            on_lines = self._query
            if scale is None:
                on_lines[...] = query
            else:
                np.multiply(query, scale, out=on_lines)
            try:  # (k positional: cheaper in pybind11)
                labels, dists = self._index.knn_query(on_lines, k)
            except RuntimeError:
                return None  # search_many falls back to an exact scan
            return self._hits(labels.tolist()[0], dists.tolist()[0], norm)

    def search_many(self, queries: FloatMatrix, k: int, where: Filter) -> list[list[Hit]]:
        """Approximate top-``k`` per query from the graph (filters as described above)."""
        with self._lock:
            alive = len(self._label_of)
            if alive == 0 or queries.shape[0] == 0:
                return [[] for _ in range(queries.shape[0])]
            queries = _rows_on_lines(queries)
            if where:
                return [self._search_filtered(q, k, where) for q in queries]
            if k > alive:
                k = alive
            if k > self._ef or self._ef != self._ef_search:
                self._set_ef(k)
            try:
                labels, dists = self._index.knn_query(queries, k=k)
            except RuntimeError:  # fewer than k reachable: the graph lost too many links
                return self._data.index.search_many(queries, k, where)
            if queries.shape[0] == 1:
                return [self._hits(labels[0].tolist(), dists[0].tolist())]
            return [
                self._hits(lrow, drow)
                for lrow, drow in zip(labels.tolist(), dists.tolist(), strict=True)
            ]

    def _search_filtered(self, q: FloatMatrix, k: int, where: Filter) -> list[Hit]:
        index = self._data.index
        rows = index.matching_rows(where)
        assert rows is not None
        if rows.shape[0] <= max(self._exact_below, k):
            return index.search_many(q[None, :], k, where, rows=rows)[0]
        by_label, metas = self._by_label, self._meta_by_label
        matches = where.matches

        def allowed(label: int) -> bool:
            return by_label[label] is not None and matches(metas[label])

        self._set_ef(k)
        try:
            labels, dists = self._index.knn_query(q[None, :], k=k, filter=allowed)
        except RuntimeError:  # the walk found fewer than k matching vectors
            return index.search_many(q[None, :], k, where, rows=rows)[0]
        return self._hits(labels[0].tolist(), dists[0].tolist())

    def close(self) -> None:
        """Save the index if it changed since the last save, then close (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._unsaved and self._index is not None:
                    self.save()
            finally:
                # the graph's memory goes now, not when the object is collected
                self._index = _CLOSED
                self._data.close()


def _on_lines(shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    """An uninitialised C-contiguous float32 array of ``shape`` that starts on a
    cache line."""
    size = math.prod(shape)
    spare = np.empty(size + CACHE_LINE // 4, dtype=np.float32)
    skip = (-spare.ctypes.data % CACHE_LINE) // 4
    lined: npt.NDArray[np.float32] = spare[skip : skip + size].reshape(shape)
    return lined


def _rows_on_lines(queries: FloatMatrix) -> FloatMatrix:
    """``queries`` with every row on a cache line (a copy, unless they are already
    or a row is not a whole number of lines, which no copy could put on lines)."""
    row = queries.shape[1] * 4
    if row % CACHE_LINE or (queries.flags.c_contiguous and queries.ctypes.data % CACHE_LINE == 0):
        return queries
    lined = _on_lines(queries.shape)
    lined[...] = queries
    return lined


class _ClosedIndex:
    """What a closed backend holds instead of its graph: any use says so."""

    def __getattr__(self, name: str) -> Any:
        raise BackendError("hnsw vector store is closed")


_CLOSED: Any = _ClosedIndex()


def open_backend(url: str, *, dim: int, metric: Metric) -> HnswBackend:
    """Open ``hnsw:///path[?m=..&ef_construction=..&ef_search=..&...]`` (see the module docs).

    Raises:
        ConfigError: bad URL or option.
        MissingDependencyError: ``hnswlib`` is not installed.
        LockedError: another process has the store open.
        CorruptionError: committed data failed verification.
        BackendError: the directory could not be read or the index not built.
    """
    opts = int_option(
        url,
        {
            "m": 16,
            "ef_construction": 200,
            "ef_search": 50,
            "exact_below": 2048,
            "save_every": 10_000,
            "threads": 0,
            "seed": 100,
            "snapshot_bytes": 64 << 20,
            "fsync": 1,
            "repair": 0,
            "huge_pages": 1,
        },
    )
    return HnswBackend(
        path_of(url),
        dim,
        metric,
        m=opts["m"],
        ef_construction=opts["ef_construction"],
        ef_search=opts["ef_search"],
        exact_below=opts["exact_below"],
        save_every=opts["save_every"],
        threads=opts["threads"],
        seed=opts["seed"],
        snapshot_bytes=opts["snapshot_bytes"],
        fsync=bool(opts["fsync"]),
        repair=bool(opts["repair"]),
        huge_pages=bool(opts["huge_pages"]),
    )
