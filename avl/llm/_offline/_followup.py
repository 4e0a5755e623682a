"""Follow-up questions: refine the previous turn's SQL (pure: no I/O).

A follow-up ("and only in France?", "only those in 2023", "sort them by total",
"what about Berlin?", "only the top 3", "how many are there?") names no new subject:
it narrows, reorders, cuts or counts what the previous answer showed. It is read
against the previous query's own tables only, with the same linking and intent
steps as any question, and what it asks is spliced into the previous SQL's tree:

- a condition on a column (a stored value, a year, a comparison, a negation) is
  added to the ``WHERE`` clause; it *replaces* a condition on the same column that
  can no longer hold with it (two equalities, or two bounds on the same side), and
  with "what about" / "how about" / "instead" it replaces the previous question's
  equalities on the same table's text columns ("what about Berlin?" after "in Paris");
- "sort / order / rank (them) by X [descending]" replaces the ``ORDER BY`` (X is a
  column of the result, an aggregate of it, or a column of its tables);
- "top / first / only N" sets the ``LIMIT`` (ordered by the result's one aggregate,
  highest first, when the previous query had no order);
- "how many (are there / of them)" counts the previous result's rows.

A question that names a table the previous query did not read, or that has no
follow-up shape (no opening like "and", "only", "what about", no "them"/"those", and
names a table), is not a follow-up: it is answered on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import sqlglot
from sqlglot import expressions as exp

from avl.llm._offline._intent import Col, Cond
from avl.llm._offline._lexicon import ASC_PHRASES, DESC_PHRASES
from avl.llm._offline._linking import FuzzyKeys, link_question
from avl.llm._offline._question import Question, parse_question
from avl.llm._offline._render import _compare, _cond, _literal, null_ordering, to_identifier
from avl.llm._offline._schema import SchemaIndex
from avl.llm._offline._steps import read_intent
from avl.schema import ForeignKeySpec, TableSpec, Turn

__all__ = ["Refined", "refine"]

ValueIndex = Mapping[str, tuple[tuple[str, str, str], ...]]

#: Openings of a follow-up ("and only in France?", "what about Berlin?").
_OPENERS = frozenset(
    {
        "and",
        "but",
        "only",
        "just",
        "now",
        "then",
        "also",
        "same",
        "excluding",
        "exclude",
        "except",
        "without",
        "not",
        "sort",
        "order",
        "rank",
        "arrange",
        "limit",
        "filter",
        "restrict",
        "keep",
        "drop",
        "remove",
        "instead",
        "those",
        "these",
        "them",
    }
)
_REPLACE_PHRASES = (("what", "about"), ("how", "about"), ("instead",), ("rather",))
#: Words that point back at the previous result.
_ANAPHORA = frozenset(
    {"them", "those", "these", "they", "ones", "it", "that", "results", "result", "same", "list"}
)
_SORT_VERBS = frozenset(
    {"sort", "sorted", "sorting", "order", "ordered", "ordering", "rank", "ranked", "arrange"}
)
_TOP_WORDS = frozenset({"top", "first", "only", "just", "best", "highest", "largest", "biggest"})
_DESC_WORDS = frozenset(
    {"descending", "desc", "decreasing", "highest", "largest", "biggest", "most", "top", "reverse"}
)
_ASC_WORDS = frozenset({"ascending", "asc", "increasing", "lowest", "smallest", "least"})
_FILLER = frozenset(
    {
        "the",
        "a",
        "an",
        "them",
        "those",
        "these",
        "it",
        "results",
        "result",
        "rows",
        "list",
        "by",
        "in",
        "on",
        "of",
        "their",
        "its",
        "order",
        "please",
        "instead",
        "then",
        "now",
        "and",
    }
)
_AGG_NAMES = {
    "count": exp.Count,
    "number": exp.Count,
    "sum": exp.Sum,
    "total": exp.Sum,
    "average": exp.Avg,
    "avg": exp.Avg,
    "mean": exp.Avg,
    "maximum": exp.Max,
    "max": exp.Max,
    "minimum": exp.Min,
    "min": exp.Min,
}


@attrs.frozen(kw_only=True)
class Refined:
    """A follow-up read against the previous turn.

    Attributes:
        sql: the previous SQL, refined.
        changes: what was changed, in words.
    """

    sql: str
    changes: tuple[str, ...]


def refine(
    question: str,
    turns: Sequence[Turn],
    *,
    tables: Sequence[TableSpec],
    foreign_keys: Sequence[ForeignKeySpec],
    value_index: ValueIndex,
    values: Mapping[tuple[str, str], Sequence[str]],
    dialect: str,
    fuzzy: FuzzyKeys | None = None,
    schema_of: Callable[[Sequence[TableSpec], Sequence[ForeignKeySpec]], SchemaIndex] = SchemaIndex,
) -> Refined | None:
    """Refine the last turn's SQL with ``question``, or ``None`` when it is no
    follow-up (or nothing of it could be placed).

    Args:
        question: the new question.
        turns: the session's earlier turns, oldest first.
        tables: the tables the caller may read.
        foreign_keys: foreign keys among them.
        value_index: stored values by first lower-cased word.
        values: stored values per ``(table, column)``.
        dialect: the SQL dialect.
        fuzzy: the typo lookup of ``value_index``.
        schema_of: builds (or finds cached) the schema index of some tables.

    Returns:
        The refined SQL and what changed, or ``None``.
    """
    last = next((t for t in reversed(turns) if t.sql.strip()), None)
    if last is None:
        return None
    try:
        tree = sqlglot.parse_one(last.sql, read=dialect)
    except (sqlglot.errors.SqlglotError, ValueError):
        return None
    if not isinstance(tree, exp.Select):
        return None
    aliases = _table_aliases(tree)
    known = {t.name.lower(): t for t in tables}
    used = [known[name] for name in aliases if name in known]
    if not used or len(used) != len(aliases):
        return None  # a table the caller cannot read (or a CTE, a subquery): not ours
    q = parse_question(question)
    if not q.tokens:
        return None
    full = schema_of(tables, foreign_keys)
    full_links = link_question(q, full, value_index, fuzzy)
    names = {t.name.lower() for t in used}
    if not _follow_up_shaped(q, any(lk.table.lower() in names for lk in full_links.tables)):
        return None
    out = tree.copy()
    changes: list[str] = []
    schema, links, st = _read(q, used, foreign_keys, value_index, values, schema_of)
    # Another table, named or holding a stored value the question names: a follow-up
    # only when the previous query reaches it by a declared foreign key of its own
    # ("and only in France?" after a list of orders: each order has one customer), and
    # then it is joined; else it is a new question.
    mine = {i for lk in links.values if lk.kind == "value" for i in lk.span}
    wanted: list[str] = []
    for lk in [*full_links.tables, *full_links.values]:
        if lk.table.lower() in names or lk.kind not in ("table", "value"):
            continue
        if lk.kind == "value" and mine & set(lk.span):
            continue
        if lk.table not in wanted:
            wanted.append(lk.table)
    joined: list[str] = []
    # table -> (its column, the previous query's column) for a table that refers to
    # the previous query's rows (many per row): tested through IN (SELECT ...), so
    # no row is repeated
    semi: dict[str, tuple[str, str]] = {}
    for name in wanted:
        target = known.get(name.lower())
        if target is None:
            return None
        fk = next(
            (
                fk
                for fk in foreign_keys
                if fk.table.lower() in names
                and fk.ref_table.lower() == name.lower()
                and len(fk.columns) == len(fk.ref_columns)
            ),
            None,
        )
        if fk is not None:
            aliases = _join(out, aliases, fk, target.name, dialect)
            names.add(target.name.lower())
            used.append(target)
            joined.append(target.name)
            continue
        back = next(
            (
                fk
                for fk in foreign_keys
                if fk.table.lower() == name.lower()
                and fk.ref_table.lower() in names
                and len(fk.columns) == 1
                and len(fk.ref_columns) == 1
            ),
            None,
        )
        if back is None:
            return None
        ref = aliases[back.ref_table.lower()]
        semi[target.name] = (back.columns[0], f"{ref}\x00{back.ref_columns[0]}")
        used.append(target)
    own = {t.name for t in used}
    if joined or semi:
        schema, links, st = _read(q, used, foreign_keys, value_index, values, schema_of)
        tested = {c.col.table for c in st.intent.where}
        if not (set(joined) | set(semi)) <= tested:
            return None  # a table the question tests nothing of: not a refinement
        changes.extend(f"joined {t}" for t in joined)
    for name, (inner_col, outer) in semi.items():
        ref_alias, ref_col = outer.split("\x00")
        inner = [c for c in st.intent.where if c.col.table == name]
        sub_scope = _Scope({name.lower(): name}, dialect, multi=False)
        parts = [_condition(c, schema, sub_scope) for c in inner]
        sub = exp.select(exp.Column(this=to_identifier(inner_col, dialect))).from_(
            exp.Table(this=to_identifier(name, dialect))
        )
        sub.set("where", exp.Where(this=exp.and_(*parts) if len(parts) > 1 else parts[0]))
        test = exp.In(
            this=exp.Column(
                this=to_identifier(ref_col, dialect), table=exp.to_identifier(ref_alias)
            ),
            query=exp.Subquery(this=sub),
        )
        where = out.args.get("where")
        out.set("where", exp.Where(this=exp.and_(where.this, test) if where else test))
        changes.append(
            f"with {name}: " + ", ".join(f"{c.col.column} {c.op} {c.value!r}" for c in inner)
        )
    scope = _Scope(aliases, dialect, multi=len(aliases) > 1)
    replace = any(q.find(list(p)) >= 0 for p in _REPLACE_PHRASES)
    conds = [c for c in st.intent.where if c.col.table in own and c.col.table not in semi]
    if conds:
        _add_conditions(out, conds, schema, scope, replace=replace, changes=changes)
    order = _sort(q, out, schema, links, scope, dialect)
    if order is not None:
        out.set("order", exp.Order(expressions=[order[0]]))
        changes.append(f"ordered by {order[1]}")
    n = _limit(q)
    if n is not None:
        if out.args.get("order") is None:
            ranked = _only_aggregate(out)
            if ranked is not None:
                nulls = null_ordering(dialect)
                out.set(
                    "order",
                    exp.Order(
                        expressions=[
                            exp.Ordered(
                                this=ranked.copy(),
                                desc=True,
                                nulls_first=nulls == "nulls_are_large",
                            )
                        ]
                    ),
                )
        out.set("limit", exp.Limit(expression=exp.Literal.number(n)))
        changes.append(f"at most {n} rows")
    if _counts(q) and not any(
        isinstance(e.this if isinstance(e, exp.Alias) else e, exp.Count) for e in out.expressions
    ):
        counted = exp.select(exp.Count(this=exp.Star())).from_(
            exp.Subquery(this=out, alias=exp.TableAlias(this=exp.to_identifier("previous")))
        )
        changes.append("counted")
        return Refined(sql=counted.sql(dialect=dialect), changes=tuple(changes))
    if not changes:
        return None
    return Refined(sql=out.sql(dialect=dialect), changes=tuple(changes))


def _read(
    q: Question,
    used: Sequence[TableSpec],
    foreign_keys: Sequence[ForeignKeySpec],
    value_index: ValueIndex,
    values: Mapping[tuple[str, str], Sequence[str]],
    schema_of: Callable[[Sequence[TableSpec], Sequence[ForeignKeySpec]], SchemaIndex],
) -> tuple[SchemaIndex, Any, Any]:
    """The question linked and read against ``used`` only."""
    own = {t.name for t in used}
    schema = schema_of(
        list(used), [fk for fk in foreign_keys if fk.table in own and fk.ref_table in own]
    )
    scoped_values = {k: v for k, v in values.items() if k[0] in own}
    links = link_question(q, schema, _OwnValues(value_index, own), None)
    return schema, links, read_intent(q, links, schema, scoped_values)


def _join(
    tree: exp.Select, aliases: dict[str, str], fk: ForeignKeySpec, target: str, dialect: str
) -> dict[str, str]:
    """Join ``target`` to ``tree`` along ``fk`` (declared on one of its tables);
    the columns the query left unqualified are qualified first."""
    if len(aliases) == 1:
        (only,) = aliases.values()
        outputs = {e.alias.lower() for e in tree.expressions if e.alias}
        for col in list(tree.find_all(exp.Column)):
            if col.table or col.name.lower() in outputs:
                continue
            if col.find_ancestor(exp.Subquery) is not None:
                continue
            col.set("table", exp.to_identifier(only))
    taken = {a.lower() for a in aliases.values()}
    alias = target if target.lower() not in taken else f"{target}_2"
    src = aliases[fk.table.lower()]
    on_parts: list[exp.Expr] = [
        exp.EQ(
            this=exp.Column(this=to_identifier(a, dialect), table=exp.to_identifier(src)),
            expression=exp.Column(this=to_identifier(b, dialect), table=exp.to_identifier(alias)),
        )
        for a, b in zip(fk.columns, fk.ref_columns, strict=True)
    ]
    table = exp.Table(this=to_identifier(target, dialect))
    if alias != target:
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    on = exp.and_(*on_parts) if len(on_parts) > 1 else on_parts[0]
    tree.append("joins", exp.Join(this=table, on=on))
    return {**aliases, target.lower(): alias}


class _OwnValues(Mapping[str, tuple[tuple[str, str, str], ...]]):
    """The stored values of some tables only, filtered as they are looked up (the
    index may be large; a follow-up looks up a few words)."""

    def __init__(self, index: ValueIndex, tables: set[str]) -> None:
        self.index = index
        self.tables = tables

    def __getitem__(self, key: str) -> tuple[tuple[str, str, str], ...]:
        got = tuple(v for v in self.index[key] if v[0] in self.tables)
        if not got:
            raise KeyError(key)
        return got

    def __iter__(self) -> Iterator[str]:
        return (k for k, vs in self.index.items() if any(v[0] in self.tables for v in vs))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _follow_up_shaped(q: Question, names_table: bool) -> bool:
    lows = q.lows()
    words = [w for w in lows if w.isalpha()]
    if not words:
        return False
    if words[0] in _OPENERS or any(q.find(list(p)) == 0 for p in _REPLACE_PHRASES):
        return True
    if any(q.find(list(p)) >= 0 for p in _REPLACE_PHRASES):
        return True
    if any(w in _ANAPHORA for w in words) and not names_table:
        return True
    # a short question that names no table ("in 2023?", "sorted by name")
    return not names_table and len(words) <= 5


def _table_aliases(tree: exp.Select) -> dict[str, str]:
    """Lower-case table name -> the name its columns are qualified with, for the
    tables of the outer query (``{}`` when it reads a subquery or a CTE)."""
    out: dict[str, str] = {}
    src = tree.args.get("from_") or tree.args.get("from")
    nodes = [src.this] if src is not None else []
    nodes += [j.this for j in tree.args.get("joins") or []]
    for node in nodes:
        if not isinstance(node, exp.Table) or not node.name:
            return {}
        out[node.name.lower()] = node.alias_or_name
    if tree.args.get("with") or tree.args.get("with_"):
        return {}
    return out


class _Scope:
    """Columns qualified as the previous query qualifies its tables."""

    def __init__(self, aliases: Mapping[str, str], dialect: str, *, multi: bool) -> None:
        self.aliases = aliases
        self.dialect = dialect
        self.multi = multi

    def col(self, c: Col) -> exp.Expr:
        if c.column == "*":
            return exp.Star()
        ident = to_identifier(c.column, self.dialect)
        alias = self.aliases.get(c.table.lower())
        if alias and (self.multi or alias.lower() != c.table.lower()):
            return exp.Column(this=ident, table=exp.to_identifier(alias))
        return exp.Column(this=ident)


def _conjuncts(where: exp.Expr | None) -> list[exp.Expr]:
    if where is None:
        return []
    node = where.this if isinstance(where, (exp.Where, exp.Having)) else where
    if isinstance(node, exp.And):
        return [*_conjuncts(node.this), *_conjuncts(node.expression)]
    return [node]


def _columns_of(node: exp.Expr, aliases: Mapping[str, str]) -> set[tuple[str, str]]:
    """``(table, column)`` (lower-case) of the columns ``node`` tests; the table is
    ``""`` when unqualified in a query over several tables."""
    back = {v.lower(): k for k, v in aliases.items()}
    only = next(iter(aliases)) if len(aliases) == 1 else ""
    out = set()
    for c in node.find_all(exp.Column):
        table = back.get(c.table.lower(), c.table.lower()) if c.table else only
        out.add((table, c.name.lower()))
    return out


def _side(node: exp.Expr) -> str:
    if isinstance(node, (exp.GT, exp.GTE)):
        return ">"
    if isinstance(node, (exp.LT, exp.LTE)):
        return "<"
    if isinstance(node, exp.EQ):
        return "="
    if isinstance(node, exp.Paren) and isinstance(node.this, exp.Or):
        return "="
    if isinstance(node, exp.In):
        return "="
    return ""


def _add_conditions(
    tree: exp.Select,
    conds: list[Cond],
    schema: SchemaIndex,
    scope: _Scope,
    *,
    replace: bool,
    changes: list[str],
) -> None:
    old = _conjuncts(tree.args.get("where"))
    keep = list(old)
    new_nodes: list[exp.Expr] = []
    having = _conjuncts(tree.args.get("having"))
    for c in conds:
        key = (c.col.table.lower(), c.col.column.lower())
        same_exists = any(
            _columns_of(prev, scope.aliases) in ({key}, {("", key[1])}) for prev in keep
        )
        agg = _aggregate_over(tree, key, scope.aliases) if tree.args.get("group") else None
        if agg is not None and c.op in (">", "<", ">=", "<=", "!=", "BETWEEN"):
            # "only those with a total above 100" over groups: the groups' aggregate
            node = _compare_to(c, agg.copy())
            having = [
                h for h in having if _side(h) != _side(node) or agg not in h.find_all(type(agg))
            ]
            having.append(node)
            changes.append(f"{agg.sql(dialect=scope.dialect)} {c.op} {c.value!r}")
            continue
        node = _condition(c, schema, scope)
        side = {"=": "=", ">": ">", ">=": ">", "<": "<", "<=": "<", "BETWEEN": "<>"}.get(c.op, "")
        info = schema.column(c.col.table, c.col.column)
        text = info is not None and not info.numeric and not info.temporal
        for prev in list(keep):
            cols = _columns_of(prev, scope.aliases)
            same_col = cols == {key} or cols == {("", key[1])}
            if (
                same_col and side and (_side(prev) == side or side == "<>" or _side(prev) == "")
            ) or (
                replace
                and not same_exists
                and c.op == "="
                and text
                and _side(prev) == "="
                and len(cols) == 1
                and next(iter(cols))[0] in (key[0], "")
                and _is_text_literal_test(prev)
            ):
                keep.remove(prev)
        new_nodes.append(node)
        changes.append(f"{c.col.column} {c.op} {c.value!r}")
    if having:
        h = exp.and_(*[x.copy() for x in having]) if len(having) > 1 else having[0].copy()
        tree.set("having", exp.Having(this=h))
    parts = keep + new_nodes
    if not parts:
        tree.set("where", None)
        return
    joined = exp.and_(*[p.copy() for p in parts]) if len(parts) > 1 else parts[0].copy()
    tree.set("where", exp.Where(this=joined))


def _aggregate_over(
    tree: exp.Select, key: tuple[str, str], aliases: Mapping[str, str]
) -> exp.AggFunc | None:
    """The aggregate of the result over column ``key`` (``SUM(total)``), if one."""
    for e in tree.expressions:
        inner = e.this if isinstance(e, exp.Alias) else e
        if isinstance(inner, exp.AggFunc) and not isinstance(inner, exp.Count):
            cols = _columns_of(inner, aliases)
            if cols == {key} or cols == {("", key[1])}:
                return inner
    return None


def _compare_to(c: Cond, left: exp.Expr) -> exp.Expr:
    if c.op == "BETWEEN" and isinstance(c.value, tuple):
        return exp.Between(this=left, low=_literal(c.value[0]), high=_literal(c.value[1]))
    return _compare(c.op if c.op != "BETWEEN" else "=", left, _literal(c.value))


def _year_of(value: object) -> int | None:
    try:
        n = float(str(value))
    except ValueError:
        return None
    if n.is_integer() and 1000 <= n <= 2100:
        return int(n)
    return None


def _condition(c: Cond, schema: SchemaIndex, scope: _Scope) -> exp.Expr:
    """The condition as SQL; a year compared with a date (or date text) column
    compares the column's year."""
    info = schema.column(c.col.table, c.col.column)
    years = [c.value] if not isinstance(c.value, tuple) else list(c.value)
    typ = info.spec.type.lower() if info is not None else ""
    dated = (
        info is not None
        and info.temporal
        and "int" not in typ
        and "year" not in info.name.lower()
        and years
        and all(_year_of(v) is not None for v in years)
        and c.op in ("=", "!=", ">", "<", ">=", "<=", "BETWEEN")
    )
    if not dated:
        return _cond(schema, scope, c)  # type: ignore[arg-type]  # a scope with col() and dialect
    year = _year_expr(scope.col(c.col), typ, scope.dialect)
    if isinstance(c.value, tuple):
        value: object = (_year_of(c.value[0]), _year_of(c.value[1]))
    else:
        value = _year_of(c.value)
    return _compare_to(attrs.evolve(c, value=value), year)


