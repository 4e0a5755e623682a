"""DuckDB built-in functions SafeQuery allows by default (checked against DuckDB 1.x/2.x).

Each :class:`Doc` is one page of the DuckDB documentation, "Functions"
(https://duckdb.org/docs/stable/sql/functions/overview). ``tests/safety/test_allowlists.py``
asserts that every name is in ``duckdb_functions()`` of the embedded engine.

Deliberately absent (see ``never.py``): ``query``, ``query_table``, every ``read_*``,
``*_scan``, ``glob``, ``sniff_csv``, ``parquet_*``, ``getenv``, ``current_setting``,
``getvariable``, the ``duckdb_*`` and ``pragma_*`` catalogue functions, ``current_query``,
``current_database``/``current_schema(s)``, ``version``, ``txid_current``,
``nextval``/``currval``/``setval``, ``setseed``, ``sleep_ms``, ``error``, ``write_log``,
``json_serialize_sql``/``json_deserialize_sql``/``json_serialize_plan``/
``json_execute_serialized_sql``, ``checkpoint``, ``summary``, ``histogram`` (table
macro), the PostgreSQL compatibility macros (``pg_*``, ``has_*_privilege``,
``col_description``...) and the ``__internal_*`` functions.
"""

from avl.safety.allowlists._doc import Doc

ENGINE = "DuckDB"
DOCS = "https://duckdb.org/docs/stable/sql/functions/"

