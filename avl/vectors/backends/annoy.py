"""``annoy:///path``: Annoy trees for large sets, with an exact delta.

The vectors, ids and metadata are kept by a :class:`~.file.FileBackend` in the
directory (crash-safe, the source of truth). An Annoy index is built over a
snapshot of them; Annoy cannot add to a built index, so:

- vectors added (or replaced) after the build form the *delta*, searched exactly
  beside the index;
- ids deleted or replaced after the build are *tombstones*: Annoy results for them
  are dropped (Annoy is asked for more results to make up for them);
- when the delta grows past ``rebuild_delta`` vectors (or ``rebuild_fraction`` of
  the index), a new index is built from the current vectors, in a background
  thread by default, and swapped in atomically; searches keep using the old one
  meanwhile. The index is rebuilt when a store is opened (it is not saved).

Scores mean the same as in the exact backends (cosine similarity, inner product
or Euclidean distance); for indexed vectors they come from Annoy's own float32
distances. Metadata filters are applied before ranking: when few vectors
match (``exact_below``), they are searched exactly; otherwise Annoy is asked for
more results, filtered, and the search falls back to an exact scan of the matching
vectors when fewer than ``k`` survive. Below ``min_index`` vectors no index is
built and everything is exact.

Options (URL query): ``n_trees`` (default 10), ``search_k`` (default 1000, per
query; Annoy's own default is ``n * n_trees``), ``min_index`` (2048),
``rebuild_delta`` (10000), ``rebuild_fraction_pct`` (10), ``exact_below`` (2048),
``background`` (1), ``snapshot_bytes``, ``fsync`` and ``repair`` (as for ``file://``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from avl._optional import require
from avl.vectors._filters import Filter
from avl.vectors._order import locality_order
from avl.vectors._types import (
    EMPTY_METADATA,
    FloatMatrix,
    Hit,
    Metric,
    Record,
    metadata_view,
    plain_sq_norm,
    stored_hit,
    stored_hits,
)
from avl.vectors.backends.file import INT32_MAX, FileBackend, check_options, int_option, path_of

__all__ = ["AnnoyBackend", "open_backend"]

_ANNOY_METRIC = {Metric.COSINE: "angular", Metric.IP: "dot", Metric.L2: "euclidean"}


def _first(entry: tuple[float, str, float, MappingProxyType[str, Any]]) -> float:
    return entry[0]


class _Built:
    """One immutable, built Annoy index with the ids and metadata of its items.

    An item's metadata dict is the one stored when the build started; a write to
    the id later (upsert, delete) tombstones the item, so for every item that is
    not a tombstone the captured id and metadata are still current.
    """

    def __init__(self, index: Any, ids: list[str], metas: list[dict[str, Any]]) -> None:
        self.index = index
        self.nns = index.get_nns_by_vector
        self.ids = ids
        self.metas = [metadata_view(md) for md in metas]  # read-only views for hits
        # no item has metadata: hits take the shared empty view instead of reading
        # the list (at 100,000 items each read is a cache miss after Annoy's search)
        self.plain = all(view is EMPTY_METADATA for view in self.metas)
        self.id_set = frozenset(ids)


class AnnoyBackend:
    """Approximate search with Annoy plus an exact delta, persisted like ``file://``.

    Args:
        path: the store directory.
        dim: the vector dimension.
        metric: the metric.
        n_trees: Annoy trees per build.
        search_k: nodes Annoy inspects per query.
        min_index: build no index below this many vectors.
        rebuild_delta: rebuild once the delta holds this many vectors...
        rebuild_fraction: ...or this fraction of the indexed vectors, whichever is larger.
        exact_below: a filter matching at most this many vectors is searched exactly.
        background: build in a background thread (else inside the write call).
        snapshot_bytes: as for :class:`~.file.FileBackend`.
        fsync: as for :class:`~.file.FileBackend`.
        repair: as for :class:`~.file.FileBackend` (repair damaged data on open
            instead of raising; ``?repair=1`` in the URL).
        seed: Annoy's random seed (builds are reproducible).
        progress: optional ``callback(done, total)`` while an index is built: called
            every 1,024 vectors loaded into Annoy and once more when the trees are
            built (``done == total``). :class:`avl.embeddings.TtyProgress` draws it
            as a bar. Off by default; it runs on the build thread.

    Raises:
        ConfigError: an option out of its range (``n_trees`` and ``search_k`` at
            least 1, the counts and the fraction at least 0, ``seed`` a
            non-negative 32-bit int).
        MissingDependencyError: ``annoy`` is not installed.
        LockedError: another process has the directory open.
        CorruptionError: committed data failed verification.
    """

    def __init__(
        self,
        path: str | Path,
        dim: int,
        metric: Metric | str = Metric.COSINE,
        *,
        n_trees: int = 10,
        search_k: int = 1000,
        min_index: int = 2048,
        rebuild_delta: int = 10_000,
        rebuild_fraction: float = 0.10,
        exact_below: int = 2048,
        background: bool = True,
        snapshot_bytes: int = 64 << 20,
        fsync: bool = True,
        repair: bool = False,
        seed: int = 42,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        check_options(
            "annoy",
            {
                "n_trees": (n_trees, 1, INT32_MAX),
                "search_k": (search_k, 1, INT32_MAX),
                "min_index": (min_index, 0, None),
                "rebuild_delta": (rebuild_delta, 0, None),
                "rebuild_fraction (URL: rebuild_fraction_pct / 100)": (rebuild_fraction, 0.0, None),
                "exact_below": (exact_below, 0, None),
                "seed": (seed, 0, INT32_MAX),
            },
        )
        self._annoy = require("annoy", extra="all")
        self._data = FileBackend(
            path, dim, metric, snapshot_bytes=snapshot_bytes, fsync=fsync, repair=repair
        )
        self._cosine = self._data.metric is Metric.COSINE
        self._shape = (dim,)
        self._n_trees = n_trees
        self._search_k = search_k
        self._min_index = max(1, min_index)
        self._rebuild_delta = rebuild_delta
        self._rebuild_fraction = rebuild_fraction
        self._exact_below = exact_below
        self._background = background
        self._seed = seed
        self._progress = progress
        self._lock = threading.RLock()
        self._built: _Built | None = None
        # the built index while nothing was written since its build (else None): one
        # attribute, replaced in one assignment, so search_one reads it without the lock
        self._fast: _Built | None = None
        self._tombstones: set[str] = set()
        self._delta: set[str] = set(self._data.index.ids)
        # rows of the delta, their vectors (dim, m) and squared norms; None: stale
        self._delta_cache: tuple[npt.NDArray[np.intp], FloatMatrix, FloatMatrix] | None = None
        self._dirty: set[str] = set()
        self._building: threading.Thread | None = None
        self._build_error: BaseException | None = None
        self._closed = False
        self._maybe_rebuild()

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
        """How many vectors the current Annoy index holds (0 before the first build)."""
        built = self._built
        return 0 if built is None else len(built.ids)

    @property
    def delta(self) -> int:
        """How many vectors are searched exactly beside the index."""
        return len(self._delta)

    def disk_bytes(self) -> int:
        """Bytes on disk (the persisted vectors; the index is not saved)."""
        return self._data.disk_bytes()

    # -- building ------------------------------------------------------------
    def _needs_build(self) -> bool:
        n = len(self._data.index)
        if n < self._min_index or self._building is not None:
            return False
        built = self._built
        if built is None:
            return True
        limit = max(self._rebuild_delta, int(self._rebuild_fraction * len(built.ids)))
        return len(self._delta) + len(self._tombstones) > limit

    def _maybe_rebuild(self) -> None:
        with self._lock:
            if not self._needs_build():
                return
            ids = list(self._data.index.ids)
            metas = list(self._data.index.metadata)
            vectors = self._data.index.vectors()
            self._dirty = set()
            if self._background:
                thread = threading.Thread(
                    target=self._build,
                    args=(ids, metas, vectors),
                    name="avl-annoy-build",
                    daemon=True,
                )
                self._building = thread
                thread.start()
                return
            self._building = threading.current_thread()
        self._build(ids, metas, vectors)

    def _build(self, ids: list[str], metas: list[dict[str, Any]], vectors: FloatMatrix) -> None:
        try:
            index = self._annoy.AnnoyIndex(self.dim, _ANNOY_METRIC[self.metric])
            index.set_seed(self._seed)
            n = vectors.shape[0]
            progress = self._progress
            # items in an order that groups similar vectors (faster searches; see
            # avl.vectors._order); ids and metadata follow their vectors
            order = locality_order(vectors, self.metric)
            if order is not None:
                rows = order.tolist()
                ids = [ids[r] for r in rows]
                metas = [metas[r] for r in rows]
            else:
                rows = range(n)
            for i, row in enumerate(rows):
                index.add_item(i, vectors[row])
                if progress is not None and i % 1024 == 1023:
                    progress(i + 1, n + 1)
            index.build(self._n_trees, n_jobs=1)
            if progress is not None:
                progress(n + 1, n + 1)  # the last step: the trees
            built = _Built(index, ids, metas)
        except BaseException as exc:  # re-raised by wait()
            with self._lock:
                self._build_error = exc
                self._building = None
            return
        with self._lock:
            live = self._data.index
            self._tombstones = {i for i in self._dirty if i in built.id_set}
            self._delta = {i for i in live.ids if i not in built.id_set} | {
                i for i in self._dirty if i in live
            }
            for gone in built.id_set.difference(live.ids):
                self._tombstones.add(gone)
            self._delta_cache = None
            self._built = built
            self._fast = None if self._tombstones or self._delta else built
            self._building = None
            self._dirty = set()

    def wait(self) -> None:
        """Wait for a background build to finish (for tests and benchmarks).

        Raises:
            BackendError: the build failed.
        """
        thread = self._building
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        if self._build_error is not None:
            from avl.errors import BackendError

            exc, self._build_error = self._build_error, None
            raise BackendError(f"building the Annoy index failed: {exc}") from exc

    def rebuild(self) -> None:
        """Rebuild the index now (in this thread) over the current vectors."""
        self.wait()
        with self._lock:
            self._building = threading.current_thread()
            ids = list(self._data.index.ids)
            metas = list(self._data.index.metadata)
            vectors = self._data.index.vectors()
            self._dirty = set()
        self._build(ids, metas, vectors)

    # -- writes --------------------------------------------------------------
    def _touched(self, ids: Sequence[str], live: bool) -> None:
        self._fast = None
        built = self._built
        for i in ids:
            if self._building is not None:
                self._dirty.add(i)
            if built is not None and i in built.id_set:
                self._tombstones.add(i)
            if live:
                self._delta.add(i)
            else:
                self._delta.discard(i)
        self._delta_cache = None
        # deleting what was only in the delta can leave the index current again
        if built is not None and not self._tombstones and not self._delta:
            self._fast = built

    def add(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert new ids (into the delta)."""
        with self._lock:
            self._data.add(ids, vectors, metadata)
            self._touched(ids, live=True)
        self._maybe_rebuild()

    def upsert(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert or replace (replaced ids become tombstones plus delta entries)."""
        with self._lock:
            self._data.upsert(ids, vectors, metadata)
            self._touched(ids, live=True)
        self._maybe_rebuild()

    def delete(self, ids: Sequence[str]) -> int:
        """Remove ids (tombstoned in the index)."""
        with self._lock:
            removed = self._data.delete(ids)
            self._touched(ids, live=False)
        self._maybe_rebuild()
        return removed

    # -- reads ---------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> list[Record | None]:
        """Records for ``ids`` (``None`` where unknown)."""
        return self._data.get(ids)

    def count(self) -> int:
        """How many vectors are stored."""
        return self._data.count()

    def _delta_columns(self) -> tuple[npt.NDArray[np.intp], FloatMatrix, FloatMatrix]:
        """The delta's rows with their vectors gathered once per write, not per query."""
        cache = self._delta_cache
        if cache is None:
            index = self._data.index
            found = (index.row_of(i) for i in self._delta)
            rows = np.sort(np.fromiter((r for r in found if r is not None), dtype=np.intp))
            xt, sq = index.columns(rows)
            cache = (rows, xt, sq)
            self._delta_cache = cache
        return cache

    def search_many(self, queries: FloatMatrix, k: int, where: Filter) -> list[list[Hit]]:
        """Approximate top-``k`` per query (exact over the delta)."""
        with self._lock:
            built = self._built
            if built is None:
                return self._data.index.search_many(queries, k, where)
            if not where and not self._tombstones and not self._delta:
                # the common case, nothing written since the build: Annoy's own
                # order, with the ids and metadata captured when it was built
                return [self._search_built(built, q.tolist(), k) for q in queries]
            return [self._search_one(built, q, k, where) for q in queries]

    def search_one(self, query: npt.NDArray[Any], k: int) -> list[Hit] | None:
        """The fast path of :meth:`VectorStore.search` (see :class:`VectorBackend`):
        one unfiltered query, answered from the index when nothing was written since
        it was built; ``None`` otherwise, or when ``query`` is not a finite, non-zero
        float32 vector of the right dimension (the store then validates it)."""
        if plain_sq_norm(query, self._shape) is None:
            return None
        built = self._fast  # one read: a write clears it before it returns
        if built is None:
            return None
        # Annoy reads the vector item by item; query.data (a memoryview) hands it floats
        # without the list tolist() would build. Its angular metric is scale-free,
        # so a cosine query needs no normalising.
        items, dists = built.nns(query.data, k, max(self._search_k, k), True)
        return self._hits(built, items, dists)

    def _search_built(self, built: _Built, values: list[float], k: int) -> list[Hit]:
        items, dists = built.nns(values, k, max(self._search_k, k), True)
        return self._hits(built, items, dists)

    def _hits(self, built: _Built, items: list[int], dists: list[float]) -> list[Hit]:
        # the ids (and metadata views) gathered first, in one C loop: after Annoy's
        # search each read misses the cache, and a tight loop overlaps the misses
        ids = list(map(built.ids.__getitem__, items))
        metas: Iterable[MappingProxyType[str, Any]] = (
            repeat(EMPTY_METADATA)  # no item has metadata: the shared empty view
            if built.plain
            else map(built.metas.__getitem__, items)
        )
        # Annoy's angular distance is sqrt(2 - 2 cos); "dot" reports the inner
        # product, "euclidean" the distance (Annoy returns lists of equal length)
        if self._cosine:
            return stored_hits(ids, [1.0 - d * d / 2.0 for d in dists], metas)
        return stored_hits(ids, dists, metas)

    def _search_one(self, built: _Built, q: FloatMatrix, k: int, where: Filter) -> list[Hit]:
        index = self._data.index
        rows_match: npt.NDArray[np.intp] | None = None
        selectivity = 1.0
        if where:
            rows_match = index.matching_rows(where)
            assert rows_match is not None
            if rows_match.shape[0] <= max(self._exact_below, k):
                return index.search_many(q[None, :], k, where, rows=rows_match)[0]
            selectivity = rows_match.shape[0] / max(len(index), 1)
        tomb = self._tombstones
        fetch = k + len(tomb) if not where else int((k + len(tomb)) / selectivity) + k
        fetch = min(fetch, len(built.ids))
        items, dists = built.nns(q.tolist(), fetch, max(self._search_k, fetch), True)
        l2 = self.metric is Metric.L2
        scores = [1.0 - d * d / 2.0 for d in dists] if self._cosine else dists
        ids, metas = built.ids, built.metas
        # (key, id, score, metadata view), key: higher is better
        found: list[tuple[float, str, float, MappingProxyType[str, Any]]] = []
        for item, sc in zip(items, scores, strict=True):
            ident = ids[item]
            if ident in tomb:
                continue
            md = metas[item]
            if where and not where.matches(md):
                continue
            found.append((-sc if l2 else sc, ident, sc, md))
        delta_rows, delta_xt, delta_sq = self._delta_columns()
        if delta_rows.shape[0]:
            meta = index.metadata
            if where:
                keep = np.fromiter(
                    (where.matches(meta[r]) for r in delta_rows.tolist()),
                    dtype=bool,
                    count=delta_rows.shape[0],
                )
                delta_rows, delta_xt, delta_sq = (
                    delta_rows[keep],
                    delta_xt[:, keep],
                    delta_sq[keep],
                )
            pos, keys, dscores = index.rank(q, k, delta_xt, delta_sq)
            all_ids = index.ids
            for r, key, sc in zip(delta_rows[pos].tolist(), keys, dscores, strict=True):
                found.append((key, all_ids[r], sc, metadata_view(meta[r])))
        if where and len(found) < k and rows_match is not None:
            return index.search_many(q[None, :], k, where, rows=rows_match)[0]
        found.sort(key=_first, reverse=True)
        return [stored_hit(ident, sc, md) for _, ident, sc, md in found[:k]]

    def close(self) -> None:
        """Wait for a build, then close the data files (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._fast = None
        thread = self._building
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._data.close()


def open_backend(url: str, *, dim: int, metric: Metric) -> AnnoyBackend:
    """Open ``annoy:///path[?n_trees=..&search_k=..&...]`` (see the module docs).

    Raises:
        ConfigError: bad URL or option.
        MissingDependencyError: ``annoy`` is not installed.
        LockedError: another process has the store open.
        CorruptionError: committed data failed verification.
    """
    opts = int_option(
        url,
        {
            "n_trees": 10,
            "search_k": 1000,
            "min_index": 2048,
            "rebuild_delta": 10_000,
            "rebuild_fraction_pct": 10,
            "exact_below": 2048,
            "background": 1,
            "snapshot_bytes": 64 << 20,
            "fsync": 1,
            "seed": 42,
            "repair": 0,
        },
    )
    return AnnoyBackend(
        path_of(url),
        dim,
        metric,
        n_trees=opts["n_trees"],
        search_k=opts["search_k"],
        min_index=opts["min_index"],
        rebuild_delta=opts["rebuild_delta"],
        rebuild_fraction=opts["rebuild_fraction_pct"] / 100.0,
        exact_below=opts["exact_below"],
        background=bool(opts["background"]),
        snapshot_bytes=opts["snapshot_bytes"],
        fsync=bool(opts["fsync"]),
        seed=opts["seed"],
        repair=bool(opts["repair"]),
    )
