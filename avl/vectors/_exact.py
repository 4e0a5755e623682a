"""Exact in-memory index on NumPy (pure: no I/O).

Vectors live in one float32, C-contiguous matrix stored transposed,
``(dim, capacity)``, that grows by doubling its capacity: a query times that matrix
is the BLAS ``gemv``/``gemm`` case that streams memory fastest (about twice as fast
as the row-major ``matrix @ query`` here). Cosine vectors arrive normalised, so every metric is one matrix product:
``ip``/``cosine`` score ``q . x``; ``l2`` ranks by ``2 q . x - |x|^2`` (which orders
like ``-|q - x|^2``) and reports ``|q - x|``.

One query over many rows (from 16,384 rows, ``dim >= 128``) can skip most of the
matrix. Once the index is that large it fits an orthonormal basis ``P`` of
``h = min(dim / 4, 256)`` directions (the top eigenvectors of ``X^T X`` over a
sample of the rows, refitted each time the row count doubles) and keeps, per row,
the sketch ``P x`` and the norm of the residual ``|x - P^T P x|`` (a quarter more
memory). For a query, ``q . x = (P q) . (P x) + q_res . x_res``, and
Cauchy-Schwarz bounds the last term by ``|q_res| |x_res|``: one pass over the
``h x n`` sketch (a quarter of the bytes) gives an upper bound of every score,
plus a margin far above float32 rounding. The rows whose bound reaches the k-th
best exact score of a probe set get full exact scores; the rest cannot be in the
top k. The result is exact on any data; how much it saves depends on the data:
sentence embeddings hold most of their energy in few directions and leave a
percent of the rows or less to score; isotropic noise prunes nothing. Each query
first estimates its chance from the norm of its residual and the rows' typical
residual (a few hundred flops) and, when the bound could prune almost nothing,
goes straight to the full product; when the bound still prunes too little, the
full product follows the sketch pass (a quarter more than a plain scan). The
dimensions of the raw vectors (the previous design read the first 96 of them)
prune nothing on MiniLM embeddings: their energy is spread over all 384.

Top-k selection avoids a full ``argpartition`` over big score matrices. One
query: the ``k``-th best score of a strided sample is a lower bound of the true
``k``-th best, so only the entries at or above it are partitioned. Many queries:
the scores are computed in blocks of 4,096 database columns (one ``sgemm`` into a
reused buffer). A query's ``k``-th best score within any subset of its columns is
a lower bound of its true ``k``-th best, so each block only pools the entries
above the query's current bound (one comparison pass and a ``flatnonzero``: a
handful of entries per block). The bound is raised to the exact ``k``-th best of
the pool after 1, 2, 4, 8, ... blocks (or when the pool outgrows a block), and the
final top-k is sorted out of the pool. Ties go to the lower row, so later columns
pool only entries strictly above the bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from avl.vectors._filters import Filter
from avl.vectors._types import FloatMatrix, Hit, Metric, Record, metadata_view, stored_hits

__all__ = ["ExactIndex", "top_k_rows"]

IntArray = npt.NDArray[np.intp]

_BLOCK_ELEMENTS = 1 << 23  # 32 MiB of float32 scores per query block
_SAMPLE = 1024


def _top_k_vector(scores: FloatMatrix, k: int) -> IntArray:
    n = scores.shape[0]
    if k >= n:
        return np.argsort(-scores, kind="stable")
    if n > 8 * _SAMPLE and k < _SAMPLE // 4:
        step = n // _SAMPLE
        sample = scores[::step]
        s = sample.shape[0]
        thr = np.partition(sample, s - k)[s - k]
        cand = np.flatnonzero(scores >= thr)
        if cand.shape[0] < n // 4:
            part = cand[np.argpartition(scores[cand], cand.shape[0] - k)[cand.shape[0] - k :]]
            return part[np.argsort(-scores[part], kind="stable")]
    part = np.argpartition(scores, n - k)[n - k :]
    return part[np.argsort(-scores[part], kind="stable")]


def top_k_rows(scores: FloatMatrix, k: int) -> tuple[IntArray, FloatMatrix]:
    """The column indices and values of the ``k`` largest entries of each row.

    Args:
        scores: an ``(m, n)`` float32 matrix of finite scores.
        k: how many per row (clipped to ``n``).

    Returns:
        ``(indices, values)``, both ``(m, min(k, n))``, best first per row.
    """
    m, n = scores.shape
    k = min(k, n)
    if k == 0:
        return np.empty((m, 0), dtype=np.intp), np.empty((m, 0), dtype=np.float32)
    if n <= 4 * _SAMPLE or k >= _SAMPLE // 4:
        if k == n:
            idx = np.argsort(-scores, axis=1, kind="stable")
        else:
            part = np.argpartition(scores, n - k, axis=1)[:, n - k :]
            vals = np.take_along_axis(scores, part, axis=1)
            order = np.argsort(-vals, axis=1, kind="stable")
            idx = np.take_along_axis(part, order, axis=1)
        return idx, np.take_along_axis(scores, idx, axis=1)
    step = n // _SAMPLE
    sample = scores[:, ::step]
    s = sample.shape[1]
    thr = np.partition(sample, s - k, axis=1)[:, s - k]
    rows, cols = np.nonzero(scores >= thr[:, None])
    vals = scores[rows, cols]
    order = np.lexsort((-vals, rows))
    rows = rows[order]
    cols = cols[order]
    vals = vals[order]
    counts = np.bincount(rows, minlength=m)
    starts = np.cumsum(counts) - counts
    rank = np.arange(rows.shape[0]) - starts[rows]
    keep = rank < k
    idx = np.empty((m, k), dtype=np.intp)
    out = np.empty((m, k), dtype=np.float32)
    idx[rows[keep], rank[keep]] = cols[keep]
    out[rows[keep], rank[keep]] = vals[keep]
    return idx, out


def _by_row(
    rows: IntArray, cols: IntArray, vals: FloatMatrix, m: int
) -> tuple[FloatMatrix, IntArray]:
    """The pooled entries as dense ``(m, width)`` score and column matrices, each
    row's entries in pool order (padding: ``-inf`` scores, column ``-1``)."""
    order = np.argsort(rows, kind="stable")
    r = rows[order]
    counts = np.bincount(r, minlength=m)
    width = max(int(counts.max()), 1)
    pos = np.arange(r.shape[0]) - (np.cumsum(counts) - counts)[r]
    dv = np.full((m, width), -np.inf, dtype=np.float32)
    dc = np.full((m, width), -1, dtype=np.intp)
    dv[r, pos] = vals[order]
    dc[r, pos] = cols[order]
    return dv, dc