def _year_expr(col: exp.Expr, typ: str, dialect: str) -> exp.Expr:
    text = not any(w in typ for w in ("date", "time"))
    if dialect == "sqlite":
        fn: exp.Expr = exp.Anonymous(this="strftime", expressions=[exp.Literal.string("%Y"), col])
        return exp.Cast(this=fn, to=exp.DataType.build("INTEGER"))
    if dialect in ("mysql", "mariadb") or not text:
        return exp.Year(this=col)
    first4 = exp.Substring(this=col, start=exp.Literal.number(1), length=exp.Literal.number(4))
    return exp.Cast(this=first4, to=exp.DataType.build("INTEGER"))


def _is_text_literal_test(node: exp.Expr) -> bool:
    lits = list(node.find_all(exp.Literal))
    return bool(lits) and all(lit.is_string for lit in lits)


def _sort(
    q: Question,
    tree: exp.Select,
    schema: SchemaIndex,
    links: object,
    scope: _Scope,
    dialect: str,
) -> tuple[exp.Ordered, str] | None:
    """``ORDER BY`` from "sort / order / rank (them) by X [descending]"."""
    lows = q.lows()
    verb = next((i for i, w in enumerate(lows) if w in _SORT_VERBS), -1)
    if verb < 0:
        return None
    by = next((i for i in range(verb + 1, min(len(lows), verb + 6)) if lows[i] == "by"), -1)
    words_from = by + 1 if by >= 0 else verb + 1
    desc = any(q.find(list(p)) >= 0 for p in DESC_PHRASES) or any(
        w in _DESC_WORDS for w in lows[verb:]
    )
    asc = any(q.find(list(p)) >= 0 for p in ASC_PHRASES) or any(
        w in _ASC_WORDS for w in lows[verb:]
    )
    target = [
        t
        for t in q.tokens[words_from:]
        if not t.punct
        and t.low not in _FILLER
        and t.low not in _DESC_WORDS
        and t.low not in _ASC_WORDS
        and t.low not in ("order", "first", "last", "to")
    ]
    if not target:
        return None
    expr = _result_column(tree, [t.stem for t in target], [t.low for t in target], dialect)
    lks = getattr(links, "columns", [])
    start = q.tokens.index(target[0])
    named = next((lk for lk in lks if lk.start >= start), None)
    if expr is None and tree.args.get("group"):
        # "by count", "by the total price": an aggregate of each group
        kind = next((_AGG_NAMES[t.low] for t in target if t.low in _AGG_NAMES), None)
        if kind is exp.Count:
            expr = exp.Count(this=exp.Star())
        elif kind is not None and named is not None:
            expr = kind(this=scope.col(Col(named.table, named.column)))
    if expr is None and named is not None:
        expr = scope.col(Col(named.table, named.column))
    if expr is None:
        return None
    said = " ".join(t.text for t in target)
    down = desc and not asc
    nulls = null_ordering(dialect)
    ordered = exp.Ordered(
        this=expr,
        desc=down,
        # the dialect's own NULL placement: no NULLS FIRST/LAST clause
        nulls_first=(nulls == "nulls_are_small") != down if nulls != "nulls_are_last" else False,
    )
    return ordered, said + (" descending" if down else "")


