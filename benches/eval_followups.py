"""Follow-up questions on the shared text-to-SQL set: does the offline model refine
the previous turn into the gold query?

Follow-ups are made from the gold SQL of each question, by rule (no question text is
used): a query with a top-level condition, an ``ORDER BY`` or a ``COUNT(*)`` gives a
*previous turn* without it, and a follow-up that asks for it back:

- ``filter``: ``col = 'text'`` removed; follow-up ``and only <text>?``;
- ``join``: ``A JOIN B ... WHERE B.col = 'text'`` asked as the query on ``A`` alone
  (nothing else reads ``B``); follow-up ``and only <text>?`` (``B`` must be joined);
- ``replace``: the text replaced by another stored value of the column in the
  previous turn; follow-up ``what about <text>?``;
- ``compare``: ``col > N`` (``<``, ``>=``, ``<=``) removed; follow-up ``only those
  with <column words> above N`` (``below``, ``at least``, ``at most``);
- ``order``: ``ORDER BY`` (and ``LIMIT n``) removed; follow-ups ``sort them by <key
  words> [in descending order]`` and then ``only the top n``;
- ``count``: ``SELECT COUNT(*) ...`` asked as ``SELECT * ...``; follow-up ``how many
  are there?``.

The previous turn is put in the session as answered; the follow-up is asked with
``Assistant.ask(..., session=...)`` (schema-only training); it is correct when its rows
equal the gold rows (as a multiset; in order when the gold query orders). Every
follow-up rule was written from the development half; the validation half is only
measured (the halves of ``benches/eval_text2sql.py``).

Run::

    .venv/bin/python benches/eval_followups.py --half dev --show 10
    .venv/bin/python benches/eval_followups.py --half val
"""

from __future__ import annotations

import argparse
import collections
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlglot  # noqa: E402
from sqlglot import expressions as exp  # noqa: E402

from avl.assistant import Assistant  # noqa: E402
from avl.errors import AvlError  # noqa: E402
from avl.schema import Turn  # noqa: E402

sys.path.insert(0, str(ROOT / "benches"))
from eval_text2sql import DEVELOPMENT, VALIDATION  # noqa: E402

DATA = Path("/work/shared/data/text2sql")
_CMP = {exp.GT: "above", exp.LT: "below", exp.GTE: "at least", exp.LTE: "at most"}
_AGG = {
    exp.Count: "count",
    exp.Sum: "total",
    exp.Avg: "average",
    exp.Max: "maximum",
    exp.Min: "minimum",
}


def words(name: str) -> str:
    import re

    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)  # camelCase
    return " ".join(spaced.replace("_", " ").split()).lower()


def key_words(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Column):
        return words(node.name)
    for kind, word in _AGG.items():
        if isinstance(node, kind):
            col = next(node.find_all(exp.Column), None)
            return word if col is None else f"{word} {words(col.name)}"
    return None


def conjuncts(node: exp.Expr) -> list[exp.Expr]:
    if isinstance(node, exp.And):
        return [*conjuncts(node.this), *conjuncts(node.expression)]
    return [node]


def without(tree: exp.Select, drop: exp.Expr) -> exp.Select:
    out = tree.copy()
    where = out.args.get("where")
    keep = [c for c in conjuncts(where.this) if c != drop]
    out.set("where", exp.Where(this=exp.and_(*keep)) if keep else None)
    return out