class _Pool:
    """Candidate entries ``(query row, column, score)`` of a block of queries, and
    per query a lower bound ``thr`` of its k-th best score.

    Invariant: every entry seen so far that can still be in the query's top-k (best
    score first, lower column first on ties) is pooled, and at least ``k`` pooled
    entries per query score ``>= thr``. An entry of a later (higher) column that
    only ties ``thr`` therefore ranks after ``k`` pooled ones and is never needed,
    so later columns add only entries ``> thr``.
    """

    def __init__(self, m: int, k: int, thr: FloatMatrix) -> None:
        self.m = m
        self.k = k
        self.thr = thr
        self.rows: list[IntArray] = []
        self.cols: list[IntArray] = []
        self.vals: list[FloatMatrix] = []
        self.size = 0

    def add(
        self, scores: FloatMatrix, offset: int, mask: npt.NDArray[np.bool_], ties: bool
    ) -> None:
        """Pool the entries of ``scores`` (columns ``offset:``) above ``thr``
        (``>=`` when ``ties``); ``mask`` is a scratch buffer of the same shape."""
        w = scores.shape[1]
        cmp = np.greater_equal if ties else np.greater
        cmp(scores, self.thr[:, None], out=mask)
        flat = np.flatnonzero(mask)
        if flat.shape[0] == 0:
            return
        r = flat // w
        c = flat % w
        self.rows.append(r)
        self.cols.append(c + offset)
        self.vals.append(scores[r, c])
        self.size += flat.shape[0]

    def _dense(self) -> tuple[FloatMatrix, IntArray]:
        rows = np.concatenate(self.rows)
        cols = np.concatenate(self.cols)
        vals = np.concatenate(self.vals)
        return _by_row(rows, cols, vals, self.m)

    def tighten(self) -> None:
        """Raise ``thr`` to each query's exact k-th best pooled score and drop the
        entries below it."""
        dv, dc = self._dense()
        w = dv.shape[1]
        self.thr = np.partition(dv, w - self.k, axis=1)[:, w - self.k]
        keep = dv >= self.thr[:, None]
        r, pos = np.nonzero(keep)
        self.rows = [r]
        self.cols = [dc[r, pos]]
        self.vals = [dv[r, pos]]
        self.size = r.shape[0]

    def top_k(self) -> tuple[IntArray, FloatMatrix]:
        """``(columns, scores)``, both ``(m, k)``, best first per query."""
        dv, dc = self._dense()
        order = np.argsort(-dv, axis=1, kind="stable")[:, : self.k]
        return np.take_along_axis(dc, order, axis=1), np.take_along_axis(dv, order, axis=1)


