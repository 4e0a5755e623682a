"""Templates: literals written per dialect, proved by parse-tree comparison."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avl.errors import AvlError, ConfigError, InvalidInputError, UnsafeQueryError
from avl.safety._template import Template, template

USERS = "SELECT id, name FROM users WHERE name = :name"
DIALECTS = ("sqlite", "postgres", "mysql")


# ---------------------------------------------------------------- building


def test_params_in_order_of_first_appearance_and_repeats() -> None:
    t = template("SELECT * FROM t WHERE a = :b AND c = :a OR d = :b LIMIT :n")
    assert t.params == ("b", "a", "n")
    assert t.sql == "SELECT * FROM t WHERE a = :b AND c = :a OR d = :b LIMIT :n"
    assert t.dialect == "sqlite"


def test_template_is_immutable_hashable_and_equal_by_sql_and_dialect() -> None:
    a = template(USERS, dialect="postgres")
    b = template(USERS, dialect="postgres")
    assert a == b
    assert hash(a) == hash(b)
    assert a != template(USERS, dialect="mysql")
    with pytest.raises(AttributeError):
        a.sql = "SELECT 1"  # type: ignore[misc]
    assert Template(sql=USERS, dialect="postgres") == a


def test_template_without_placeholders_renders_itself() -> None:
    t = template("SELECT 1 AS one")
    assert t.params == ()
    assert t.render() == "SELECT 1 AS one"
    assert t.verify("SELECT 1 AS one") == {}


def test_bad_template_sql_is_a_config_error_naming_the_problem() -> None:
    with pytest.raises(ConfigError, match=r"the template SQL does not parse: .*line 1, column"):
        template("SELECT FROM WHERE (:name")


def test_template_with_two_statements_is_refused() -> None:
    with pytest.raises(ConfigError, match="exactly one statement, got 2"):
        template("SELECT :a; SELECT 2")


def test_positional_placeholder_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unsupported placeholder `\?`.*:name"):
        template("SELECT * FROM t WHERE a = ?")


def test_unknown_dialect_is_a_config_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown SQL dialect 'postgre'.*Did you mean postgres"):
        template(USERS, dialect="postgre")
    with pytest.raises(ConfigError, match="dialect must be a sqlglot dialect name"):
        template(USERS, dialect="")


def test_template_sql_must_be_a_string() -> None:
    with pytest.raises(ConfigError, match="must be a str, got bytes"):
        template(b"SELECT 1")  # type: ignore[arg-type]


# ---------------------------------------------------------------- render


@pytest.mark.parametrize(
    ("dialect", "value", "expected"),
    [
        ("sqlite", "O'Brien", "'O''Brien'"),
        ("sqlite", "a\\b", "'a\\b'"),
        ("postgres", "O'Brien", "'O''Brien'"),
        ("postgres", "a\\'b", "E'a\\\\''b'"),
        ("mysql", "O'Brien", "'O''Brien'"),
        ("mysql", "a\\'b", "'a\\\\''b'"),
        ("mysql", "nul\x00here", "'nul\\0here'"),
        ("sqlite", "", "''"),
        ("sqlite", "Zoë 😀", "'Zoë 😀'"),
        ("sqlite", 42, "42"),
        ("sqlite", -7, "-7"),
        ("sqlite", 1.5, "1.5"),
        ("sqlite", 1e20, "1e+20"),
        ("sqlite", -0.25, "-0.25"),
        ("sqlite", decimal.Decimal("-12.50"), "-12.50"),
        ("sqlite", decimal.Decimal("1E+3"), "1000"),
        ("sqlite", True, "TRUE"),
        ("postgres", False, "FALSE"),
        ("sqlite", None, "NULL"),
        ("sqlite", b"\x00\xff", "X'00FF'"),
        ("mysql", b"ab", "X'6162'"),
        ("sqlite", dt.date(2026, 11, 25), "'2026-11-25'"),
        ("postgres", dt.datetime(2026, 11, 25, 8, 30, 1), "'2026-11-25 08:30:01'"),
        ("mysql", dt.time(8, 30), "'08:30:00'"),
        (
            "sqlite",
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "'12345678-1234-5678-1234-567812345678'",
        ),
    ],
)
def test_render_writes_the_dialects_literal(dialect: str, value: object, expected: str) -> None:
    t = template("SELECT * FROM t WHERE c = :v", dialect=dialect)
    assert t.render(v=value) == f"SELECT * FROM t WHERE c = {expected}"


def test_render_fills_every_occurrence_of_a_repeated_placeholder() -> None:
    t = template("SELECT * FROM t WHERE a = :x OR b = :x AND c = :y")
    assert t.render(x="it's", y=3) == "SELECT * FROM t WHERE a = 'it''s' OR b = 'it''s' AND c = 3"


def test_negative_number_after_a_minus_is_not_a_comment() -> None:
    t = template("SELECT a -:n AS d FROM t")
    sql = t.render(n=-5)
    assert sql == "SELECT a - -5 AS d FROM t"
    assert t.verify(sql) == {"n": -5}


def test_render_keeps_string_subclasses_and_int_subclasses_as_plain_values() -> None:
    class Name(str):
        def __str__(self) -> str:
            return "not this"

    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    t = template("SELECT * FROM t WHERE a = :a AND b = :b")
    assert t.render(a=Name("ann"), b=Level.HIGH) == "SELECT * FROM t WHERE a = 'ann' AND b = 3"


def test_missing_parameter_is_named() -> None:
    t = template("SELECT * FROM t WHERE a = :a AND b = :b")
    with pytest.raises(
        InvalidInputError, match=r"missing value\(s\) for :b \(the template has :a, :b\)"
    ):
        t.render(a=1)


def test_unknown_parameter_is_named() -> None:
    t = template("SELECT * FROM t WHERE a = :a")
    with pytest.raises(
        InvalidInputError, match=r"unknown parameter\(s\) zz \(the template has :a\)"
    ):
        t.render(a=1, zz=2)


def test_unsupported_value_type_is_named() -> None:
    t = template("SELECT * FROM t WHERE a = :a")
    with pytest.raises(InvalidInputError, match="unsupported value type list for :a"):
        t.render(a=[1, 2])
    with pytest.raises(InvalidInputError, match="unsupported value type dict for :a"):
        t.render(a={})


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, decimal.Decimal("NaN"), decimal.Decimal("-Infinity")],
)
def test_nan_and_infinity_are_refused(value: object) -> None:
    t = template("SELECT * FROM t WHERE a = :a")
    with pytest.raises(InvalidInputError, match="no literal for NaN or infinity"):
        t.render(a=value)


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "bigquery", "tsql"])
def test_nul_character_is_refused_where_the_dialect_cannot_hold_it(dialect: str) -> None:
    t = template("SELECT * FROM t WHERE a = :a", dialect=dialect)
    with pytest.raises(InvalidInputError, match=rf"NUL character \(index 2\).*{dialect}"):
        t.render(a="ab\x00c")


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"not valid Unicode.*index 1"):
        template("SELECT :a").render(a="a\ud800")


def test_bytes_are_refused_where_there_is_no_blob_literal() -> None:
    with pytest.raises(InvalidInputError, match="bytes, and the postgres dialect has no blob"):
        template("SELECT :a", dialect="postgres").render(a=b"x")


def test_render_errors_are_avl_errors_and_value_errors() -> None:
    with pytest.raises(AvlError):
        template("SELECT :a").render()
    with pytest.raises(ValueError, match="missing"):
        template("SELECT :a").render()


def test_a_value_the_parser_reads_differently_is_refused_by_the_proof() -> None:
    # Here ":s" is read as an alias; a string literal in its place would be
    # concatenated with 'x' instead. The proof sees the different tree.
    t = template("SELECT 'x' :s")
    with pytest.raises(UnsafeQueryError) as info:
        t.render(s="y")
    assert str(info.value) == (
        "the rendered SQL differs from the template at expressions.[0]: the template has "
        "Alias `'x' AS :s`, the SQL has Concat `CONCAT('x', 'y')`"
    )
    assert info.value.sql == "SELECT 'x' 'y'"


# ---------------------------------------------------------------- verify


def test_verify_returns_typed_values() -> None:
    t = template(
        "SELECT * FROM t WHERE a = :s AND b = :i AND c = :f AND d = :n AND e = :b AND f = :x"
    )
    sql = "SELECT * FROM t WHERE a = 'O''Brien' AND b = -5 AND c = 2.5e3 AND d = NULL AND e = TRUE AND f = X'0aff'"
    values = t.verify(sql)
    assert values == {"s": "O'Brien", "i": -5, "f": 2500.0, "n": None, "b": True, "x": b"\n\xff"}
    assert [type(v) for v in values.values()] == [str, int, float, type(None), bool, bytes]


def test_verify_reads_mysql_backslash_escapes_and_double_quoted_strings() -> None:
    t = template(USERS, dialect="mysql")
    assert t.verify("SELECT id, name FROM users WHERE name = 'a''b\\\\c\\n'") == {
        "name": "a'b\\c\n"
    }
    assert t.verify('SELECT id, name FROM users WHERE name = "x"') == {"name": "x"}


def test_verify_reads_postgres_escape_strings() -> None:
    t = template(USERS, dialect="postgres")
    assert t.verify("SELECT id, name FROM users WHERE name = E'a\\\\b'") == {"name": "a\\b"}


def test_verify_ignores_whitespace_and_keyword_case() -> None:
    t = template(USERS)
    assert t.verify("select id,name\n  from users where name='x'") == {"name": "x"}


def test_verify_keeps_the_templates_own_comments() -> None:
    t = template("SELECT a FROM t /* report */ WHERE b = :b")
    assert t.verify("SELECT a FROM t /* report */ WHERE b = 1") == {"b": 1}
    with pytest.raises(UnsafeQueryError, match="comments"):
        t.verify("SELECT a FROM t /* other */ WHERE b = 1")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "SELECT id, name FROM users WHERE name = 'admin' --'",
            "comments that the template does not have",
        ),
        (
            "SELECT id, name FROM users WHERE name = 'a' /* x */",
            "comments that the template does not have",
        ),
        (
            "SELECT id, name FROM users WHERE name = '' OR '1'='1'",
            r"differs from the template at where\.this",
        ),
        ("SELECT id, name FROM users WHERE name = 'x'; DROP TABLE users", "semicolon"),
        ("SELECT id, name FROM users WHERE name = 'x';", "semicolon"),
        (
            "SELECT id, name FROM users WHERE name = 'x' UNION SELECT 1, 2",
            "differs from the template",
        ),
        (
            "SELECT id, name FROM users WHERE name = name",
            "must be one literal, found Column `name`",
        ),
        ("SELECT id, name FROM users WHERE name = 'a' || 'b'", "must be one literal, found DPipe"),
        ("SELECT id, name FROM users WHERE name = (SELECT 'a')", "must be one literal"),
        ("SELECT id, name FROM users WHERE name = 'unterminated", "does not parse"),
        ("SELECT id, name, pw FROM users WHERE name = 'x'", "differs from the template"),
        ("SELECT id, name FROM admins WHERE name = 'x'", "differs from the template"),
        ("", r"holds 0 statement\(s\)"),
    ],
)
def test_verify_refuses_anything_but_one_literal(sql: str, message: str) -> None:
    t = template(USERS)
    with pytest.raises(UnsafeQueryError, match=message) as info:
        t.verify(sql)
    assert info.value.sql == sql


def test_verify_message_says_where_the_trees_differ() -> None:
    t = template("SELECT * FROM t WHERE a = :a AND b = 1")
    with pytest.raises(UnsafeQueryError) as info:
        t.verify("SELECT * FROM t WHERE a = 1 AND b = 2")
    assert str(info.value) == (
        "the SQL differs from the template at where.this.expression.expression.this: "
        "the template has `1`, the SQL has `2`"
    )


def test_repeated_placeholder_needs_equal_values() -> None:
    t = template("SELECT * FROM t WHERE a = :x OR b = :x")
    assert t.verify("SELECT * FROM t WHERE a = 'q' OR b = 'q'") == {"x": "q"}
    with pytest.raises(UnsafeQueryError, match=r":x appears more than once .* different values"):
        t.verify("SELECT * FROM t WHERE a = 'q' OR b = 'r'")
    with pytest.raises(UnsafeQueryError, match="different values"):
        t.verify("SELECT * FROM t WHERE a = 1 OR b = 1.0")


def test_verify_needs_a_string() -> None:
    with pytest.raises(InvalidInputError, match="takes SQL as a str, got NoneType"):
        template(USERS).verify(None)  # type: ignore[arg-type]


def test_mysql_executable_comment_is_refused() -> None:
    t = template("SELECT * FROM t WHERE id = :id", dialect="mysql")
    with pytest.raises(UnsafeQueryError, match="comments"):
        t.verify("SELECT * FROM t WHERE id = 1 /*!50000 UNION SELECT password FROM users */")


def test_deep_nesting_is_refused_not_crashed() -> None:
    t = template(USERS)
    deep = "SELECT id, name FROM users WHERE name = " + "(" * 5000 + "'x'" + ")" * 5000
    with pytest.raises(UnsafeQueryError):
        t.verify(deep)


# ---------------------------------------------------------------- property tests

_values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(),
    st.booleans(),
)


@pytest.mark.parametrize("dialect", [*DIALECTS, "tsql", "bigquery", "duckdb", "snowflake"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=_values, b=_values)
def test_verify_accepts_every_rendered_value(dialect: str, a: object, b: object) -> None:
    t = template("SELECT id FROM t WHERE name = :a AND (x > :b OR y = :a) LIMIT 5", dialect=dialect)
    if dialect != "mysql":
        a = a.replace("\x00", "") if isinstance(a, str) else a
        b = b.replace("\x00", "") if isinstance(b, str) else b
    values = t.verify(t.render(a=a, b=b))
    assert values == {"a": a, "b": b}
    assert type(values["a"]) is type(a)


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=150, deadline=None)
@given(payload=st.text(alphabet=st.sampled_from("'\"\\;-/*# ()=ORoru1nNiUL%\n"), max_size=30))
def test_a_spliced_string_verifies_only_as_one_literal(dialect: str, payload: str) -> None:
    t = template("SELECT id FROM users WHERE name = :name AND pw = 'x'", dialect=dialect)
    spliced = f"SELECT id FROM users WHERE name = '{payload}' AND pw = 'x'"
    try:
        values = t.verify(spliced)
    except UnsafeQueryError:
        return
    # Accepted: the statement is the template with one literal, so rendering the value
    # that verify read gives a statement with the same tree (and the same value).
    assert t.verify(t.render(**values)) == values
    assert isinstance(values["name"], str)


# ---------------------------------------------------------------- public API and threads


def test_public_api_safequery_template() -> None:
    from avl.safety import SafeQuery
    from avl.safety import Template as PublicTemplate

    t = SafeQuery.template("SELECT * FROM users WHERE name = :name", dialect="postgres")
    assert isinstance(t, PublicTemplate)
    assert t.render(name="O'Brien") == "SELECT * FROM users WHERE name = 'O''Brien'"
    assert t.verify("SELECT * FROM users WHERE name = 'x'") == {"name": "x"}
    with pytest.raises(UnsafeQueryError):
        t.verify("SELECT * FROM users WHERE name = 'x' OR 'a'='a'")


def test_one_template_is_safe_to_share_between_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    t = template("SELECT id FROM users WHERE name = :name AND age > :age", dialect="mysql")
    names = [f"user'{i}\\" for i in range(400)]

    def work(i: int) -> tuple[str, dict[str, object]]:
        sql = t.render(name=names[i], age=i)
        return sql, t.verify(sql)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, range(400)))
    for i, (sql, values) in enumerate(results):
        assert sql == f"SELECT id FROM users WHERE name = 'user''{i}\\\\' AND age > {i}"
        assert values == {"name": names[i], "age": i}


def test_the_example_runs_and_rejects_the_injections(capsys: pytest.CaptureFixture[str]) -> None:
    import runpy
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "template_login.py"
    runpy.run_path(str(example), run_name="__main__")
    out = capsys.readouterr().out
    assert "verified: {'name': \"O'Brien\", 'banned': 'locked'}" in out
    assert out.count("rejected:") == 3
    assert "rows: [(1, 'admin')]" in out
    assert out.count("rows: []") == 2


@pytest.mark.parametrize(
    ("dialect", "sql", "setting"),
    [
        # One string when backslashes escape (MySQL default); in NO_BACKSLASH_ESCAPES
        # mode the literal ends at the second quote.
        (
            "mysql",
            "SELECT * FROM u WHERE name = 'x\\'' AND pw = 'y'",
            "sql_mode NO_BACKSLASH_ESCAPES",
        ),
        (
            "mysql",
            'SELECT * FROM u WHERE name = "x\\"" AND pw = \'y\'',
            "sql_mode NO_BACKSLASH_ESCAPES",
        ),
        # One string under standard_conforming_strings (the default); an injection
        # when it is off: 'a\' AND pw = ' is then one string.
        (
            "postgres",
            "SELECT * FROM u WHERE name = 'a\\' AND pw = ' OR 1=1 OR ''='",
            "standard_conforming_strings = off",
        ),
    ],
)
def test_verify_refuses_literals_whose_end_depends_on_a_server_setting(
    dialect: str, sql: str, setting: str
) -> None:
    t = template("SELECT * FROM u WHERE name = :n AND pw = :p", dialect=dialect)
    with pytest.raises(UnsafeQueryError, match=f"depends on the server setting {setting}"):
        t.verify(sql)


@pytest.mark.parametrize(
    ("dialect", "sql", "expected"),
    [
        ("mysql", "SELECT * FROM u WHERE name = 'a\\\\b\\0' AND pw = 'x''y'", "a\\b\x00"),
        ("postgres", "SELECT * FROM u WHERE name = 'a\\b' AND pw = 'x''y'", "a\\b"),
        ("postgres", "SELECT * FROM u WHERE name = E'a\\\\b' AND pw = 'x''y'", "a\\b"),
    ],
)
def test_backslashes_that_read_the_same_in_both_modes_are_accepted(
    dialect: str, sql: str, expected: str
) -> None:
    t = template("SELECT * FROM u WHERE name = :n AND pw = :p", dialect=dialect)
    assert t.verify(sql) == {"n": expected, "p": "x'y"}


def test_a_literal_never_merges_with_the_word_before_it() -> None:
    t = template("SELECT CASE WHEN a THEN:v ELSE 0 END FROM t", dialect="postgres")
    assert t.render(v="a\\b") == "SELECT CASE WHEN a THEN E'a\\\\b' ELSE 0 END FROM t"
    assert t.render(v=7) == "SELECT CASE WHEN a THEN 7 ELSE 0 END FROM t"
    assert t.verify(t.render(v=None)) == {"v": None}


@pytest.mark.parametrize(
    ("given", "name"),
    [("PostgreSQL", "postgres"), ("mariadb", "mysql"), (" SQLite ", "sqlite"), ("mssql", "tsql")],
)
def test_dialect_names_are_normalised_like_policy(given: str, name: str) -> None:
    t = template("SELECT :a", dialect=given)
    assert t.dialect == name
    assert t == template("SELECT :a", dialect=name)


def test_a_number_the_parser_normalises_to_a_string_is_still_proved() -> None:
    t = template("SELECT * FROM t WHERE d > NOW() - INTERVAL :n DAY", dialect="mysql")
    sql = t.render(n=5)
    assert sql == "SELECT * FROM t WHERE d > NOW() - INTERVAL 5 DAY"
    assert t.verify(sql) == {"n": "5"}  # sqlglot reads an INTERVAL quantity as a string


def test_a_placeholder_the_parser_rewrites_is_refused_not_guessed() -> None:
    # sqlglot turns the path literal of ->> into a JSONPath node: not a literal.
    t = template("SELECT j ->> :k FROM t", dialect="sqlite")
    with pytest.raises(UnsafeQueryError, match="must be one literal, found JSONPath"):
        t.render(k="$.a")


def test_hex_literals_are_values_only_where_they_are_blobs() -> None:
    assert template("SELECT :b", dialect="mysql").verify("SELECT X'41'") == {"b": b"A"}
    # In PostgreSQL X'41' is a bit string: not a value that verify can return.
    with pytest.raises(UnsafeQueryError, match="must be one literal, found HexString"):
        template("SELECT :b", dialect="postgres").verify("SELECT X'41'")
