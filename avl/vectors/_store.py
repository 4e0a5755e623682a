"""VectorStore: validation and the public API over a :class:`VectorBackend`."""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, KeysView, Mapping, Sequence, Sized
from collections.abc import Set as AbstractSet
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from avl._args import describe, storable_problem, unicode_problem
from avl._registry import Registry
from avl.errors import ConfigError, InvalidInputError, InvalidTypeError, NotFoundError
from avl.vectors._filters import Filter, parse_where
from avl.vectors._types import (
    FloatMatrix,
    Hit,
    Metric,
    Record,
    VectorBackend,
    Where,
    plain_sq_norm,
)

__all__ = ["BACKENDS", "VectorStore", "open_backend"]

BACKENDS = Registry(
    kind="vector-store backend",
    entries={
        "memory": "avl.vectors.backends.memory:open_backend",
        "file": "avl.vectors.backends.file:open_backend",
        "annoy": "avl.vectors.backends.annoy:open_backend",
        "hnsw": "avl.vectors.backends.hnsw:open_backend",
        "postgresql": "avl.vectors.backends.postgresql:open_backend",
    },
    extras={"postgresql": "postgres", "hnsw": "hnsw"},
)

_NO_FILTER = Filter()

IdLike = str | int
Ids = IdLike | Iterable[IdLike]
Metadata = Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None


#: The largest vector dimension a store accepts (checked before anything is allocated).
MAX_DIM = 65_536
#: The most ids one call may carry (checked before they are iterated).
MAX_IDS = 10_000_000
_MAX_K = 2**31 - 1  # a larger k asks for every vector just the same (and fits C ints)


def _metric(value: str | Metric) -> Metric:
    if not isinstance(value, (str, Metric)):
        raise ConfigError(f"metric must be 'cosine', 'ip' or 'l2', got {describe(value)}")
    try:
        return Metric(value.strip().lower() if isinstance(value, str) else value)  # "COSINE"
    except ValueError:
        known = ", ".join(repr(m.value) for m in Metric)
        alias = _METRIC_ALIASES.get(value.strip().lower().replace("-", "_"))
        hint = f"; did you mean {alias.value!r}?" if alias is not None else ""
        raise ConfigError(f"unknown metric {describe(value)}{hint} (known: {known})") from None


# what other libraries call the three metrics: named in the error, not accepted
# silently (an "euclidean" store that scored like another library could surprise)
_METRIC_ALIASES = {
    "angular": Metric.COSINE,
    "cos": Metric.COSINE,
    "dot": Metric.IP,
    "dot_product": Metric.IP,
    "inner_product": Metric.IP,
    "innerproduct": Metric.IP,
    "euclidean": Metric.L2,
    "euclidean_distance": Metric.L2,
}


def open_backend(url: str, *, dim: int, metric: str | Metric = "cosine") -> VectorBackend:
    """Open the backend for ``url``.

    Args:
        url: ``memory://``, ``file:///path``, ``annoy:///path``, ``hnsw:///path`` or
            ``postgresql://...``
            (options go in the query string, see each backend).
        dim: the vector dimension.
        metric: ``"cosine"``, ``"ip"`` or ``"l2"``.

    Returns:
        The backend.

    Raises:
        ConfigError: unknown scheme or bad option.
        MissingDependencyError: the backend's extra is not installed.
        BackendError: the backend could not be opened.
    """
    backend: VectorBackend = BACKENDS.create(url, dim=dim, metric=_metric(metric))
    return backend


def _numpy_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _plain_json(d: dict[str, Any], i: int) -> dict[str, Any]:
    """Convert NumPy scalars/arrays in metadata to plain JSON values, or refuse."""
    try:
        plain: dict[str, Any] = json.loads(json.dumps(d, allow_nan=False, default=_numpy_default))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInputError(f"metadata[{i}] is not JSON-serialisable: {exc}") from exc
    return plain