def _result_column(
    tree: exp.Select, stems: list[str], lows: list[str], dialect: str
) -> exp.Expr | None:
    """The result column the words name: an alias or a column's name, or an
    aggregate named by its function ("by count", "by the total")."""
    from avl.text import stem

    want = set(stems)
    for e in tree.expressions:
        name = e.alias or (e.name if isinstance(e, exp.Column) else "")
        if name:
            parts = {stem(p) for p in name.replace("_", " ").split()}
            if parts and (parts <= want or want <= parts):
                return exp.column(name) if e.alias else e.copy()
    for word in lows:
        kind = _AGG_NAMES.get(word)
        if kind is None:
            continue
        for e in tree.expressions:
            inner = e.this if isinstance(e, exp.Alias) else e
            if isinstance(inner, kind):
                return exp.column(e.alias) if e.alias else inner.copy()
    for e in tree.expressions:
        inner = e.this if isinstance(e, exp.Alias) else e
        if isinstance(inner, exp.AggFunc):
            arg = next(inner.find_all(exp.Column), None)
            if arg is not None and stem(arg.name) in want:
                return exp.column(e.alias) if e.alias else inner.copy()
    return None


def _only_aggregate(tree: exp.Select) -> exp.Expr | None:
    aggs = [
        e
        for e in tree.expressions
        if isinstance(e.this if isinstance(e, exp.Alias) else e, exp.AggFunc)
    ]
    if len(aggs) != 1:
        return None
    e = aggs[0]
    return exp.column(e.alias) if e.alias else e


