"""Execution accuracy of the offline generator on the shared text-to-SQL set.

The 20 SQLite databases in ``shared/data/text2sql`` are split, once and for all, by
database into a development half (rules are written only from its failures) and a
validation half (measured, never read for rules). The split is a snake draft by
question count (ties by name): sorted by count, databases go to halves A, B, B, A,
A, B, B, A, ... with A the development half. It is fixed in ``DEVELOPMENT`` and
``VALIDATION`` below.

Each question goes through :class:`avl.assistant.Assistant` with its default
(offline) model, in three settings:

- schema only: ``train_from_database()`` and nothing else;
- leave-one-out: every *other* question of the same database trained as a pair;
- 5-fold: the questions of a database shuffled (seeded by its name) into five
  folds; each fold asked with the other four trained.

A question counts as correct when the answer's rows equal the gold SQL's rows as a
multiset (column order matters). Figures are given per half and per query shape
(the gold SQL's shape: a set operation or subquery, GROUP BY, a join, an aggregate,
an order, a plain list), with the share of questions abstained on and the model
time per question. ``--abstention`` also asks the written questions of
``tests/fixtures/offline/demo_questions.json`` on the demo shop database.

Run::

    .venv/bin/python benches/eval_text2sql.py                  # both halves, all settings
    .venv/bin/python benches/eval_text2sql.py --half dev --no-folds
    .venv/bin/python benches/eval_text2sql.py --db concert_singer --show 5
    .venv/bin/python benches/eval_text2sql.py --abstention --half none
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avl.assistant import Assistant, create_demo_database  # noqa: E402
from avl.errors import AvlError  # noqa: E402

#: Rules are written only from failures on these databases.
DEVELOPMENT = (
    "world_1",
    "chinook_1",
    "dog_kennels",
    "tvshow",
    "network_1",
    "poker_player",
    "orchestra",
    "singer",
    "museum_visit",
    "real_estate_properties",
)
#: Measured only.
VALIDATION = (
    "car_1",
    "cre_Doc_Template_Mgt",
    "flight_2",
    "student_transcripts_tracking",
    "concert_singer",
    "pets_1",
    "employee_hire_evaluation",
    "course_teach",
    "battle_death",
    "voter_1",
)
SHAPES = ("nested/set", "group", "join", "aggregate", "order", "list")


def shape_of(sql: str) -> str:
    """The query shape of a gold SQL (the first that applies, in ``SHAPES`` order)."""
    import sqlglot
    from sqlglot import expressions as exp

    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return "list"
    if isinstance(tree, exp.SetOperation) or any(True for _ in tree.find_all(exp.Subquery)):
        return "nested/set"
    if tree.args.get("group"):
        return "group"
    if len({t.name.lower() for t in tree.find_all(exp.Table)}) > 1:
        return "join"
    if any(True for _ in tree.find_all(exp.AggFunc)):
        return "aggregate"
    if tree.args.get("order"):
        return "order"
    return "list"


def _multiset(rows: Any) -> collections.Counter[tuple[Any, ...]]:
    return collections.Counter(tuple(r) for r in rows)


class Tally:
    """Correct, abstained and model time per setting and shape."""

    def __init__(self) -> None:
        self.n: collections.Counter[str] = collections.Counter()
        self.ok: collections.Counter[tuple[str, str]] = collections.Counter()
        self.abstained: collections.Counter[str] = collections.Counter()
        self.ms: list[float] = []
        self.total_ms: list[float] = []
        self.miss_kinds: collections.Counter[str] = collections.Counter()
        self.recall = 0

    def add(self, setting: str, shape: str, ok: bool, abstained: bool) -> None:
        self.ok[(setting, shape)] += ok
        self.ok[(setting, "all")] += ok
        self.abstained[setting] += abstained

    def merge(self, other: Tally) -> None:
        self.n.update(other.n)
        self.ok.update(other.ok)
        self.abstained.update(other.abstained)
        self.ms.extend(other.ms)
        self.total_ms.extend(other.total_ms)
        self.miss_kinds.update(other.miss_kinds)
        self.recall += other.recall


def _ask(
    a: Assistant, q: str, gold: collections.Counter[tuple[Any, ...]], tally: Tally | None = None
) -> tuple[bool, bool, str, float]:
    try:
        ans = a.ask(q)
    except AvlError:
        return False, False, "", 0.0
    ok = ans.error == "" and _multiset(ans.rows) == gold
    abstained = not ans.sql
    if tally is not None:
        tally.total_ms.append(float(ans.timings.get("total", 0.0)) * 1000.0)
        if not ok:
            kind = "abstained" if abstained else "error" if ans.error else "wrong rows"
            tally.miss_kinds[kind] += 1
    return ok, abstained, ans.sql, float(ans.timings.get("model", 0.0)) * 1000.0


def _gold_tables(sql: str) -> set[str]:
    import sqlglot
    from sqlglot import expressions as exp

    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return set()
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    return {t.name.lower() for t in tree.find_all(exp.Table) if t.name.lower() not in ctes}


def evaluate_db(
    db_id: str,
    questions: Sequence[dict[str, Any]],
    data: Path,
    *,
    folds: bool,
    loo: bool,
    context_tokens: int | None = None,
) -> tuple[Tally, list[tuple[str, str, str, str]]]:
    """Run one database in every setting; return the tally and the misses."""
    path = data / "databases" / db_id / f"{db_id}.sqlite"
    kw: dict[str, Any] = {} if context_tokens is None else {"context_tokens": context_tokens}
    a = Assistant(db=f"sqlite:///{path}", cache_threshold=None, max_rows=10**6, **kw)
    a.train_from_database()
    tally = Tally()
    misses: list[tuple[str, str, str, str]] = []
    pairs = [(q["question"], q["sql"]) for q in questions]
    shapes = [shape_of(s) for _, s in pairs]
    golds = [_multiset(a.db.execute(s, max_rows=10**7).rows) for _, s in pairs]
    n = len(pairs)
    for s in shapes:
        tally.n[s] += 1
    tally.n["all"] += n
    for (q, sql), shape, gold in zip(pairs, shapes, golds, strict=True):
        ok, ab, got, ms = _ask(a, q, gold, tally)
        tally.add("schema", shape, ok, ab)
        retrieved = {t.lower() for t in a.retrieval_tables(q)}
        tally.recall += _gold_tables(sql) <= retrieved
        tally.ms.append(ms)
        if not ok:
            misses.append(("schema", q, sql, got))
    if loo or folds:
        ids = [a.train(question=q, sql=s, added_by="eval")[0] for q, s in pairs]
    if loo:
        for i, ((q, sql), shape, gold) in enumerate(zip(pairs, shapes, golds, strict=True)):
            a.remove(ids[i])
            try:
                ok, ab, got, _ = _ask(a, q, gold)
            finally:
                ids[i] = a.train(question=q, sql=sql, added_by="eval")[0]
            tally.add("loo", shape, ok, ab)
            if not ok:
                misses.append(("loo", q, sql, got))
    if folds:
        order = list(range(n))
        random.Random(db_id).shuffle(order)
        for k in range(5):
            fold = order[k::5]
            for i in fold:
                a.remove(ids[i])
            for i in fold:
                (q, sql), shape, gold = pairs[i], shapes[i], golds[i]
                ok, ab, got, _ = _ask(a, q, gold)
                tally.add("5fold", shape, ok, ab)
                if not ok:
                    misses.append(("5fold", q, sql, got))
            for i in fold:
                ids[i] = a.train(question=pairs[i][0], sql=pairs[i][1], added_by="eval")[0]
    a.close()
    return tally, misses


def _pct(a: int, b: int) -> str:
    return f"{a / b:6.1%}" if b else "     -"


def report(name: str, t: Tally, settings: Sequence[str]) -> None:
    """Print one half's figures: per setting, per shape, abstention, time."""
    n = t.n["all"]
    print(f"\n== {name}: {n} questions")
    print(f"{'shape':12} {'n':>5} " + " ".join(f"{s:>8}" for s in settings))
    for shape in (*SHAPES, "all"):
        m = t.n[shape]
        if not m:
            continue
        print(f"{shape:12} {m:5d} " + " ".join(f"{_pct(t.ok[(s, shape)], m):>8}" for s in settings))
    print(f"{'abstained':12} {'':5} " + " ".join(f"{_pct(t.abstained[s], n):>8}" for s in settings))
    if t.ms:
        qs = statistics.quantiles(t.ms, n=20) if len(t.ms) > 1 else [t.ms[0]] * 19
        print(
            f"model time per question (schema only): median {statistics.median(t.ms):.1f} ms, "
            f"p5 {qs[0]:.1f} ms, p95 {qs[-1]:.1f} ms"
        )
        qt = statistics.quantiles(t.total_ms, n=20) if len(t.total_ms) > 1 else [0.0] * 19
        print(
            f"ask time per question (schema only): median {statistics.median(t.total_ms):.1f} ms, "
            f"p5 {qt[0]:.1f} ms, p95 {qt[-1]:.1f} ms"
        )
        print(
            "schema-only misses: " + ", ".join(f"{k} {v}" for k, v in sorted(t.miss_kinds.items()))
        )
        print(f"schema-retrieval recall (gold tables all retrieved): {t.recall / max(1, n):.3f}")


