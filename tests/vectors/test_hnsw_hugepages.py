"""Transparent huge pages for hnsw:///'s loaded graph (``_hugepages``): the advice
lands on hnswlib's own bottom layer, changes no answer, and fails safe."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avl.errors import ConfigError
from avl.vectors import VectorStore
from avl.vectors.backends import _hugepages as hugepages
from avl.vectors.backends._hnsw_layout import FILE_HEADER
from avl.vectors.backends.hnsw import HnswBackend
from tests.conftest import need_module

hnswlib = need_module("hnswlib", "avl[hnsw] not installed")

DIM = 384
N = 5600  # 5,600 rows of 1,676 bytes: just over hugepages.MIN_BYTES


def _data(n: int = N, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((32, DIM)).astype(np.float32)
    x = centres[rng.integers(0, 32, n)] + 0.3 * rng.standard_normal((n, DIM)).astype(np.float32)
    return np.asarray(x, dtype=np.float32)


def _backend(store: VectorStore) -> HnswBackend:
    backend = store.backend
    assert isinstance(backend, HnswBackend)
    return backend


def _loaded_graph(path: Path, x: np.ndarray, ef_construction: int) -> object:
    """``x`` in an hnswlib graph saved to ``path`` and loaded back; the graph that
    was saved is gone (its rows are in the file's order: it would match too)."""
    index = hnswlib.Index(space="ip", dim=DIM)
    index.init_index(max_elements=len(x), M=16, ef_construction=ef_construction, random_seed=1)
    index.add_items(x, np.arange(len(x)))
    index.save_index(str(path))
    del index
    loaded = hnswlib.Index(space="ip", dim=DIM)
    loaded.load_index(str(path), max_elements=len(x))
    return loaded


def _geometry(path: Path) -> tuple[int, int, int]:
    """Rows in use, row size and the offset of a row's vector, from a graph file."""
    with path.open("rb") as f:
        _, _, count, row, _, offset = FILE_HEADER.unpack(f.read(FILE_HEADER.size))[:6]
    return count, row, offset


def _vma_flags(address: int) -> tuple[bool, int]:
    """Whether the mapping holding ``address`` is advised for huge pages (its
    ``VmFlags`` carry ``hg``), and how many KiB of it are huge pages."""
    advised, huge, inside = False, 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split(maxsplit=1)[0]
        if "-" in head and not head.endswith(":"):
            lo, _, hi = head.partition("-")
            inside = int(lo, 16) <= address < int(hi, 16)
        elif inside and head == "AnonHugePages:":
            huge = int(line.split()[1])
        elif inside and head == "VmFlags:":
            advised = "hg" in line.split()[1:]
    return advised, huge


def _layer(index: object, path: Path) -> int | None:
    """Where ``index``, loaded from ``path``, keeps its bottom layer (the file is
    read row by row: a whole copy of it in memory would match too)."""
    count, row, offset = _geometry(path)
    with path.open("rb") as f:
        f.seek(FILE_HEADER.size + offset)
        first = f.read(row - offset)
        f.seek(FILE_HEADER.size + (count - 1) * row + offset)
        last = f.read(row - offset)
    found = hugepages._find(first, last, (count - 1) * row, count * row)
    label = int.from_bytes(first[-8:], "little")
    return hugepages._live(index, label, [at - offset for at in found])


def test_a_loaded_graph_gets_huge_pages_and_answers_alike(tmp_path: Path) -> None:
    x = _data()
    ids = [f"v{i}" for i in range(N)]
    queries = _data(40, seed=1)
    with VectorStore(dim=DIM, backend=f"hnsw://{tmp_path}/a?fsync=0") as store:
        store.add(ids, x)  # a large batch: inserted shuffled, then laid out (a load)
        assert _backend(store).huge_pages is hugepages._available()
        want = [[(h.id, h.score) for h in store.search(q, k=10)] for q in queries]
    for option, expected in (("", hugepages._available()), ("&huge_pages=0", False)):
        with VectorStore(dim=DIM, backend=f"hnsw://{tmp_path}/a?fsync=0{option}") as store:
            backend = _backend(store)
            assert backend.opened_from == "saved"
            assert backend.huge_pages is expected
            assert [[(h.id, h.score) for h in store.search(q, k=10)] for q in queries] == want
            # the advised layer still takes inserts (and the search finds them)
            store.upsert(["late"], _data(1, seed=2))
            assert store.search(_data(1, seed=2)[0], k=1)[0].id == "late"
            store.delete(["late"])


def test_the_advice_lands_on_hnswlibs_own_layer(tmp_path: Path) -> None:
    """The address found is hnswlib's array (its rows read back as the file's), and
    after the advice its mapping is flagged for huge pages and holds some. (Without
    transparent huge pages nothing is advised.)"""
    x = _data()
    path = tmp_path / "graph.bin"
    loaded: Any = _loaded_graph(path, x, ef_construction=100)
    q = x[:20]
    want = loaded.knn_query(q, k=5)[0]
    at = _layer(loaded, path)
    assert at is not None
    if not hugepages._available():
        assert not hugepages.advise_loaded(loaded, path)
        return
    assert hugepages.advise_loaded(loaded, path)
    advised, huge_kib = _vma_flags(at + N * 1676 // 2)  # (the array's middle)
    assert advised
    assert huge_kib >= 2048  # collapsed at once (Linux 6.1 and later)
    np.testing.assert_array_equal(loaded.knn_query(q, k=5)[0], want)


def test_nothing_is_advised_where_it_cannot_help_or_match(tmp_path: Path) -> None:
    index = hnswlib.Index(space="ip", dim=DIM)
    index.init_index(max_elements=1000, M=16)
    index.add_items(_data(1000), np.arange(1000))
    small = tmp_path / "small.bin"
    index.save_index(str(small))
    loaded = hnswlib.Index(space="ip", dim=DIM)
    loaded.load_index(str(small), max_elements=1000)
    assert not hugepages.advise_loaded(loaded, small)  # under MIN_BYTES
    # a file that is not the index's, or not a graph file at all: no match, no advice
    big = hnswlib.Index(space="ip", dim=DIM)
    big.init_index(max_elements=N, M=16, ef_construction=50)
    big.add_items(_data(), np.arange(N))
    other = tmp_path / "other.bin"
    big.save_index(str(other))
    data = bytearray(other.read_bytes())
    start = FILE_HEADER.size
    data[start + 200 : start + 204] = b"\x01\x02\x03\x04"  # row 0's vector, changed
    other.write_bytes(bytes(data))
    del data  # (a live copy of the file's bytes would be found instead of the graph)
    assert not hugepages.advise_loaded(big, other)
    (tmp_path / "junk.bin").write_bytes(b"not a graph")
    assert not hugepages.advise_loaded(big, tmp_path / "junk.bin")
    assert not hugepages.advise_loaded(big, tmp_path / "missing.bin")


def test_the_option_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="huge_pages"):
        VectorStore(dim=4, backend=f"hnsw://{tmp_path}/x?huge_pages=yes")


def test_a_closed_backend_lets_its_graph_go_and_says_so(tmp_path: Path) -> None:
    """close() drops the graph at once (a store reopened while the old object
    lives holds one graph, not two); a backend used after close says so."""
    from avl.errors import BackendError
    from avl.vectors._filters import parse_where

    store = VectorStore(dim=4, backend=f"hnsw://{tmp_path}/c")
    store.add(["a", "b"], [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    backend = _backend(store)
    store.close()
    with pytest.raises(BackendError, match="hnsw vector store is closed"):
        backend.search_many(np.ones((1, 4), dtype=np.float32), 1, parse_where(None))
    with VectorStore(dim=4, backend=f"hnsw://{tmp_path}/c") as again:
        assert [h.id for h in again.search([1.0, 0.1, 0.0, 0.0], k=2)] == ["a", "b"]


def test_without_proc_self_mem_the_store_opens_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the process may not read its own memory (a sandbox), nothing is
    advised and nothing else changes."""
    x = _data()
    ids = [f"v{i}" for i in range(N)]
    with VectorStore(dim=DIM, backend=f"hnsw://{tmp_path}/s?fsync=0") as store:
        store.add(ids, x)
        want = [h.id for h in store.search(x[7], k=10)]
    real_open = hugepages.os.open

    def refuse(path: object, *args: object, **kwargs: object) -> int:
        if str(path) == "/proc/self/mem":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hugepages.os, "open", refuse)
    with VectorStore(dim=DIM, backend=f"hnsw://{tmp_path}/s?fsync=0") as store:
        assert _backend(store).opened_from == "saved"
        assert _backend(store).huge_pages is False
        assert [h.id for h in store.search(x[7], k=10)] == want


def test_a_copy_of_the_graph_in_memory_is_told_from_the_graph(tmp_path: Path) -> None:
    """A live copy of the layer's bytes matches the content search too (as a stale
    copy inside memory some later allocation took would): flipping row 0's deleted
    mark through hnswlib shows which one is the graph, and the mark is put back."""
    x = _data()
    path = tmp_path / "graph.bin"
    loaded: Any = _loaded_graph(path, x, ef_construction=50)
    count, row, offset = _geometry(path)
    with path.open("rb") as f:
        f.seek(FILE_HEADER.size)
        copy = bytearray(f.read(count * row))  # the rows, as the graph holds them
    first, last = bytes(copy[offset:row]), bytes(copy[(count - 1) * row + offset :])
    found = hugepages._find(first, last, (count - 1) * row, count * row)
    assert len(found) >= 2  # the graph and the copy
    label = int.from_bytes(first[-8:], "little")
    start = hugepages._live(loaded, label, [at - offset for at in found])
    assert start is not None
    assert copy[2] & 1 == 0  # the copy did not follow the mark
    loaded.mark_deleted(label)  # the graph's mark is back to "not deleted"
    loaded.unmark_deleted(label)
    assert len(loaded.knn_query(x[:5], k=3)[0]) == 5
    del copy


def _glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


# In a fresh process, as on a store's first open: glibc's heap holds no free block of
# 32 MiB, so it maps the array on its own. (Later in a long process it may serve the
# array from a free heap block at another offset; the padding then gains less.)
_ALIGNED_IN_A_FRESH_PROCESS = """
import ctypes, sys, tempfile
from pathlib import Path
import numpy as np, hnswlib
from avl.vectors import Metric
from avl.vectors.backends._hnsw_layout import relaid, row_layout
from tests.vectors.test_hnsw_hugepages import DIM, N, _data, _layer

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
at = libc.malloc(40 << 20)
print("malloc", at % 4096)
libc.free(at)
x = _data()
index = hnswlib.Index(space="l2", dim=DIM)
index.init_index(max_elements=22_000, M=16, ef_construction=50, random_seed=1)
index.add_items(x, np.arange(N))
found = []
new = relaid(index, Metric.L2, Path(sys.argv[1]), loaded=lambda g, p: found.append(_layer(g, p)))
layout = row_layout(32, DIM)
print("layout", layout.size, layout.data)
print("vector", (found[0] + layout.data) % 64)
new.set_ef(100)
print("finds itself", new.knn_query(x[:200], k=1)[0][:, 0].tolist() == list(range(200)))
"""


@pytest.mark.skipif(not _glibc(), reason="glibc's malloc only (the row layout assumes it)")
def test_a_laid_out_graph_keeps_its_vectors_on_cache_lines(tmp_path: Path) -> None:
    """After a layout, every vector of hnswlib's own array starts on a 64-byte line
    (the array is over 32 MiB: 22,000 rows of 1,728 bytes, 5,600 in use), because
    glibc maps a block that large 16 bytes past a page boundary."""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", _ALIGNED_IN_A_FRESH_PROCESS, str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout.splitlines()
    assert out == ["malloc 16", "layout 1728 176", "vector 0", "finds itself True"]