def _limit(q: Question) -> int | None:
    """N of "top N", "first N", "only N", "just N", "limit to N"."""
    toks = q.tokens
    for i, t in enumerate(toks):
        if t.number is None or not float(t.number).is_integer() or not 0 < t.number <= 10_000:
            continue
        if 1000 <= t.number <= 2100 and t.is_digits:
            continue  # a year
        before = {toks[k].low for k in range(max(0, i - 3), i)}
        if before & (_TOP_WORDS | {"limit", "to"}) and "than" not in before:
            nxt = toks[i + 1].low if i + 1 < len(toks) else ""
            if nxt in ("percent", "%", "times"):
                continue
            return int(t.number)
    return None


def _counts(q: Question) -> bool:
    """ "How many (are there / of them)?", "count them", "the number of them"."""
    lows = q.lows()
    if any(w in _SORT_VERBS for w in lows):
        return False
    words = [w for w in lows if w.isalpha()]
    if q.find(["how", "many"]) >= 0:
        return True
    if words[:1] == ["count"] or words[:2] == ["and", "count"]:
        return True
    return q.find(["number", "of"]) >= 0 and any(w in _ANAPHORA for w in words)


def restate(
    question: str,
    turns: Sequence[Turn],
    *,
    schema: SchemaIndex,
    value_index: ValueIndex,
    fuzzy: FuzzyKeys | None = None,
) -> str | None:
    """The previous question asked about another table: "what about orders?" after
    "How many customers are there in each country?" is "How many orders are there in
    each country?" (``None`` when the question is not of that shape).

    Args:
        question: the new question.
        turns: the session's earlier turns, oldest first.
        schema: the schema index of the tables the caller may read.
        value_index: stored values by first lower-cased word.
        fuzzy: the typo lookup of ``value_index``.

    Returns:
        The restated question, or ``None``.
    """
    last = next((t for t in reversed(turns) if t.question.strip()), None)
    if last is None:
        return None
    q = parse_question(question)
    lows = q.lows()
    start = -1
    for phrase in (("what", "about"), ("how", "about")):
        at = q.find(list(phrase))
        if at >= 0 and all(w in ("and", "but", "so", "then", "now") for w in lows[:at]):
            start = at + len(phrase)
            break
    if start < 0:
        return None
    links = link_question(q, schema, value_index, fuzzy)
    if len(links.tables) != 1 or links.values:
        return None
    new = links.tables[0]
    rest = [
        t
        for i, t in enumerate(q.tokens[start:], start)
        if i not in new.span and not t.punct and t.low not in ("the", "a", "an", "all")
    ]
    if rest or any(c.start >= start and c.start not in new.span for c in links.columns):
        return None
    # the previous question may itself be one of these: restate it first
    earlier = list(turns[: len(turns) - 1 - turns[::-1].index(last)])
    base = restate(last.question, earlier, schema=schema, value_index=value_index, fuzzy=fuzzy)
    base = base if base is not None else last.question
    prev = parse_question(base)
    prev_links = link_question(prev, schema, value_index, fuzzy)
    if not prev_links.tables:
        return None
    old = prev_links.tables[0]
    if old.table.lower() == new.table.lower():
        return None
    said = question[q.tokens[new.start].start : q.tokens[new.end - 1].end]
    a = prev.tokens[old.start].start
    b = prev.tokens[old.end - 1].end
    return base[:a] + said + base[b:]