def abstention(path: Path, show: int = 0) -> tuple[dict[str, tuple[int, int]], int]:
    """Ask the written demo questions.

    Returns:
        ``category -> (abstained, asked)``, and how many answerable questions got
        the gold SQL's rows.
    """
    cases = json.loads(path.read_text())
    out: dict[str, tuple[int, int]] = {}
    right = 0
    with tempfile.TemporaryDirectory() as tmp:
        db = create_demo_database(Path(tmp) / "shop.db")
        a = Assistant(db=f"sqlite:///{db}", cache_threshold=None)
        a.train_from_database()
        for case in cases:
            cat = case["category"]
            sql = ""
            try:
                ans = a.ask(case["question"])
                ab = not ans.sql
                sql = ans.sql
                if "sql" in case:
                    gold = _multiset(a.db.execute(case["sql"], max_rows=10**6).rows)
                    ok = ans.error == "" and _multiset(ans.rows) == gold
                    right += ok
                    if not ok and show:
                        print(
                            f"  [demo] Q: {case['question']}\n    gold: {case['sql']}\n    got:  {sql}"
                        )
            except AvlError:
                ab = False
            if show and ("sql" not in case) != ab:
                print(
                    f"  [demo {cat}] {'abstained' if ab else 'answered'}: {case['question']} -> {sql}"
                )
            got, n = out.get(cat, (0, 0))
            out[cat] = (got + ab, n + 1)
        a.close()
    return out, right