# a NUL escape in JSON text: "\u0000" after an even number of backslashes (an odd
# number means a literal backslash followed by the text "u0000")
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _check_json_text(text: str, i: int) -> None:
    """Refuse metadata that some store cannot hold, on every backend alike: a
    string with a lone surrogate (not valid Unicode, so not valid JSON for a
    database) or with a NUL character (PostgreSQL's ``jsonb`` refuses ``\\u0000``)."""
    if unicode_problem(text) is not None:
        raise InvalidInputError(
            f"metadata[{i}] holds a string that is not valid Unicode (a lone surrogate)"
        )
    if "\\u0000" in text and _JSON_NUL.search(text):
        raise InvalidInputError(f"metadata[{i}] holds a NUL character, which stores cannot keep")


def _as_floats(value: Any, what: str) -> npt.NDArray[np.float32]:
    """``value`` as a float32 array; whatever NumPy raises on the caller's value (ragged
    lists, strings, objects, too deep, too large) becomes an avl error, and complex
    values are refused rather than silently losing their imaginary part."""
    try:
        # values beyond float32 become inf: the finite check names them (no warning)
        with np.errstate(over="ignore", invalid="ignore"):
            arr = value if isinstance(value, np.ndarray) else np.asarray(value)
            if arr.dtype.kind not in "biufO":
                raise InvalidInputError(
                    f"{what} must be real numeric values, got an array of {arr.dtype}"
                )
            return arr.astype(np.float32, copy=False)
    except InvalidInputError:
        raise
    except Exception as exc:  # translated at the boundary, never swallowed
        raise InvalidInputError(
            f"{what} must be numeric arrays, got {describe(value)}: {describe(exc, 200)}"
        ) from exc


def _is_backend(value: object) -> bool:
    try:
        return isinstance(value, VectorBackend)
    except Exception:  # an object whose attribute lookup raises is no backend
        return False


def _one_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)):
        raise InvalidTypeError(
            f"ids must be str or int, got {type(value).__name__}: {describe(value)}"
        )
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        raise InvalidInputError(f"integer ids must fit in 64 bits, got {describe(value)}")
    s = str(value)
    if not s:
        raise InvalidInputError("ids must not be empty strings")
    problem = storable_problem(s)  # (refused on every backend: a store is the same everywhere)
    if problem is not None:
        raise InvalidInputError(f"id {describe(s)} {problem}")
    return s