_DB_BLOCK = 4096
_QUERY_BLOCK = 512
# Single-query pruning (exact, see the module docs): a sketch of a quarter of the
# dimensions' worth of principal directions per row (at most _SKETCH_MAX) and the norm
# of the rest; fitted from ``_PRUNE_MIN_ROWS`` rows (on a sample of at most
# ``_FIT_SAMPLE``) when ``dim >= _PRUNE_MIN_DIM``. On MiniLM embeddings of the shared
# corpora (384-d) the 96 directions hold 93 % of the energy and leave 0.3-1.4 % of
# the rows to score exactly; 64 directions left 1.2-4.9 % (slower overall).
_SKETCH_MAX = 256
_PRUNE_MIN_DIM = 128
_PRUNE_MIN_ROWS = 16384
_FIT_SAMPLE = 16384
_FIT_CHUNK = 8192
# float32 rounding of the sketch and its residual, relative to |q| |x|: about ten
# times the worst case (float32 dot products of 384 terms, a projection and back)
_MARGIN = 2e-4
# the cheap per-query estimate: skip the sketch when |q_res| * typical |x_res|
# exceeds this fraction of |q| max|x| (the bound could prune almost nothing)
_SLACK_LIMIT = 0.35
_MATCH_CACHE = 8


def _typed(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_typed(v) for v in value)
    return (type(value).__name__, value)


def _filter_key(where: Filter) -> tuple[Any, ...]:
    """A cache key for ``where`` that tells ``1`` from ``True`` (equal in Python,
    different filters here)."""
    return tuple((c.key, c.op, _typed(c.value)) for c in where.conditions)


