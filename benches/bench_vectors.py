"""VectorStore benchmarks beside FAISS and hnswlib (plain script, prints figures).

    .venv/bin/python benches/bench_vectors.py            # 100,000 x 384
    .venv/bin/python benches/bench_vectors.py --quick    # 20,000 x 384

Everything runs single-threaded for fairness: ``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` are set to 1 before NumPy is imported
(and threadpoolctl, when installed, confirms/limits the BLAS pools),
``faiss.omp_set_num_threads(1)`` and hnswlib queries use one thread.

Data: clustered float32 vectors (fixed seed): 256 Gaussian centres in 384-d, each
vector a centre plus N(0, 0.4^2) noise; queries are fresh draws from the same
mixture. Cosine metric (vectors normalised; FAISS IndexFlatIP on the same
normalised data).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from avl.vectors import VectorStore  # noqa: E402


@contextlib.contextmanager
def _one_thread() -> Iterator[str]:
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        yield "threadpoolctl not installed; relying on *_NUM_THREADS=1"
        return
    with threadpool_limits(limits=1):
        pools = ", ".join(f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info())
        yield f"threadpoolctl: {pools}"


def clustered(n: int, dim: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    x = centres[rng.integers(0, centres.shape[0], n)] + 0.4 * rng.standard_normal((n, dim))
    x = x.astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def interleaved(
    methods: list[tuple[str, int, Callable[[], Any]]], rounds: int
) -> dict[str, tuple[float, float]]:
    """Run the methods round-robin (so load changes hit all of them alike);
    return (best, median) QPS per method."""
    times: dict[str, list[float]] = {name: [] for name, _, _ in methods}
    for _ in range(rounds):
        for name, count, fn in methods:
            t0 = time.perf_counter()
            fn()
            times[name].append(count / (time.perf_counter() - t0))
    return {name: (max(v), float(np.median(v))) for name, v in times.items()}


def recall(got: list[list[int]], truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(g[:k]) & set(t)) / k for g, t in zip(got, truth, strict=True)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="20,000 vectors instead of 100,000")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    ap.add_argument(
        "--skip-hnsw", action="store_true", help="skip the (slow to build) hnswlib peer"
    )
    args = ap.parse_args()
    n = 20_000 if args.quick else 100_000
    dim, k, n_single, n_batch = 384, 10, 200, 500
    rng = np.random.default_rng(20261125)
    centres = rng.standard_normal((256, dim)).astype(np.float32)
    x = clustered(n, dim, rng, centres)
    queries = clustered(n_batch, dim, rng, centres)
    ids = [str(i) for i in range(n)]
    truth = np.argsort(-(queries @ x.T), axis=1)[:, :k]

    import faiss
    import hnswlib

    faiss.omp_set_num_threads(1)
    with _one_thread() as threads:
        print(f"vectors: {n} x {dim} float32, clustered, cosine; k={k}; {threads}; faiss omp=1")

        # -- exact: memory backend vs FAISS IndexFlatIP vs plain NumPy ---------
        tracemalloc.start()
        store = VectorStore(dim=dim, metric="cosine")
        store.add(ids, x, metadata=[{"i": i} for i in range(n)])
        mem_bytes, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        flat = faiss.IndexFlatIP(dim)
        flat.add(x)
        xt = np.ascontiguousarray(x)

        def numpy_single() -> None:
            for q in queries[:n_single]:
                s = xt @ q
                top = np.argpartition(s, n - k)[n - k :]
                top[np.argsort(-s[top])]

        methods: list[tuple[str, int, Callable[[], Any]]] = [
            (
                "avl memory, single query",
                n_single,
                lambda: [store.search(q, k=k) for q in queries[:n_single]],
            ),
            (
                "faiss IndexFlatIP, single query",
                n_single,
                lambda: [flat.search(q[None, :], k) for q in queries[:n_single]],
            ),
            ("plain numpy (x @ q + argpartition), single", n_single, numpy_single),
            ("avl memory, batch of 500", n_batch, lambda: store.search_many(queries, k=k)),
            ("faiss IndexFlatIP, batch of 500", n_batch, lambda: flat.search(queries, k)),
            (
                "plain numpy batch (Q @ X.T + argpartition)",
                n_batch,
                lambda: np.argpartition(queries @ xt.T, n - k, axis=1),
            ),
        ]
        results = interleaved(methods, rounds=args.rounds)
        for name, (best, median) in results.items():
            print(f"  {name:<46} best {best:>8.0f} QPS   median {median:>8.0f} QPS")
        names = [m[0] for m in methods]
        single = results[names[0]][0] / results[names[1]][0]
        batch = results[names[3]][0] / results[names[4]][0]
        print(
            f"  avl/faiss (best of rounds): single {single:.2f}x (target 1.5x), batch {batch:.2f}x (target 0.8x)"
        )
        got = [[int(h.id) for h in hits] for hits in store.search_many(queries, k=k)]
        print(f"  avl exact recall@10 vs float32 brute force: {recall(got, truth):.4f}")
        index_bytes = store.backend.index.nbytes()  # type: ignore[attr-defined]
        print(
            f"  memory per vector: {mem_bytes / n:.0f} B traced in total (ids, metadata dicts, "
            f"matrix with spare capacity); matrix alone {index_bytes / n:.0f} B "
            f"(raw float32 = {dim * 4} B)"
        )
        store.close()

        # -- file backend: bytes on disk ---------------------------------------
        tmp = Path(tempfile.mkdtemp(prefix="avl-bench-"))
        try:
            t0 = time.perf_counter()
            with VectorStore(dim=dim, backend=f"file://{tmp}/f") as fs:
                for start in range(0, n, 1000):
                    fs.add(
                        ids[start : start + 1000],
                        x[start : start + 1000],
                        metadata=[{"i": i} for i in range(start, start + 1000)],
                    )
                load_s = time.perf_counter() - t0
                log_bytes = fs.backend.disk_bytes()  # type: ignore[attr-defined]
                fs.backend.compact()  # type: ignore[attr-defined]
                snap_bytes = fs.backend.disk_bytes()  # type: ignore[attr-defined]
            t0 = time.perf_counter()
            with VectorStore(dim=dim, backend=f"file://{tmp}/f") as fs:
                assert len(fs) == n
            reopen_s = time.perf_counter() - t0
            print(
                f"file backend: {log_bytes / n:.0f} B/vector as log, {snap_bytes / n:.0f} B/vector "
                f"after snapshot; {n / load_s:.0f} vectors/s added in fsync'd batches of 1000; "
                f"reopen (verify + load) {reopen_s:.2f} s"
            )

            # -- annoy backend vs hnswlib, through avl's search ---------------
            t0 = time.perf_counter()
            ann = VectorStore(dim=dim, backend=f"annoy://{tmp}/a?fsync=0")
            ann.add(ids, x)
            ann.backend.wait()  # type: ignore[attr-defined]
            build_s = time.perf_counter() - t0
            qs = queries[:n_single]
            got = [[int(h.id) for h in ann.search(q, k=k)] for q in queries]
            ann_recall = recall(got, truth)
            peers: list[tuple[str, int, Callable[[], Any]]] = [
                (
                    "avl annoy backend, VectorStore.search",
                    n_single,
                    lambda: [ann.search(q, k=k) for q in qs],
                )
            ]
            if not args.skip_hnsw:
                t0 = time.perf_counter()
                h = hnswlib.Index(space="ip", dim=dim)
                h.init_index(max_elements=n, M=16, ef_construction=200, random_seed=1)
                h.set_num_threads(2)
                h.add_items(x, np.arange(n))
                h.set_num_threads(1)
                h.set_ef(50)
                hb = time.perf_counter() - t0
                labels = [h.knn_query(q[None, :], k=k)[0][0].tolist() for q in queries]
                print(
                    f"hnswlib (M=16, ef_construction=200, ef=50): recall@10 {recall(labels, truth):.4f} "
                    f"(build {hb:.1f} s on 2 threads)"
                )
                peers.append(
                    (
                        "hnswlib knn_query",
                        n_single,
                        lambda: [h.knn_query(q[None, :], k=k) for q in qs],
                    )
                )
            res = interleaved(peers, rounds=args.rounds)
            print(
                f"annoy backend (defaults n_trees=10, search_k=1000): recall@10 {ann_recall:.4f} "
                f"(load + build {build_s:.1f} s)"
            )
            for name, (best, median) in res.items():
                print(f"  {name:<46} best {best:>8.0f} QPS   median {median:>8.0f} QPS")
            if len(res) == 2:
                a, b = (v[0] for v in res.values())
                print(f"  annoy/hnswlib QPS (best of rounds) = {a / b:.2f}x (target 0.5x)")
            ann.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