class VectorStore:
    """Vectors with string ids and metadata, searched by similarity.

    Ids are strings; ints are accepted and converted with ``str()`` (so ``7`` and
    ``"7"`` are the same id and hits carry ``"7"``). Scores: cosine similarity for
    ``cosine``, inner product for ``ip`` (higher is better), Euclidean distance for
    ``l2`` (lower is better); hits are always sorted best first. For ``cosine``
    vectors are normalised once when added (``get`` returns the normalised vector).

    Metadata filters (``where``) are applied before ranking, so a search returns
    ``min(k, number of matching vectors)`` hits. See :mod:`avl.vectors._filters`
    for the filter language.

    The store is thread-safe (one lock around the backend).

    Args:
        dim: the vector dimension (positive).
        metric: ``"cosine"`` (default), ``"ip"`` or ``"l2"`` (any case; other
            libraries' names, such as ``"euclidean"``, get a hint in the error).
        backend: a URL (``"memory://"`` default, ``"file:///path"``,
            ``"annoy:///path"``, ``"hnsw:///path"``, ``"postgresql://..."``) or a backend object that
            implements :class:`VectorBackend` with the same ``dim`` and ``metric``.

    Raises:
        ConfigError: bad dimension, metric or backend URL.
        MissingDependencyError: the backend's extra is not installed.
        BackendError: the backend could not be opened (``LockedError`` when another
            process holds a file store, ``CorruptionError`` when stored data fails
            verification).

    Example:
        >>> import numpy as np
        >>> store = VectorStore(dim=3)
        >>> store.add(["a", "b"], np.eye(3, dtype=np.float32)[:2], metadata=[{"t": 1}, {"t": 2}])
        >>> [h.id for h in store.search([1.0, 0.1, 0.0], k=1)]
        ['a']
    """

    def __init__(
        self,
        dim: int,
        metric: str | Metric = "cosine",
        backend: str | VectorBackend = "memory://",
    ) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise ConfigError(f"dim must be a positive int, got {describe(dim)}")
        if dim > MAX_DIM:  # before anything is allocated for it
            raise ConfigError(f"dim must be at most {MAX_DIM}, got {describe(dim)}")
        self._dim = int(dim)
        self._shape = (self._dim,)
        self._metric = _metric(metric)
        if isinstance(backend, str):
            self._backend = open_backend(backend, dim=self._dim, metric=self._metric)
        else:
            if not _is_backend(backend):
                raise ConfigError(
                    f"backend must be a URL or a VectorBackend, got {type(backend).__name__}"
                )
            if backend.dim != self._dim or Metric(backend.metric) is not self._metric:
                raise ConfigError(
                    f"backend has dim={backend.dim}, metric={Metric(backend.metric).value!r}; "
                    f"the store was given dim={self._dim}, metric={self._metric.value!r}"
                )
            self._backend = backend
        # a backend's optional fast path for one unfiltered NumPy query (see VectorBackend)
        self._search_one: Callable[[npt.NDArray[Any], int], list[Hit] | None] | None = getattr(
            self._backend, "search_one", None
        )
        self._lock = threading.RLock()
        self._closed = False

    # -- properties ----------------------------------------------------------
    @property
    def dim(self) -> int:
        """The vector dimension."""
        return self._dim

    @property
    def metric(self) -> Metric:
        """The metric."""
        return self._metric

    @property
    def backend(self) -> VectorBackend:
        """The backend object."""
        return self._backend

    # -- validation ----------------------------------------------------------
    def _ids(self, ids: object, *, ordered: bool = True) -> list[str]:
        if isinstance(ids, (str, int, np.integer)) and not isinstance(ids, bool):
            return [_one_id(ids)]
        if isinstance(ids, np.ndarray):
            ids = ids.tolist()
        if isinstance(ids, (bytes, Mapping)) or not isinstance(ids, Iterable):
            raise InvalidTypeError(
                f"ids must be a str, an int or a sequence, got {type(ids).__name__}"
            )
        if ordered and isinstance(ids, AbstractSet) and not isinstance(ids, KeysView):
            # a set's order is arbitrary (and, for strings, differs between runs):
            # pairing it with vectors or results would be a silent shuffle (a
            # dict's keys keep their insertion order, so they are fine)
            raise InvalidTypeError(
                f"ids must be in order (a list or tuple), got a {type(ids).__name__}, "
                "whose order is arbitrary"
            )
        try:
            if isinstance(ids, Sized) and len(ids) > MAX_IDS:
                raise InvalidInputError(f"at most {MAX_IDS} ids per call, got {len(ids)}")
            items = list(itertools.islice(ids, MAX_IDS + 1))
        except InvalidInputError:
            raise
        except Exception as exc:  # the caller's own iterable failed
            raise InvalidInputError(f"ids could not be iterated: {describe(exc)}") from exc
        if len(items) > MAX_IDS:
            raise InvalidInputError(f"at most {MAX_IDS} ids per call")
        return [_one_id(v) for v in items]

    def _matrix(self, vectors: Any, n: int | None, what: str) -> FloatMatrix:
        arr = _as_floats(vectors, what)
        single = arr.ndim == 1  # one vector: errors name it, not "row 0" of a matrix
        if single:
            what = "vector" if what == "vectors" else what
            if arr.shape[0] != self._dim:
                raise InvalidInputError(
                    f"{what} must have dimension {self._dim}, got {arr.shape[0]}"
                )
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self._dim:
            got = arr.shape[-1] if arr.ndim >= 1 else "a scalar"
            raise InvalidInputError(
                f"{what} must have dimension {self._dim}, got shape {arr.shape} (dimension {got})"
            )
        if n is not None and arr.shape[0] != n:
            raise InvalidInputError(f"got {n} ids but {arr.shape[0]} vectors")
        if not arr.shape[0]:
            return np.ascontiguousarray(arr)
        # One pass: a NaN/inf anywhere makes the row's squared norm non-finite (so
        # does overflow of huge values, which the exact check below tells apart).
        sq = np.einsum("ij,ij->i", arr, arr)
        cosine = self._metric is Metric.COSINE
        if not np.isfinite(sq).all():
            bad_rows = np.flatnonzero(~np.isfinite(arr).all(axis=1))
            if bad_rows.shape[0]:
                row = "" if single else f" row {int(bad_rows[0])}"
                raise InvalidInputError(f"{what}{row} contains NaN or infinity")
            if not cosine:  # ip and l2 scores of such values overflow too
                row = "" if single else f" row {int(np.flatnonzero(~np.isfinite(sq))[0])}"
                raise InvalidInputError(
                    f"{what}{row} has values too large for float32 arithmetic "
                    "(its squared length overflows)"
                )
        if cosine:
            odd = np.flatnonzero(~(sq > 0.0) | (sq == math.inf))
            if odd.shape[0]:
                arr, sq = self._rescaled(arr, sq, odd, what, single)
            arr = arr / np.sqrt(sq)[:, None]
        return np.ascontiguousarray(arr, dtype=np.float32)

    @staticmethod
    def _rescaled(
        arr: FloatMatrix, sq: FloatMatrix, odd: npt.NDArray[np.intp], what: str, single: bool
    ) -> tuple[FloatMatrix, FloatMatrix]:
        """Rows whose squared norm under- or overflows float32 (values near 1e-20 or
        1e19), divided by their largest magnitude: cosine does not depend on a
        vector's length, so such a row is searched and stored like any other. A row
        of zeros has no direction and is refused."""
        peak = np.abs(arr[odd]).max(axis=1)
        if not peak.all():
            row = "" if single else f" row {int(odd[np.flatnonzero(peak == 0)[0]])}"
            raise InvalidInputError(f"{what}{row} is a zero vector, which has no cosine similarity")
        arr = np.array(arr, dtype=np.float32)
        sq = np.array(sq, dtype=np.float32)
        arr[odd] /= peak[:, None]
        sq[odd] = np.einsum("ij,ij->i", arr[odd], arr[odd])
        return arr, sq

    def _metadata(self, metadata: object, n: int, single: bool) -> list[dict[str, Any]]:
        if metadata is None:
            return [{} for _ in range(n)]
        if isinstance(metadata, Mapping):
            if n != 1:
                raise InvalidInputError(f"got one metadata mapping for {n} ids; pass a list")
            items: Sequence[object] = [metadata]
        elif isinstance(metadata, Sequence) and not isinstance(metadata, (str, bytes)):
            items = metadata
        else:
            raise InvalidInputError(
                f"metadata must be a mapping or a list of mappings, got {type(metadata).__name__}"
            )
        if len(items) != n:
            raise InvalidInputError(f"got {n} ids but {len(items)} metadata entries")
        out: list[dict[str, Any]] = []
        for i, md in enumerate(items):
            if md is None:
                out.append({})
                continue
            if not isinstance(md, Mapping):
                raise InvalidInputError(f"metadata[{i}] must be a mapping, got {type(md).__name__}")
            d = dict(md)
            for key in d:
                if not isinstance(key, str):
                    raise InvalidInputError(f"metadata[{i}] key {describe(key)} is not a string")
            try:
                text = json.dumps(d, allow_nan=False, ensure_ascii=False)
            except TypeError:
                d = _plain_json(d, i)
                text = json.dumps(d, ensure_ascii=False)
            except (ValueError, RecursionError) as exc:
                raise InvalidInputError(f"metadata[{i}] is not JSON-serialisable: {exc}") from exc
            _check_json_text(text, i)
            out.append(d)
        return out

    def _prepare(
        self, ids: Ids, vectors: Any, metadata: Metadata
    ) -> tuple[list[str], FloatMatrix, list[dict[str, Any]]]:
        single = isinstance(ids, (str, int, np.integer))
        id_list = self._ids(ids)
        dupes = [i for i, c in Counter(id_list).items() if c > 1]
        if dupes:
            raise InvalidInputError(f"duplicate ids in one call: {sorted(dupes)[:10]}")
        if not id_list and not single:
            empty = _as_floats(vectors, "vectors")
            if empty.size == 0 and empty.ndim <= 2:  # add([], []): nothing to do
                return [], np.empty((0, self._dim), dtype=np.float32), []
        mat = self._matrix(vectors, None, "vectors")
        if single and mat.shape[0] != 1:
            raise InvalidInputError("one id given with several vectors")
        if mat.shape[0] != len(id_list):
            raise InvalidInputError(f"got {len(id_list)} ids but {mat.shape[0]} vectors")
        return id_list, mat, self._metadata(metadata, len(id_list), single)

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError("the vector store is closed")

    # -- writes --------------------------------------------------------------
    def add(self, ids: Ids, vectors: Any, metadata: Metadata = None) -> None:
        """Add new vectors.

        Args:
            ids: one id or a sequence of ids (str, or int converted to str).
            vectors: one vector (``dim`` floats) or a matrix ``(len(ids), dim)``.
            metadata: ``None``, one mapping (for one id) or one mapping (or
                ``None``) per id; JSON-serialisable.

        Raises:
            InvalidInputError: an id already exists or repeats, wrong dimension or
                count, NaN/infinite values, a zero vector with ``cosine``, bad
                metadata. Nothing is stored when this is raised.
            BackendError: the backend failed.

        Example:
            >>> store = VectorStore(dim=2)
            >>> store.add("a", [1.0, 0.0], metadata={"kind": "doc"})
            >>> len(store)
            1
        """
        id_list, mat, meta = self._prepare(ids, vectors, metadata)
        if not id_list:
            return
        with self._lock:
            self._check_open()
            self._backend.add(id_list, mat, meta)

    def upsert(self, ids: Ids, vectors: Any, metadata: Metadata = None) -> None:
        """Add vectors, replacing the vector and metadata of ids that exist.

        Args:
            ids: as for :meth:`add`.
            vectors: as for :meth:`add`.
            metadata: as for :meth:`add` (replaces, does not merge).

        Raises:
            InvalidInputError: as for :meth:`add`, except that existing ids are fine.
            BackendError: the backend failed.
        """
        id_list, mat, meta = self._prepare(ids, vectors, metadata)
        if not id_list:
            return
        with self._lock:
            self._check_open()
            self._backend.upsert(id_list, mat, meta)

    def delete(self, ids: Ids) -> int:
        """Delete ids; unknown ids are ignored.

        Args:
            ids: one id or a sequence of ids.

        Returns:
            How many vectors were deleted.

        Raises:
            InvalidInputError: an id is not a str or int.
            BackendError: the backend failed.
        """
        id_list = list(dict.fromkeys(self._ids(ids, ordered=False)))
        with self._lock:
            self._check_open()
            return self._backend.delete(id_list) if id_list else 0

    # -- reads ---------------------------------------------------------------
    def get(self, ids: Ids) -> list[Record]:
        """The stored records for ``ids``, in order.

        Args:
            ids: one id or a sequence of ids.

        Returns:
            One :class:`Record` per id.

        Raises:
            NotFoundError: an id is not stored (the message lists the missing ids).
            InvalidInputError: an id is not a str or int.
        """
        id_list = self._ids(ids)
        with self._lock:
            self._check_open()
            got = self._backend.get(id_list)
        missing = [i for i, r in zip(id_list, got, strict=True) if r is None]
        if missing:
            raise NotFoundError(f"no vectors with ids {missing[:10]}")
        return [r for r in got if r is not None]

    def __contains__(self, id_: object) -> bool:
        if isinstance(id_, bool) or not isinstance(id_, (str, int)):
            return False
        with self._lock:
            self._check_open()
            return self._backend.get([str(id_)])[0] is not None

    def __len__(self) -> int:
        with self._lock:
            self._check_open()
            return self._backend.count()

    def _k(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise InvalidInputError(f"k must be a positive int, got {describe(k)}")
        return min(int(k), _MAX_K)

    def search(self, query: Any, k: int = 10, where: Where | Filter | None = None) -> list[Hit]:
        """The ``k`` stored vectors closest to ``query`` (best first).

        Args:
            query: one vector of ``dim`` floats.
            k: how many hits at most; fewer come back when fewer vectors match.
            where: a metadata filter, applied before ranking.

        Returns:
            Up to ``k`` :class:`Hit` objects, best first (empty on an empty store).

        Raises:
            InvalidInputError: wrong dimension, NaN, zero vector with ``cosine``,
                ``k`` not a positive int, or a bad filter.
            BackendError: the backend failed.

        Example:
            >>> store = VectorStore(dim=2, metric="l2")
            >>> store.add([1, 2], [[0.0, 0.0], [3.0, 4.0]])
            >>> [(h.id, h.score) for h in store.search([0.0, 0.0], k=2)]
            [('1', 0.0), ('2', 5.0)]
        """
        if where is None and type(query) is np.ndarray and type(k) is int and 0 < k <= _MAX_K:
            # the common call: one NumPy vector, no filter
            search_one = self._search_one
            if search_one is not None:
                with self._lock:
                    if self._closed:
                        self._check_open()
                    hits = search_one(query, k)
                if hits is not None:
                    return hits
            q = self._fast_query(query)
            if q is not None:
                with self._lock:
                    self._check_open()
                    return self._backend.search_many(q, k, _NO_FILTER)[0]
        k = self._k(k)
        flt = parse_where(where)
        arr = _as_floats(query, "query")
        if arr.ndim == 2 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 1:
            got = describe(query) if arr.ndim == 0 else f"shape {arr.shape}"
            raise InvalidInputError(f"query must be one vector of dimension {self._dim}, got {got}")
        mat = self._matrix(arr, None, "query")
        with self._lock:
            self._check_open()
            return self._backend.search_many(mat, k, flt)[0]

    def _fast_query(self, query: npt.NDArray[Any]) -> FloatMatrix | None:
        """The common query, a finite non-zero C-contiguous float32 vector of the
        right dimension, validated and normalised in two NumPy calls and returned as
        a ``(1, dim)`` matrix; ``None`` sends anything else through the full checks,
        which convert it or give the precise error."""
        if not query.flags.c_contiguous:
            return None
        sq = plain_sq_norm(query, self._shape)
        if sq is None:
            return None
        if self._metric is Metric.COSINE:
            unit: FloatMatrix = query[None, :] / np.float32(math.sqrt(sq))
            return unit
        return query[None, :]

    def search_many(
        self, queries: Any, k: int = 10, where: Where | Filter | None = None
    ) -> list[list[Hit]]:
        """Search many queries at once (faster than a loop of :meth:`search`).

        Args:
            queries: a matrix ``(m, dim)``.
            k: hits per query.
            where: one filter for all queries, applied before ranking.

        Returns:
            ``m`` lists of hits, best first.

        Raises:
            InvalidInputError: as for :meth:`search`.
            BackendError: the backend failed.
        """
        k = self._k(k)
        flt = parse_where(where)
        arr = _as_floats(queries, "queries")
        if arr.ndim == 1 and arr.shape[0] == 0:  # no queries: no results
            return []
        if arr.ndim != 2:
            raise InvalidInputError(
                f"queries must be a matrix (m, {self._dim}), got shape {arr.shape}"
            )
        mat = self._matrix(arr, None, "query")
        with self._lock:
            self._check_open()
            return self._backend.search_many(mat, k, flt)

    # -- lifecycle -----------------------------------------------------------
    def close(self) -> None:
        """Close the backend (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._backend.close()

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VectorStore(dim={self._dim}, metric={self._metric.value!r}, backend={type(self._backend).__name__})"