FUNCTIONS: tuple[Doc, ...] = (
    Doc(
        DOCS + "numeric",
        "scalar",
        """
        abs acos acosh add asin asinh atan atan2 atanh bit_count cbrt ceil ceiling cos cosh
        cot degrees divide even exp factorial fdiv floor fmod gamma gcd
        greatest_common_divisor isfinite isinf isnan lcm least_common_multiple lgamma ln log
        log10 log2 multiply nextafter pi pow power radians random round round_even
        roundbankers sign signbit sin sinh sqrt subtract tan tanh trunc xor
        """,
    ),
    Doc(
        DOCS + "text",
        "scalar",
        """
        ascii bar bit_length chr concat concat_ws contains ends_with format formatreadabledecimalsize
        formatreadablesize format_bytes hamming instr lcase left left_grapheme len length
        length_grapheme levenshtein like_escape ilike_escape lower lpad ltrim md5
        md5_number nfc_normalize not_like_escape not_ilike_escape ord parse_dirname
        parse_dirpath parse_filename parse_path position prefix printf repeat replace
        reverse right right_grapheme rpad rtrim sha1 sha256 split split_part starts_with
        str_split string_split string_to_array strip_accents strlen strpos substr substring
        substring_grapheme suffix to_base64 base64 from_base64 translate trim ucase unicode
        upper url_decode url_encode damerau_levenshtein editdist3 jaccard jaro_similarity
        jaro_winkler_similarity mismatches to_hex from_hex hex unhex bin unbin to_binary
        from_binary
        """,
    ),
    Doc(
        DOCS + "regular_expressions",
        "scalar",
        """
        regexp_escape regexp_extract regexp_extract_all regexp_full_match regexp_matches
        regexp_replace regexp_split_to_array str_split_regex string_split_regex
        """,
    ),
    Doc(
        DOCS + "date",
        "scalar",
        """
        current_date today date_add date_diff datediff date_part datepart date_sub datesub
        date_trunc datetrunc dayname isodow isoyear last_day make_date monthname strftime
        time_bucket century day dayofmonth dayofweek dayofyear decade epoch epoch_ms
        epoch_ns epoch_us era hour julian microsecond millennium millisecond minute month
        nanosecond quarter second week weekday weekofyear year yearweek
        """,
    ),
    Doc(
        DOCS + "timestamp",
        "scalar",
        """
        age current_localtime current_localtimestamp get_current_time
        get_current_timestamp make_time make_timestamp make_timestamp_ms make_timestamp_ns
        make_timestamptz now strptime to_timestamp transaction_timestamp try_strptime
        timezone timezone_hour timezone_minute
        """,
    ),
    Doc(
        DOCS + "interval",
        "scalar",
        """
        to_centuries to_days to_decades to_hours to_microseconds to_millennia
        to_milliseconds to_minutes to_months to_quarters to_seconds to_weeks to_years
        normalized_interval
        """,
    ),
    Doc(
        DOCS + "list",
        "scalar",
        """
        array_append array_cat array_concat array_contains array_distinct array_extract
        array_filter array_has array_has_all array_has_any array_indexof array_intersect
        array_length array_pop_back array_pop_front array_position array_prepend
        array_push_back array_push_front array_reverse array_reverse_sort array_select
        array_slice array_sort array_to_string array_transform array_unique array_value
        array_where array_zip array_aggr array_aggregate array_apply array_reduce
        array_resize array_grade_up cardinality flatten list_aggr list_aggregate list_apply
        list_cat list_concat list_contains list_distinct list_element list_extract
        list_filter list_grade_up list_has list_has_all list_has_any list_indexof
        list_intersect list_pack list_position list_reduce list_resize list_reverse_sort
        list_select list_slice list_sort list_transform list_unique list_value list_where
        list_zip list_append list_prepend list_reverse list_any_value list_avg list_count
        list_first list_last list_max list_min list_median list_mode list_sum list_product
        list_string_agg list_stddev_pop list_stddev_samp list_var_pop list_var_samp
        list_bool_and list_bool_or list_approx_count_distinct list_entropy list_histogram
        list_kurtosis list_mad list_sem list_skewness filter reduce apply grade_up
        """,
    ),
    Doc(
        DOCS + "array",
        "scalar",
        """
        array_cosine_distance array_cosine_similarity array_cross_product array_distance
        array_dot_product array_inner_product array_negative_dot_product
        array_negative_inner_product list_cosine_distance list_cosine_similarity
        list_distance list_dot_product list_inner_product list_negative_dot_product
        list_negative_inner_product
        """,
    ),
    Doc(
        DOCS + "struct",
        "scalar",
        """
        struct_concat struct_contains struct_extract struct_extract_at struct_has
        struct_indexof struct_insert struct_keys struct_pack struct_position struct_update
        struct_values row
        """,
    ),
    Doc(
        DOCS + "map",
        "scalar",
        """
        cardinality element_at map map_concat map_contains map_contains_entry
        map_contains_value map_entries map_extract map_extract_value map_from_entries
        map_keys map_values
        """,
    ),
    Doc(DOCS + "union", "scalar", "union_extract union_tag union_value"),
    Doc(DOCS + "blob", "scalar", "decode encode octet_length get_bit"),
    Doc(
        DOCS + "utility",
        "scalar",
        """
        constant_or_null gen_random_uuid greatest hash least typeof
        uuid uuidv4 uuidv7 uuid_extract_timestamp uuid_extract_version if
        """,
    ),
    Doc(
        "https://duckdb.org/docs/stable/data/json/json_functions",
        "scalar",
        """
        json json_array json_array_length json_contains json_exists json_extract
        json_extract_path json_extract_path_text json_extract_string json_keys
        json_merge_patch json_object json_pretty json_quote json_structure json_transform
        json_transform_strict from_json from_json_strict json_type json_valid json_value
        to_json array_to_json row_to_json
        """,
    ),
    Doc(
        "https://duckdb.org/docs/stable/data/json/json_functions#json-aggregate-functions",
        "aggregate",
        "json_group_array json_group_object json_group_structure",
    ),
    Doc(
        DOCS + "aggregates",
        "aggregate",
        """
        any_value approx_count_distinct approx_quantile arbitrary arg_max arg_min argmax
        argmin array_agg avg bit_and bit_or bit_xor bool_and bool_or corr count count_if
        countif covar_pop covar_samp entropy favg first fsum geomean geometric_mean
        group_concat histogram kahan_sum kurtosis kurtosis_pop last list listagg mad max
        max_by mean median min min_by mode product quantile quantile_cont quantile_disc
        regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy
        regr_syy reservoir_quantile sem skewness stddev stddev_pop stddev_samp string_agg
        sum sumkahan var_pop var_samp variance weighted_avg wavg
        """,
    ),
    Doc(
        DOCS + "window_functions",
        "window",
        "cume_dist dense_rank first_value lag last_value lead nth_value ntile percent_rank "
        "rank rank_dense row_number",
    ),
    Doc(DOCS + "list#range-functions", "scalar", "range generate_series"),
    Doc(DOCS + "utility", "syntax", "coalesce ifnull nullif unnest"),
)

TABLE_FUNCTIONS: tuple[Doc, ...] = (
    Doc(DOCS + "list#range-functions", "table", "range generate_series unnest"),
    Doc(
        "https://duckdb.org/docs/stable/data/json/json_functions#json-table-functions",
        "table",
        "json_each json_tree",
    ),
)