class ExactIndex:
    """An exact, growable vector index with ids and metadata.

    Callers pass validated input: unique string ids, a finite float32 matrix of the
    right width (normalised for cosine) and one metadata dict per id.

    Args:
        dim: the vector dimension.
        metric: the metric.
        capacity: the initial number of rows reserved.
    """

    def __init__(self, dim: int, metric: Metric, capacity: int = 1024) -> None:
        self.dim = dim
        self.metric = metric
        cap = max(capacity, 16)
        self._xt: FloatMatrix = np.empty((dim, cap), dtype=np.float32)
        self._sq: FloatMatrix = np.empty(cap, dtype=np.float32)
        self._prune = dim >= _PRUNE_MIN_DIM
        # the pruning sketch (see the module docs), fitted from _PRUNE_MIN_ROWS rows:
        # the basis P (h, dim), per row P x as columns of (h, capacity), |x_res|
        self._basis: FloatMatrix | None = None
        self._st: FloatMatrix = np.empty((0, 0), dtype=np.float32)
        self._rest: FloatMatrix = np.empty(0, dtype=np.float32)
        self._fit_rows = 0
        self._rest_typical = 0.0  # the median |x_res| at the last fit
        self._max_sq = 0.0  # an upper bound of every stored |x|^2
        self._paths = {"pruned": 0, "sketch, then full": 0, "full (estimate)": 0, "full": 0}
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        self._meta: list[dict[str, Any]] = []
        # filter -> matching rows, valid until the next write (a handful of filters)
        self._match_cache: dict[tuple[Any, ...], IntArray] = {}

    # -- state ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._row

    @property
    def ids(self) -> list[str]:
        """The ids in row order (do not mutate)."""
        return self._ids

    @property
    def metadata(self) -> list[dict[str, Any]]:
        """The metadata in row order (do not mutate)."""
        return self._meta

    def vectors(self) -> FloatMatrix:
        """A C-contiguous copy of the stored vectors, ``(len, dim)``, in row order."""
        return np.ascontiguousarray(self._xt[:, : len(self._ids)].T)

    @property
    def row_map(self) -> dict[str, int]:
        """id -> row (do not mutate)."""
        return self._row

    def row_of(self, id_: str) -> int | None:
        """The row of ``id_``, or ``None``."""
        return self._row.get(id_)

    def nbytes(self) -> int:
        """Bytes held by the vector matrix (capacity included)."""
        return int(self._xt.nbytes + self._sq.nbytes + self._st.nbytes + self._rest.nbytes)

    def _reserve(self, extra: int) -> None:
        need = len(self._ids) + extra
        cap = self._xt.shape[1]
        if need <= cap:
            return
        cap = max(cap * 2, need)
        xt = np.empty((self.dim, cap), dtype=np.float32)
        n = len(self._ids)
        xt[:, :n] = self._xt[:, :n]
        sq = np.empty(cap, dtype=np.float32)
        sq[:n] = self._sq[:n]
        if self._basis is not None:
            st = np.empty((self._st.shape[0], cap), dtype=np.float32)
            st[:, :n] = self._st[:, :n]
            rest = np.empty(cap, dtype=np.float32)
            rest[:n] = self._rest[:n]
            self._st, self._rest = st, rest
        self._xt, self._sq = xt, sq

    # -- writes ----------------------------------------------------------------
    def add(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Append new ids (the caller guarantees they are new and unique)."""
        self._match_cache.clear()
        m = len(ids)
        self._reserve(m)
        n = len(self._ids)
        self._xt[:, n : n + m] = vectors.T
        sq = np.einsum("ij,ij->i", vectors, vectors)
        self._sq[n : n + m] = sq
        if m:
            self._max_sq = max(self._max_sq, float(sq.max()))
        if self._basis is not None:
            self._sketch(n, n + m)
        for i, id_ in enumerate(ids):
            self._row[id_] = n + i
        self._ids.extend(ids)
        self._meta.extend(dict(md) for md in metadata)
        self._maybe_fit()

    def upsert(
        self, ids: Sequence[str], vectors: FloatMatrix, metadata: Sequence[dict[str, Any]]
    ) -> None:
        """Insert new ids and overwrite existing ones."""
        self._match_cache.clear()
        new: list[int] = []
        for i, id_ in enumerate(ids):
            r = self._row.get(id_)
            if r is None:
                new.append(i)
            else:
                self._xt[:, r] = vectors[i]
                self._sq[r] = float(np.dot(vectors[i], vectors[i]))
                self._max_sq = max(self._max_sq, float(self._sq[r]))
                if self._basis is not None:
                    self._sketch(r, r + 1)
                self._meta[r] = dict(metadata[i])
        if new:
            sel = np.asarray(new, dtype=np.intp)
            self.add([ids[i] for i in new], vectors[sel], [metadata[i] for i in new])

    def delete(self, ids: Sequence[str]) -> int:
        """Remove ids (unknown ones are ignored); return how many were removed.

        The last row moves into the hole, so rows are not stable across deletes.
        """
        self._match_cache.clear()
        removed = 0
        for id_ in ids:
            r = self._row.pop(id_, None)
            if r is None:
                continue
            removed += 1
            last = len(self._ids) - 1
            if r != last:
                moved = self._ids[last]
                self._xt[:, r] = self._xt[:, last]
                self._sq[r] = self._sq[last]
                if self._basis is not None:
                    self._st[:, r] = self._st[:, last]
                    self._rest[r] = self._rest[last]
                self._ids[r] = moved
                self._meta[r] = self._meta[last]
                self._row[moved] = r
            self._ids.pop()
            self._meta.pop()
        return removed

    # -- reads -------------------------------------------------------------------
    def get(self, id_: str) -> Record | None:
        """The record of ``id_``, or ``None``."""
        r = self._row.get(id_)
        if r is None:
            return None
        vec = self._xt[:, r].copy()
        vec.flags.writeable = False
        return Record(id=id_, vector=vec, metadata=self._meta[r])

    def matching_rows(self, where: Filter) -> IntArray | None:
        """Rows whose metadata matches ``where``; ``None`` means every row.

        The answer is kept until the next write, so repeated searches with the same
        filter scan the metadata once (the returned array is read-only).
        """
        if not where:
            return None
        key = _filter_key(where)
        cached = self._match_cache.get(key)
        if cached is not None:
            return cached
        match = where.matches
        rows = np.fromiter((i for i, md in enumerate(self._meta) if match(md)), dtype=np.intp)
        rows.flags.writeable = False
        if len(self._match_cache) >= _MATCH_CACHE:
            del self._match_cache[next(iter(self._match_cache))]
        self._match_cache[key] = rows
        return rows

    def columns(self, rows: IntArray) -> tuple[FloatMatrix, FloatMatrix]:
        """The stored vectors of ``rows`` as a contiguous ``(dim, len(rows))`` matrix,
        and their squared norms (for :meth:`rank`)."""
        return np.ascontiguousarray(self._xt[:, rows]), self._sq[rows]

    def rank(
        self, q: FloatMatrix, k: int, xt: FloatMatrix, sq: FloatMatrix
    ) -> tuple[IntArray, list[float], list[float]]:
        """The best ``k`` columns of ``xt`` (from :meth:`columns`) for one query.

        Returns:
            ``(positions, keys, scores)`` best first: column positions, a ranking
            key where higher is better (the score, or minus the distance for
            ``l2``), and the score a :class:`Hit` reports.
        """
        n = xt.shape[1]
        if n == 0 or k <= 0:
            return np.empty(0, dtype=np.intp), [], []
        raw = q @ xt
        if self.metric is Metric.L2:
            raw *= 2.0
            raw -= sq
        top = _top_k_vector(raw, min(k, n))
        scores = self._reported(q, raw[top], xt[:, top])
        keys = [-s for s in scores] if self.metric is Metric.L2 else scores
        return top, keys, scores

    def search_many(
        self,
        queries: FloatMatrix,
        k: int,
        where: Filter,
        rows: IntArray | None = None,
    ) -> list[list[Hit]]:
        """The best ``k`` hits per query (exact), among rows matching ``where``.

        Args:
            queries: ``(m, dim)`` float32 (normalised for cosine).
            k: hits per query.
            where: the filter, applied before ranking.
            rows: restrict to these rows (already filtered); overrides ``where``.

        Returns:
            One list of hits per query, best first.
        """
        m = queries.shape[0]
        if rows is None:
            rows = self.matching_rows(where)
        n = len(self._ids) if rows is None else int(rows.shape[0])
        if n == 0 or k <= 0 or m == 0:
            return [[] for _ in range(m)]
        if rows is None:
            xt = self._xt[:, :n]
            sq = self._sq[:n]
        else:
            xt = self._xt[:, rows]
            sq = self._sq[rows]
        if m == 1:
            q = queries[0]
            if rows is None and self._basis is not None and 64 * k <= n:
                pruned = self._search_pruned(q, n, k)
                if pruned is not None:
                    return [self._hits(q, pruned[0], pruned[1], rows)]
            else:
                self._paths["full"] += 1
            scores = q @ xt
            if self.metric is Metric.L2:
                scores *= 2.0
                scores -= sq
            top = _top_k_vector(scores, k)
            return [self._hits(q, top, scores[top], rows)]
        results: list[list[Hit]] = []
        for start in range(0, m, _QUERY_BLOCK):
            qb = queries[start : start + _QUERY_BLOCK]
            idx, vals = self._top_k_block(qb, xt, sq, k)
            for j in range(qb.shape[0]):
                results.append(self._hits(qb[j], idx[j], vals[j], rows))
        return results

    def path_stats(self, reset: bool = False) -> dict[str, int]:
        """How many single queries over all rows took each path: ``pruned`` (the
        sketch bound pruned), ``sketch, then full`` (it pruned too little),
        ``full (estimate)`` (the query's own estimate skipped the sketch) and
        ``full`` (no sketch: too few rows, a filter, or a large ``k``)."""
        out = dict(self._paths)
        if reset:
            self._paths = dict.fromkeys(self._paths, 0)
        return out

    # -- the pruning sketch ----------------------------------------------------
    def _maybe_fit(self) -> None:
        n = len(self._ids)
        if self._prune and n >= _PRUNE_MIN_ROWS and n >= 2 * self._fit_rows:
            self._fit()

    def _fit(self) -> None:
        """Fit the sketch basis on a sample of the rows and sketch every row."""
        n = len(self._ids)
        step = max(1, n // _FIT_SAMPLE)
        sample = self._xt[:, :n:step].astype(np.float64)
        _, vecs = np.linalg.eigh(sample @ sample.T)  # ascending eigenvalues
        h = min(_SKETCH_MAX, self.dim // 4)
        self._basis = np.ascontiguousarray(vecs[:, ::-1][:, :h].T, dtype=np.float32)
        cap = self._xt.shape[1]
        self._st = np.empty((h, cap), dtype=np.float32)
        self._rest = np.empty(cap, dtype=np.float32)
        self._sketch(0, n)
        self._fit_rows = n
        self._rest_typical = float(np.median(self._rest[:n]))

    def _sketch(self, start: int, stop: int) -> None:
        """Compute ``P x`` and ``|x - P^T P x|`` for rows ``start:stop``."""
        basis = self._basis
        assert basis is not None
        for lo in range(start, stop, _FIT_CHUNK):
            hi = min(stop, lo + _FIT_CHUNK)
            block = self._xt[:, lo:hi]
            s = basis @ block
            self._st[:, lo:hi] = s
            resid = block - basis.T @ s
            self._rest[lo:hi] = np.sqrt(np.einsum("ij,ij->j", resid, resid))

    def _search_pruned(self, q: FloatMatrix, n: int, k: int) -> tuple[IntArray, FloatMatrix] | None:
        """Exact top-k of one query over all rows through the sketch bound, or
        ``None`` (the caller runs the full product) when it cannot pay off."""
        basis = self._basis
        assert basis is not None
        sq = self._sq[:n]
        sq_q = float(np.dot(q, q))
        sk = basis @ q
        resid = q - basis.T @ sk  # explicit: |q|^2 - |P q|^2 would cancel badly
        q_res = float(np.sqrt(np.dot(resid, resid)))
        norm_q = float(np.sqrt(sq_q))
        # the cheap estimate: the slack every bound carries is about |q_res| times
        # the rows' typical |x_res|; beyond a third of |q| |x| nothing is pruned
        if q_res * self._rest_typical > _SLACK_LIMIT * norm_q * float(np.sqrt(self._max_sq)):
            self._paths["full (estimate)"] += 1
            return None
        bound = sk @ self._st[:, :n]
        bound += self._rest[:n] * q_res
        bound += _MARGIN * norm_q * float(np.sqrt(self._max_sq))
        if self.metric is Metric.L2:
            bound *= 2.0
            bound -= sq
        # a lower bound of the k-th best score: exact scores of the 4k best bounds
        probe = np.argpartition(bound, n - 4 * k)[n - 4 * k :]
        exact = self._exact_scores(q, probe)
        kth = float(np.partition(exact, exact.shape[0] - k)[exact.shape[0] - k])
        cand = np.flatnonzero(bound >= kth)
        if cand.shape[0] > n // 8:
            self._paths["sketch, then full"] += 1
            return None
        self._paths["pruned"] += 1
        scores = self._exact_scores(q, cand)
        part = np.argpartition(scores, scores.shape[0] - k)[scores.shape[0] - k :]
        order = part[np.argsort(-scores[part], kind="stable")]
        return cand[order], scores[order]

    def _exact_scores(self, q: FloatMatrix, cols: IntArray) -> FloatMatrix:
        scores: FloatMatrix = q @ self._xt[:, cols]
        if self.metric is Metric.L2:
            scores *= 2.0
            scores -= self._sq[cols]
        return scores

    def _scores(self, qb: FloatMatrix, xt: FloatMatrix, sq: FloatMatrix, out: FloatMatrix) -> None:
        np.matmul(qb, xt, out=out)
        if self.metric is Metric.L2:
            out *= 2.0
            out -= sq[None, :]

    def _top_k_block(
        self, qb: FloatMatrix, xt: FloatMatrix, sq: FloatMatrix, k: int
    ) -> tuple[IntArray, FloatMatrix]:
        m = qb.shape[0]
        n = xt.shape[1]
        k = min(k, n)
        if n <= 2 * _DB_BLOCK or k * 4 > _DB_BLOCK:
            scores = np.empty((m, n), dtype=np.float32)
            self._scores(qb, xt, sq, scores)
            return top_k_rows(scores, k)
        buf = np.empty((m, _DB_BLOCK), dtype=np.float32)
        mask = np.empty((m, _DB_BLOCK), dtype=np.bool_)
        self._scores(qb, xt[:, :_DB_BLOCK], sq[:_DB_BLOCK], buf)
        # a lower bound of each query's k-th best: its k-th best in the first columns
        s = max(1024, 4 * k)
        thr = np.partition(buf[:, :s], s - k, axis=1)[:, s - k]
        pool = _Pool(m, k, thr)
        pool.add(buf, 0, mask, ties=True)
        pool.tighten()
        done = 1
        for j in range(_DB_BLOCK, n, _DB_BLOCK):
            w = min(_DB_BLOCK, n - j)
            block = buf[:, :w]
            self._scores(qb, xt[:, j : j + w], sq[j : j + w], block)
            pool.add(block, j, mask[:, :w], ties=False)
            done += 1
            # tighten after 2, 4, 8, ... blocks, or when the pool grows large
            if done & (done - 1) == 0 or pool.size > m * _DB_BLOCK:
                pool.tighten()
        return pool.top_k()

    def _reported(self, q: FloatMatrix, vals: FloatMatrix, chosen: FloatMatrix) -> list[float]:
        """Ranking values to reported scores. ``l2`` ranks by ``2 q.x - |x|^2``, which
        loses the distance to cancellation when the norms dwarf it, so the distance
        of each chosen vector (the columns of ``chosen``) is computed directly."""
        if self.metric is Metric.L2:
            diff = chosen.astype(np.float64) - q.astype(np.float64)[:, None]
            out: list[float] = np.sqrt(np.einsum("ij,ij->j", diff, diff)).tolist()
            return out
        scores: list[float] = vals.tolist()
        return scores

    def _hits(
        self, q: FloatMatrix, idx: IntArray, vals: FloatMatrix, rows: IntArray | None
    ) -> list[Hit]:
        if rows is not None:
            idx = rows[idx]
        scores = self._reported(q, vals, self._xt[:, idx] if self.metric is Metric.L2 else vals)
        picked = idx.tolist()  # as long as scores: both come from the same top-k
        metas = map(metadata_view, map(self._meta.__getitem__, picked))
        return stored_hits(map(self._ids.__getitem__, picked), scores, metas)