def cases(sql: str, conn: sqlite3.Connection) -> list[tuple[str, str, list[str], bool]]:
    """``(kind, previous SQL, follow-ups, ordered)`` made from one gold query."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return []
    if not isinstance(tree, exp.Select) or any(True for _ in tree.find_all(exp.Subquery)):
        return []
    if tree.args.get("with") or tree.args.get("with_"):
        return []
    out: list[tuple[str, str, list[str], bool]] = []
    ordered = tree.args.get("order") is not None
    where = tree.args.get("where")
    for c in conjuncts(where.this) if where is not None else []:
        col = c.this if isinstance(c, exp.Binary) else None
        lit = c.expression if isinstance(c, exp.Binary) else None
        if not isinstance(col, exp.Column) or not isinstance(lit, exp.Literal):
            continue
        if isinstance(c, exp.EQ) and lit.is_string:
            prev = without(tree, c)
            out.append(("filter", prev.sql(dialect="sqlite"), [f"and only {lit.this}?"], ordered))
            other = _other_value(conn, tree, col, lit.this)
            if other is not None:
                swapped = tree.copy()
                for node in swapped.find_all(exp.Literal):
                    if node.is_string and node.this == lit.this:
                        node.replace(exp.Literal.string(other))
                        break
                out.append(
                    ("replace", swapped.sql(dialect="sqlite"), [f"what about {lit.this}?"], ordered)
                )
        elif type(c) in _CMP and not lit.is_string:
            prev = without(tree, c)
            text = f"only those with {words(col.name)} {_CMP[type(c)]} {lit.this}"
            out.append(("compare", prev.sql(dialect="sqlite"), [text], ordered))
    joined = _drop_join(tree)
    if joined is not None:
        prev, value = joined
        out.append(("join", prev.sql(dialect="sqlite"), [f"and only {value}?"], ordered))
    order = tree.args.get("order")
    if order is not None and len(order.expressions) == 1:
        key = order.expressions[0]
        said = key_words(key.this)
        if said is not None:
            prev = tree.copy()
            prev.set("order", None)
            limit = prev.args.get("limit")
            prev.set("limit", None)
            asks = [
                f"sort them by {said}" + (" in descending order" if key.args.get("desc") else "")
            ]
            if limit is not None:
                asks.append(f"only the top {limit.expression.sql()}")
            out.append(("order", prev.sql(dialect="sqlite"), asks, True))
    sel = tree.expressions
    if (
        len(sel) == 1
        and isinstance(sel[0], exp.Count)
        and isinstance(sel[0].this, exp.Star)
        and not tree.args.get("group")
    ):
        prev = tree.copy()
        prev.set("expressions", [exp.Star()])
        out.append(("count", prev.sql(dialect="sqlite"), ["how many are there?"], False))
    return out


def _drop_join(tree: exp.Select) -> tuple[exp.Select, str] | None:
    """For ``A JOIN B ON ... WHERE B.col = 'text' [AND ...]`` where nothing else reads
    B: the query on A alone without that condition, and the text."""
    joins = tree.args.get("joins") or []
    src = tree.args.get("from_") or tree.args.get("from")
    where = tree.args.get("where")
    if len(joins) != 1 or src is None or where is None or not isinstance(src.this, exp.Table):
        return None
    b = joins[0].this
    if not isinstance(b, exp.Table):
        return None
    b_name = b.alias_or_name
    tests = [
        c
        for c in conjuncts(where.this)
        if isinstance(c, exp.EQ)
        and isinstance(c.this, exp.Column)
        and c.this.table == b_name
        and isinstance(c.expression, exp.Literal)
        and c.expression.is_string
    ]
    if len(tests) != 1:
        return None
    rest = without(tree, tests[0])
    rest.set("joins", None)
    if any(col.table == b_name for col in rest.find_all(exp.Column)):
        return None
    return rest, tests[0].expression.this


def _other_value(
    conn: sqlite3.Connection, tree: exp.Select, col: exp.Column, value: str
) -> str | None:
    tables = {t.alias_or_name: t.name for t in tree.find_all(exp.Table)}
    table = (
        tables.get(col.table)
        if col.table
        else (next(iter(tables.values())) if len(tables) == 1 else None)
    )
    if table is None:
        return None
    try:
        rows = conn.execute(
            f'SELECT DISTINCT "{col.name}" FROM "{table}" WHERE "{col.name}" <> ? '
            f"AND typeof(\"{col.name}\") = 'text' ORDER BY 1 LIMIT 1",
            (value,),
        ).fetchall()
    except sqlite3.Error:
        return None
    return str(rows[0][0]) if rows else None


def run(db_ids: tuple[str, ...], show: int) -> dict[str, list[int]]:
    questions = [json.loads(line) for line in (DATA / "questions.jsonl").open()]
    tally: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    misses: list[str] = []
    for db_id in db_ids:
        path = DATA / "databases" / db_id / f"{db_id}.sqlite"
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        a = Assistant(db=f"sqlite:///{path}", cache_threshold=None, summaries="off")
        a.train_from_database()
        for q in (q for q in questions if q["db_id"] == db_id):
            for kind, prev, asks, ordered in cases(q["sql"], conn):
                try:
                    gold = conn.execute(q["sql"]).fetchall()
                    conn.execute(prev).fetchall()
                except sqlite3.Error:
                    continue
                chat = a.session(user="eval")
                a._turns.add(  # the previous turn, as answered
                    (a.name, chat.id, "eval", ""), Turn(question="(previous)", sql=prev)
                )
                got: Any = None
                try:
                    for text in asks:
                        got = chat.ask(text)
                except AvlError:
                    got = None
                rows = list(got.rows) if got is not None and not got.error else None
                ok = rows is not None and (
                    rows == [tuple(r) for r in gold]
                    if ordered
                    else collections.Counter(rows) == collections.Counter(tuple(r) for r in gold)
                )
                tally[kind][0] += int(ok)
                tally[kind][1] += 1
                if not ok and len(misses) < show:
                    misses.append(
                        f"[{kind}] {db_id}\n  prev: {prev}\n  asks: {asks}\n"
                        f"  gold: {q['sql']}\n  got:  {got.sql if got is not None else '-'}"
                    )
        conn.close()
        a.close()
    for m in misses:
        print(m)
    return tally


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--half", choices=("dev", "val", "both"), default="both")
    ap.add_argument("--show", type=int, default=0, help="print this many misses")
    args = ap.parse_args(argv)
    halves = {"dev": DEVELOPMENT, "val": VALIDATION}
    chosen = {"dev": ["dev"], "val": ["val"], "both": ["dev", "val"]}[args.half]
    for half in chosen:
        tally = run(halves[half], args.show)
        total = [sum(v[0] for v in tally.values()), sum(v[1] for v in tally.values())]
        name = "development half" if half == "dev" else "validation half"
        print(
            f"{name}: {total[0]}/{total[1]} follow-ups correct ({100 * total[0] / max(1, total[1]):.1f} %)"
        )
        for kind in ("filter", "replace", "join", "compare", "order", "count"):
            ok, n = tally.get(kind, [0, 0])
            if n:
                print(f"  {kind:8} {ok:4}/{n:<4} {100 * ok / n:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
