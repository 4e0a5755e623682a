"""Execution accuracy of the offline generator on the shared text-to-SQL set.

For each of the 20 SQLite databases in ``shared/data/text2sql`` it runs every
question through :class:`avl.assistant.Assistant` with the offline model, in two
settings:

- schema only: ``train_from_database()`` and nothing else;
- leave-one-out: also every *other* question of the same database trained as a
  question->SQL pair (the way users train).

A question counts as correct when the answer's rows equal the gold SQL's rows as a
multiset (column order matters). It also prints schema-retrieval recall (share of
questions whose gold tables are all in the retrieved context, at the default
budget) and the schema part of the prompt in tokens (``avl.llm.count_tokens``)
against pasting the whole schema.

Run::

    .venv/bin/python benches/eval_text2sql.py
    .venv/bin/python benches/eval_text2sql.py --db concert_singer --show 5
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avl.assistant import Assistant, evaluate_questions  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Print per-database and overall figures."""
    from tests.conftest import shared_data_dir

    ap = argparse.ArgumentParser(description="text-to-SQL execution accuracy")
    ap.add_argument("--db", action="append", help="only these database ids")
    ap.add_argument("--show", type=int, default=0, help="print this many misses per database")
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
    t0 = time.perf_counter()
    tot: collections.Counter[str] = collections.Counter()
    ptok = ftok = 0.0
    print(
        f"{'database':30} {'n':>5} {'schema-only':>12} {'leave-one-out':>14} "
        f"{'recall':>7} {'prompt tok':>10} {'whole schema':>12}"
    )
    for db_id in sorted(by_db):
        if args.db and db_id not in args.db:
            continue
        path = data / "databases" / db_id / f"{db_id}.sqlite"
        kw = {} if args.context_tokens is None else {"context_tokens": args.context_tokens}
        a = Assistant(db=f"sqlite:///{path}", cache_threshold=None, max_rows=10**6, **kw)
        a.train_from_database()
        r = evaluate_questions(a, [(q["question"], q["sql"]) for q in by_db[db_id]])
        a.close()
        n = r.n
        loo = r.leave_one_out or 0
        print(
            f"{db_id:30} {n:5d} {r.schema_only / n:12.1%} {loo / n:14.1%} "
            f"{r.recall / n:7.3f} {r.prompt_tokens:10.0f} {r.full_schema_tokens:12.0f}"
        )
        for q, gold, got in r.misses[: args.show]:
            print(f"    Q: {q}\n    gold: {gold}\n    got:  {got}")
        tot["n"] += n
        tot["schema"] += r.schema_only
        tot["loo"] += loo
        tot["recall"] += r.recall
        ptok += r.prompt_tokens * n
        ftok += r.full_schema_tokens * n
    n = tot["n"]
    print(
        f"{'OVERALL':30} {n:5d} {tot['schema'] / n:12.1%} {tot['loo'] / n:14.1%} "
        f"{tot['recall'] / n:7.3f} {ptok / n:10.0f} {ftok / n:12.0f}"
    )
    print(f"({tot['schema']} and {tot['loo']} of {n} correct; {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
