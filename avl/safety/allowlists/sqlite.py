"""SQLite built-in functions SafeQuery allows by default.

Each :class:`Doc` is one page of the SQLite documentation (https://www.sqlite.org/).
``tests/safety/test_allowlists.py`` asserts that every name is in
``pragma_function_list`` (table-valued ones in ``pragma_module_list``) of the SQLite
that Python links; ``name@3.44`` entries are checked only from that version on.

Deliberately absent (see ``never.py``): ``load_extension``, ``readfile``/``writefile``
and the other fileio functions, ``fts3_tokenizer``, ``sqlite_*`` (compile options,
version, source id, log, offset), ``changes``/``total_changes``/``last_insert_rowid``
(session state), the FTS and R*Tree auxiliary functions (``match``, ``snippet``,
``highlight``, ``bm25``, ``offsets``, ``matchinfo``, ``optimize``, ``rtree*``) and every
``pragma_*`` table-valued function.
"""

from avl.safety.allowlists._doc import Doc

ENGINE = "SQLite"
DOCS = "https://www.sqlite.org/"

FUNCTIONS: tuple[Doc, ...] = (
    Doc(
        DOCS + "lang_corefunc.html",
        "scalar",
        """
        abs char coalesce concat@3.44 concat_ws@3.44 format@3.38 glob hex ifnull iif instr
        length like likelihood likely lower ltrim max min nullif octet_length@3.43 printf
        quote random randomblob replace round rtrim sign@3.35 soundex substr substring
        trim typeof unhex@3.41 unicode unlikely upper zeroblob
        """,
    ),
    Doc(
        DOCS + "lang_datefunc.html",
        "scalar",
        "date time datetime julianday unixepoch@3.38 strftime timediff@3.43",
    ),
    Doc(
        DOCS + "lang_aggfunc.html",
        "aggregate",
        "avg count group_concat max min string_agg@3.44 sum total",
    ),
    Doc(
        DOCS + "windowfunctions.html#built_in_window_functions",
        "window",
        "row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value "
        "last_value nth_value",
    ),
    Doc(
        DOCS + "lang_mathfunc.html",
        "scalar",
        """
        acos acosh asin asinh atan atan2 atanh ceil ceiling cos cosh degrees exp floor ln
        log log10 log2 mod pi pow power radians sin sinh sqrt tan tanh trunc
        """,
    ),
    Doc(
        DOCS + "json1.html",
        "scalar",
        """
        json json_array json_array_length json_error_position@3.42 json_extract json_insert
        json_object json_patch json_remove json_replace json_set json_type json_valid
        json_quote
        """,
    ),
    Doc(DOCS + "json1.html", "aggregate", "json_group_array json_group_object"),
)

TABLE_FUNCTIONS: tuple[Doc, ...] = (Doc(DOCS + "json1.html#jeach", "table", "json_each json_tree"),)
