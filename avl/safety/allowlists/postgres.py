"""PostgreSQL built-in functions SafeQuery allows by default (checked against PostgreSQL 15).

Each :class:`Doc` is one page of the PostgreSQL 15 manual, "Functions and Operators"
(https://www.postgresql.org/docs/15/functions.html). ``tests/safety/test_allowlists.py``
asserts that every name exists in ``pg_proc`` of a real server (or, for the ``syntax``
entries, that a call runs).

Deliberately absent (see ``never.py``): the XML family (``query_to_xml``,
``table_to_xml``...), ``ts_stat``/``ts_rewrite``/``ts_debug``, sequences, system
information and administration functions, ``pg_*``, ``lo_*``, ``dblink*``, ``set_config``,
``current_setting``, ``txid_*``, ``enum_*`` and ``json_populate_record*`` (they take a
type or relation name), geometry and network functions.
"""

from avl.safety.allowlists._doc import Doc

ENGINE = "PostgreSQL"
DOCS = "https://www.postgresql.org/docs/15/"

FUNCTIONS: tuple[Doc, ...] = (
    Doc(DOCS + "functions-comparison.html", "scalar", "num_nonnulls num_nulls"),
    Doc(
        DOCS + "functions-math.html",
        "scalar",
        """
        abs cbrt ceil ceiling degrees div exp factorial floor gcd lcm ln log log10 min_scale
        mod pi power radians round scale sign sqrt trim_scale trunc width_bucket random
        acos acosd asin asind atan atand atan2 atan2d cos cosd cot cotd sin sind tan tand
        sinh cosh tanh asinh acosh atanh
        """,
    ),
    Doc(
        DOCS + "functions-string.html",
        "scalar",
        """
        bit_length char_length character_length lower lpad ltrim normalize octet_length
        overlay position rpad rtrim substring upper ascii btrim chr concat concat_ws format
        initcap left length md5 parse_ident quote_ident quote_literal quote_nullable repeat
        replace reverse right split_part starts_with string_to_array string_to_table strpos
        substr to_ascii to_hex translate unistr
        """,
    ),
    Doc(
        DOCS + "functions-binarystring.html",
        "scalar",
        "encode decode sha224 sha256 sha384 sha512 get_byte get_bit bit_count convert "
        "convert_from convert_to",
    ),
    Doc(
        DOCS + "functions-matching.html",
        "scalar",
        "regexp_count regexp_instr regexp_like regexp_match regexp_matches regexp_replace "
        "regexp_split_to_array regexp_split_to_table regexp_substr",
    ),
    Doc(DOCS + "functions-formatting.html", "scalar", "to_char to_date to_number to_timestamp"),
    Doc(
        DOCS + "functions-datetime.html",
        "scalar",
        """
        age clock_timestamp date_bin date_part date_trunc extract isfinite justify_days
        justify_hours justify_interval make_date make_interval make_time make_timestamp
        make_timestamptz now statement_timestamp timeofday transaction_timestamp timezone
        date
        """,
    ),
    Doc(
        DOCS + "functions-textsearch.html",
        "scalar",
        """
        to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery ts_rank
        ts_rank_cd ts_headline setweight strip numnode querytree tsvector_to_array
        array_to_tsvector ts_delete ts_filter
        """,
    ),
    Doc(DOCS + "functions-uuid.html", "scalar", "gen_random_uuid"),
    Doc(
        DOCS + "functions-json.html",
        "scalar",
        """
        to_json to_jsonb array_to_json row_to_json json_build_array jsonb_build_array
        json_build_object jsonb_build_object json_object jsonb_object json_array_length
        jsonb_array_length json_extract_path jsonb_extract_path json_extract_path_text
        jsonb_extract_path_text json_object_keys jsonb_object_keys json_typeof jsonb_typeof
        json_strip_nulls jsonb_strip_nulls jsonb_set jsonb_set_lax jsonb_insert jsonb_pretty
        jsonb_path_exists jsonb_path_match jsonb_path_query jsonb_path_query_array
        jsonb_path_query_first jsonb_path_exists_tz jsonb_path_match_tz jsonb_path_query_tz
        jsonb_path_query_array_tz jsonb_path_query_first_tz json_array_elements
        json_array_elements_text jsonb_array_elements jsonb_array_elements_text
        """,
    ),
    Doc(
        DOCS + "functions-array.html",
        "scalar",
        """
        array_append array_cat array_dims array_fill array_length array_lower array_ndims
        array_position array_positions array_prepend array_remove array_replace
        array_to_string array_upper cardinality trim_array unnest
        """,
    ),
    Doc(
        DOCS + "functions-aggregate.html",
        "aggregate",
        """
        array_agg avg bit_and bit_or bit_xor bool_and bool_or count every json_agg jsonb_agg
        json_object_agg jsonb_object_agg max min string_agg sum corr covar_pop covar_samp
        regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy
        regr_syy stddev stddev_pop stddev_samp variance var_pop var_samp mode percentile_cont
        percentile_disc rank dense_rank percent_rank cume_dist
        """,
    ),
    Doc(
        DOCS + "functions-window.html",
        "window",
        "row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value "
        "last_value nth_value",
    ),
    Doc(DOCS + "functions-srf.html", "scalar", "generate_series generate_subscripts"),
    Doc(
        DOCS + "functions-conditional.html",
        "syntax",
        "coalesce nullif greatest least",
    ),
    Doc(
        DOCS + "functions-datetime.html#FUNCTIONS-DATETIME-CURRENT",
        "syntax",
        "current_date current_time current_timestamp localtime localtimestamp",
    ),
    Doc(DOCS + "functions-string.html", "syntax", "trim"),
)

# Set-returning functions allowed in FROM / JOIN (rows bounded by their input, or by
# constant arguments for generate_series).
TABLE_FUNCTIONS: tuple[Doc, ...] = (
    Doc(DOCS + "functions-srf.html", "table", "generate_series generate_subscripts"),
    Doc(DOCS + "functions-array.html", "table", "unnest"),
    Doc(
        DOCS + "functions-json.html",
        "table",
        """
        json_array_elements json_array_elements_text jsonb_array_elements
        jsonb_array_elements_text json_each json_each_text jsonb_each jsonb_each_text
        json_object_keys jsonb_object_keys json_to_record json_to_recordset jsonb_to_record
        jsonb_to_recordset jsonb_path_query
        """,
    ),
    Doc(
        DOCS + "functions-string.html",
        "table",
        "regexp_matches regexp_split_to_table string_to_table",
    ),
)