def main(argv: list[str] | None = None) -> int:
    """Print per-half figures (and the abstention shares)."""
    from tests.conftest import shared_data_dir

    ap = argparse.ArgumentParser(description="text-to-SQL execution accuracy")
    ap.add_argument("--half", choices=("dev", "val", "both", "none"), default="both")
    ap.add_argument("--db", action="append", help="only these database ids")
    ap.add_argument("--show", type=int, default=0, help="print this many misses per database")
    ap.add_argument("--setting", default="schema", help="which misses --show prints")
    ap.add_argument("--shape", default="", help="only show misses of this gold shape")
    ap.add_argument(
        "--regressed", action="store_true", help="only show misses answered right schema-only"
    )
    ap.add_argument("--no-loo", action="store_true", help="skip leave-one-out")
    ap.add_argument("--no-folds", action="store_true", help="skip 5-fold")
    ap.add_argument("--abstention", action="store_true", help="ask the written demo questions")
    ap.add_argument("--per-db", action="store_true", help="print each database's figures")
    ap.add_argument(
        "--context-tokens",
        type=int,
        default=None,
        help="retrieval budget (default: the Assistant's)",
    )
    args = ap.parse_args(argv)
    data = shared_data_dir() / "text2sql"
    qs = [json.loads(line) for line in (data / "questions.jsonl").read_text().splitlines() if line]
    by_db: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for q in qs:
        by_db[q["db_id"]].append(q)
    halves = {"dev": DEVELOPMENT, "val": VALIDATION}
    chosen = {"dev": ["dev"], "val": ["val"], "both": ["dev", "val"], "none": []}[args.half]
    settings = ["schema"] + ([] if args.no_loo else ["loo"]) + ([] if args.no_folds else ["5fold"])
    t0 = time.perf_counter()
    total = Tally()
    for half in chosen:
        tally = Tally()
        for db_id in halves[half]:
            if args.db and db_id not in args.db:
                continue
            t, misses = evaluate_db(
                db_id,
                by_db[db_id],
                data,
                folds=not args.no_folds,
                loo=not args.no_loo,
                context_tokens=args.context_tokens,
            )
            tally.merge(t)
            if args.per_db:
                n = t.n["all"]
                print(
                    f"{db_id:30} {n:4d} "
                    + " ".join(f"{s} {_pct(t.ok[(s, 'all')], n)}" for s in settings)
                )
            schema_missed = {m[1] for m in misses if m[0] == "schema"}
            shown = [
                m
                for m in misses
                if m[0] == args.setting
                and (not args.shape or shape_of(m[2]) == args.shape)
                and (not args.regressed or m[1] not in schema_missed)
            ][: args.show]
            for _, q, gold, got in shown:
                print(f"  [{db_id}] Q: {q}\n    gold: {gold}\n    got:  {got}")
        report("development half" if half == "dev" else "validation half", tally, settings)
        total.merge(tally)
    if len(chosen) == 2:
        report("both halves", total, settings)
    if args.abstention:
        fixture = ROOT / "tests" / "fixtures" / "offline" / "demo_questions.json"
        shares, right = abstention(fixture, args.show)
        print("\n== abstention on the demo shop database (written questions)")
        for cat, (got, n) in sorted(shares.items()):
            print(f"{cat:14} {got:3d} / {n:3d}  {_pct(got, n)}")
        n_ans = shares.get("answerable", (0, 0))[1]
        print(f"answerable questions answered right: {right} / {n_ans}  {_pct(right, n_ans)}")
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
