"""Relation rules: what a ``FROM``/``JOIN`` item may be.

* A real table: the allow-list (``table_not_allowed``), the deny-list (``table_denied``),
  the schema (``unknown_table``), system catalogues (``system_catalog``), row filters
  (recorded here, applied by the rewrite).
* A CTE, a derived table, ``VALUES``, ``LATERAL``: walked, with their column lists.
* A table function: only those on the dialect's table-function allow-list
  (``generate_series``, ``range``, ``unnest``, ``json_each``...; see ``rules/functions.py``);
  everything else in a relation position is refused.
* A name that is a file path or URL (DuckDB reads ``FROM 'x.csv'`` as ``read_csv``) is
  ``function_denied``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlglot import exp

from avl._lazy import LazyPattern, lazy_module
from avl.safety._verdict import ViolationCode
from avl.safety._walk import Rel, Scope

if TYPE_CHECKING:
    from avl.safety._checker import RowFilter
    from avl.safety._walk import Run
    from avl.safety.rules import functions, resources
else:  # imported when a table function first needs them
    functions = lazy_module("avl.safety.rules.functions", __name__)
    resources = lazy_module("avl.safety.rules.resources", __name__)

__all__ = ["is_catalog", "source", "table", "table_expr"]

C = ViolationCode

# System catalogues: schema names, table-name prefixes and exact table names.
CATALOG_SCHEMAS: frozenset[str] = frozenset(
    {
        "information_schema", "pg_catalog", "pg_toast", "pg_temp", "mysql",
        "performance_schema", "sys", "sysibm", "syscat", "sysstat", "sysproc", "syscs_sys",
        "system", "master", "msdb", "tempdb", "ctxsys", "mdsys", "dbsnmp", "sysman",
        "snowflake", "account_usage", "__tables__", "temp", "duckdb_catalog",
    }
)  # fmt: skip
CATALOG_PREFIXES: tuple[str, ...] = (
    "pg_", "sqlite_", "pragma_", "duckdb_", "dba_", "user_tab", "user_obj", "user_users",
    "user_role", "user_sys_", "user_cons", "user_ind", "user_source", "user_views",
    "user_arguments", "user_procedures", "v$", "gv$", "x$", "rdb$", "mon$", "stv_", "stl_",
    "svv_", "svl_", "innodb_", "msys",
)  # fmt: skip
CATALOG_TABLES: frozenset[str] = frozenset(
    {
        "sysobjects", "syscolumns", "sysusers", "sysdatabases", "syslogins", "sysprocesses",
        "syscomments", "systypes", "sysservers", "sysxlogins", "sysfiles", "sysindexes",
        "sysschemas", "systables", "sysdummy1", "all_users", "all_tables", "all_tab_columns",
        "all_objects", "all_views", "all_source", "all_constraints", "all_synonyms",
        "all_db_links", "all_tab_privs", "all_col_comments", "all_tab_comments",
        "all_indexes", "all_sequences", "all_procedures", "all_arguments", "all_roles",
        "dual_catalog", "dbstat", "fts3tokenize", "fts4aux", "fts5vocab",
    }
)  # fmt: skip
# a relation name that is really a file or a URL (DuckDB replacement scans, ClickHouse...)
_PATHLIKE = LazyPattern(
    r"[/\\:]|\.(csv|tsv|txt|parquet|json|jsonl|ndjson|gz|zst|xlsx?|db|duckdb|sqlite3?|arrow|"
    r"avro|orc|ipc|feather)$",
    re.IGNORECASE,
)
_TABLE_NAME_ARGS = frozenset({"this", "db", "catalog", "alias"})
# what may stay on a row-filtered table inside its wrapper (a subset of the table's own
# rows, filtered after); PIVOT goes outside, anything else is refused
_FILTERABLE_ARGS = frozenset(
    {"this", "db", "catalog", "alias", "sample", "hints", "indexed", "only", "version",
     "system_time", "partition", "format", "pivots"}
)  # fmt: skip
_TABLE_WALKED = frozenset({"joins", "laterals", "pivots", "hints", "sample", "version", "only"})


def is_catalog(parts: tuple[str, ...]) -> bool:
    """Whether a (lower-cased) table name is a system catalogue."""
    if any("." in p for p in parts):  # BigQuery reads `a.b.c` as one identifier
        parts = tuple(x for p in parts for x in p.split("."))
    name = parts[-1]
    if any(p in CATALOG_SCHEMAS for p in parts[:-1]):
        return True
    if name in CATALOG_TABLES or name == "information_schema":
        return True
    return name.startswith(CATALOG_PREFIXES)


def _declared(node: exp.Expr) -> list[str] | None:
    alias = node.args.get("alias")
    if alias is None:
        return None
    columns = alias.args.get("columns") if type(alias) is exp.TableAlias else None
    if columns:
        return [str(c.name).lower() for c in columns if isinstance(c, exp.Expr)]
    return None


def _register(scope: Scope, node: exp.Expr, rel: Rel, fallback: str) -> str:
    name = str(node.alias).lower() if node.alias else fallback
    scope.sources[name] = rel
    return name


def _links(name: str, node: exp.Expr, scope: Scope) -> frozenset[str]:
    """The sources a table function or lateral item reads columns of (it is tied to them)."""
    owners = {name}
    for col in node.find_all(exp.Column):
        word = col.table.lower() if col.table else col.name.lower()
        if col.table and word in scope.sources:
            owners.add(word)
            continue
        # an unqualified column, or a struct column's field (BigQuery ``hits.product``)
        for alias, src in scope.sources.items():
            if alias != name and (src.colset is None or word in src.colset):
                owners.add(alias)
    return frozenset(owners)


def _function_args(run: Run, func: exp.Expr, scope: Scope) -> None:
    for value in func.args.values():
        if isinstance(value, exp.Expr):
            run.expr(value, scope)
        elif isinstance(value, list):
            run.expr([v for v in value if isinstance(v, exp.Expr)], scope)


def source(run: Run, node: exp.Expr, scope: Scope, links: list[frozenset[str]]) -> str | None:
    """Register one ``FROM``/``JOIN`` item in ``scope``; return the name it goes by."""
    index = len(scope.sources)
    if isinstance(node, exp.Table):
        return table(run, node, scope, links)
    if isinstance(node, exp.Subquery):
        inner = node.this
        if isinstance(inner, exp.Values):
            return _values(run, inner, scope, node, index)
        rel = run.query(node, scope.parent)
        declared = _declared(node)
        if rel is None:
            rel = Rel(f"<subquery{index}>", None)
        if declared is not None:
            rel = rel.renamed(declared)
        name = str(node.alias).lower() or f"<subquery{index}>"
        scope.sources[name] = rel.named(name)
        return name
    if isinstance(node, exp.Values):
        return _values(run, node, scope, node, index)
    if isinstance(node, exp.Unnest):
        for item in node.expressions:
            run.expr(item, scope)
        for key in ("offset",):
            value = node.args.get(key)
            if isinstance(value, exp.Expr):
                run.expr(value, scope)
        rows: float | None = None
        if node.expressions and all(isinstance(e, exp.Array) for e in node.expressions):
            rows = float(max(len(e.expressions) for e in node.expressions))
        declared = _declared(node)
        alias = node.args.get("alias")
        if (
            isinstance(alias, exp.TableAlias)
            and not alias.this
            and declared is not None
            and len(declared) == 1
        ):
            # BigQuery: UNNEST(x) AS h names the element; h.field reads its fields
            name = declared[0]
            scope.sources[name] = Rel(name, None, frozenset(), None, rows)
        else:
            name = _register(
                scope,
                node,
                Rel("<unnest>", tuple(declared) if declared else None, frozenset(), None, rows),
                f"<unnest{index}>",
            )
        links.append(_links(name, node, scope))
        return name
    if isinstance(node, exp.Lateral):
        return _lateral(run, node, scope, links, index)
    if isinstance(node, exp.TableFromRows):
        func = node.this
        declared = _declared(node)
        name = str(node.alias).lower() or f"<rows{index}>"
        if isinstance(func, exp.Func) and functions.table_function(run, func, scope):
            _function_args(run, func, scope)
        elif not isinstance(func, exp.Func):
            run.unknown(func)
        scope.sources[name] = Rel(name, tuple(declared) if declared else None)
        links.append(_links(name, node, scope))
        return name
    run.unknown(node)
    return None


def _values(run: Run, values: exp.Values, scope: Scope, named: exp.Expr, index: int) -> str:
    run.expr(values.expressions, scope)
    declared = _declared(named) or _declared(values)
    name = str(named.alias).lower() or f"<values{index}>"
    scope.sources[name] = Rel(
        name,
        tuple(declared) if declared else None,
        frozenset(),
        None,
        float(len(values.expressions)),
    )
    return name


def _lateral(
    run: Run, node: exp.Lateral, scope: Scope, links: list[frozenset[str]], index: int
) -> str:
    inner = node.this
    declared = _declared(node)
    name = str(node.alias).lower() or f"<lateral{index}>"
    rel: Rel | None = None
    if isinstance(inner, exp.Subquery):
        rel = run.query(inner, scope)
    elif isinstance(inner, exp.Func):
        if functions.table_function(run, inner, scope):
            _function_args(run, inner, scope)
    else:
        run.unknown(inner if isinstance(inner, exp.Expr) else node)
    for key, value in node.args.items():
        if key not in ("this", "alias", "view", "outer", "cross_apply", "ordinality") and value:
            run.unknown(value if isinstance(value, exp.Expr) else node)
    if rel is None:
        rel = Rel(name, None)
    if declared is not None:
        rel = rel.renamed(declared)
    scope.sources[name] = rel.named(name)
    links.append(_links(name, node, scope))
    return name


def table(run: Run, node: exp.Table, scope: Scope, links: list[frozenset[str]]) -> str | None:
    """A table reference: a real table, a CTE, a table function or a file path."""
    args = node.args
    this = args.get("this")
    if len(args) == 1 and type(this) is exp.Identifier and not run.c.row_filters:
        # the common case, a bare table name: its verdict is cached per checker
        cached = (this.this, this.args.get("quoted"))
        hit = run.c.simple_tables.get(cached)
        if hit is not None:
            name, rel, display, problem = hit
            if scope.cte(name) is None:
                run.tables.add(display)
                if problem is not None:
                    run.flag(problem[0], problem[1], node)
                scope.sources[name] = rel
                return name
    index = len(scope.sources)
    if not args.keys() <= _TABLE_NAME_ARGS:
        for key, value in args.items():
            if key in _TABLE_NAME_ARGS or value is None or isinstance(value, bool):
                continue
            if key in _TABLE_WALKED:
                run.expr(value if isinstance(value, list) else [value], scope)
            elif key == "rows_from":
                for item in value:
                    inner = item.this if isinstance(item, exp.Table) else item
                    if isinstance(inner, exp.Func) and functions.table_function(run, inner, scope):
                        _function_args(run, inner, scope)
                    elif not isinstance(inner, exp.Func):
                        run.unknown(inner)
            elif key in ("ordinality", "indexed"):
                continue  # WITH ORDINALITY, SQLite's INDEXED BY / NOT INDEXED
            else:
                run.unknown(value[0] if isinstance(value, list) and value else value)
    this = node.this
    declared = _declared(node)
    alias = str(node.alias).lower()
    if isinstance(this, exp.Func):
        name = alias or f"<function{index}>"
        rows: float | None = None
        if functions.table_function(run, this, scope):
            _function_args(run, this, scope)
            rows = resources.rows_of(this)
        scope.sources[name] = Rel(
            name, tuple(declared) if declared else None, frozenset(), None, rows
        )
        links.append(_links(name, this, scope))
        return name
    if args.get("rows_from"):
        name = alias or f"<function{index}>"
        scope.sources[name] = Rel(name, tuple(declared) if declared else None)
        return name
    if not isinstance(this, exp.Identifier):
        run.unknown(this if isinstance(this, exp.Expr) else node)
        return None
    if this.args.get("quoted") and _PATHLIKE.search(str(this.this)):
        run.flag(
            C.FUNCTION_DENIED,
            f"{str(this.this)!r} names a file or URL, which the engine would read",
            node,
        )
        return None
    parts = run.c.parts_of(node)
    if len(parts) == 1:
        cte = scope.cte(parts[0].lower())
        if cte is not None:
            rel = cte.renamed(declared) if declared is not None else cte
            name = alias or parts[0].lower()
            scope.sources[name] = rel.named(name)
            return name
    info = run.c.table_info(parts)
    run.tables.add(info.display)
    if info.problem is not None:
        run.flag(info.problem[0], info.problem[1], node)
    rel = Rel(parts[-1], info.columns, info.denied, info.display, colset=info.colset)
    if declared is not None:
        rel = rel.renamed(declared)
        rel = Rel(parts[-1], rel.cols, rel.marked, info.display)
    name = alias or parts[-1].lower()
    scope.sources[name] = rel
    if len(args) == 1 and len(parts) == 1 and len(run.c.simple_tables) < 4096:
        ident = args["this"]
        run.c.simple_tables[(ident.this, ident.args.get("quoted"))] = (
            name,
            rel,
            info.display,
            info.problem,
        )
    if not alias and len(parts) > 1:
        scope.sources.setdefault(".".join(parts).lower(), rel)
    for rf in run.c.row_filters:
        # like a deny rule: public.orders is filtered by a filter on orders
        if run.c.denied_match(parts, rf.parts) and not _already_filtered(run, node, rf):
            extra = sorted(k for k, v in args.items() if v and k not in _FILTERABLE_ARGS)
            if extra:
                # the wrapper filters the table's own rows; an operator written on the
                # reference (a join or match clause attached to it) would run before
                # the filter. PIVOT is moved outside the wrapper by the rewrite.
                run.flag(
                    C.UNKNOWN_NODE,
                    f"the row filter on {info.display!r} cannot be applied before its "
                    f"{', '.join(extra)} clause; refusing",
                    node,
                )
                continue
            run.wraps.append((node, rf))
    return name


def _already_filtered(run: Run, node: exp.Table, rf: RowFilter) -> bool:
    """``(SELECT * FROM t WHERE <the bound filter>)``: a rewrite checked again."""
    from_ = node.parent
    select = from_.parent if from_ is not None else None
    if not (isinstance(from_, exp.From) and isinstance(select, exp.Select)):
        return False
    if not isinstance(select.parent, exp.Subquery) or select.args.get("joins"):
        return False
    exprs = select.expressions
    where = select.args.get("where")
    if len(exprs) != 1 or not isinstance(exprs[0], exp.Star) or where is None:
        return False
    from avl.safety._rewrite import FENCES, fence_of

    # the wrapper's fence too: a filter the caller wrote unfenced is wrapped again,
    # or the engine could run the caller's expressions on other tenants' rows
    if fence_of(select, run.p.dialect) != FENCES.get(run.p.dialect, ""):
        return False
    bound = run.c.bound_filter(rf, run.params)
    return bound is not None and where.this == bound


def table_expr(run: Run, node: exp.Expr, scope: Scope) -> bool:
    """A table in an expression position (``x IN t``, PostgreSQL ``SELECT t FROM ...``)."""
    if isinstance(node, exp.Table):
        table(run, node, Scope(scope), [])
    return True


RULES = {exp.Table: table_expr}
