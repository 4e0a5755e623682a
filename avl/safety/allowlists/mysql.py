"""MySQL/MariaDB built-in functions SafeQuery allows by default (checked against MariaDB).

Each :class:`Doc` is one category of the MariaDB Knowledge Base's "Built-in Functions"
(https://mariadb.com/kb/en/built-in-functions/), the same categories that the server's
own ``mysql.help_category`` holds. Only functions that both MySQL 8 and MariaDB 10.6+
have are listed. ``tests/safety/test_allowlists.py`` asserts that every name is a
built-in of a real MariaDB server.

Deliberately absent (see ``never.py``): ``LOAD_FILE``, ``SLEEP``, ``BENCHMARK``, the lock
functions (``GET_LOCK``...), ``MASTER_POS_WAIT`` and the replication functions,
``EXTRACTVALUE``/``UPDATEXML``, ``NAME_CONST``, ``UNCOMPRESS``, the information
functions (``DATABASE``, ``USER``, ``VERSION``, ``CONNECTION_ID``, ``LAST_INSERT_ID``,
``FOUND_ROWS``, ``ROW_COUNT``, ``CHARSET``, ``COLLATION``...), ``JSON_KEYS`` and the
encryption functions.
"""

from avl.safety.allowlists._doc import Doc

ENGINE = "MariaDB"
DOCS = "https://mariadb.com/kb/en/"

FUNCTIONS: tuple[Doc, ...] = (
    Doc(
        DOCS + "string-functions/",
        "scalar",
        """
        ascii bin bit_length char character_length char_length chr concat concat_ws elt
        export_set field find_in_set format from_base64 hex insert instr lcase left length
        locate lower lpad ltrim make_set mid octet_length ord position quote regexp_instr
        regexp_replace regexp_substr repeat replace reverse right rpad rtrim soundex space
        strcmp substr substring substring_index to_base64 trim ucase unhex upper
        """,
    ),
    Doc(
        DOCS + "date-time-functions/",
        "scalar",
        """
        adddate addtime convert_tz curdate current_date current_time current_timestamp
        curtime date datediff date_add date_format date_sub day dayname dayofmonth
        dayofweek dayofyear extract from_days from_unixtime get_format hour last_day
        localtime localtimestamp makedate maketime microsecond minute month monthname now
        period_add period_diff quarter second sec_to_time str_to_date subdate subtime
        sysdate time timediff timestamp timestampadd timestampdiff time_format time_to_sec
        to_days to_seconds unix_timestamp utc_date utc_time utc_timestamp week weekday
        weekofyear year yearweek
        """,
    ),
    Doc(
        DOCS + "numeric-functions/",
        "scalar",
        """
        abs acos asin atan atan2 ceil ceiling conv cos cot crc32 degrees exp floor ln log
        log10 log2 mod oct pi pow power radians rand round sign sin sqrt tan truncate
        """,
    ),
    Doc(
        DOCS + "control-flow-functions/",
        "scalar",
        "if ifnull nullif coalesce greatest least isnull interval",
    ),
    Doc(DOCS + "bit-functions-and-operators/", "scalar", "bit_count"),
    Doc(DOCS + "md5/", "scalar", "md5 sha1 sha2"),
    Doc(
        DOCS + "miscellaneous-functions/",
        "scalar",
        "inet_aton inet_ntoa inet6_aton inet6_ntoa is_ipv4 is_ipv6 uuid",
    ),
    Doc(
        DOCS + "json-functions/",
        "scalar",
        """
        json_array json_array_append json_array_insert json_contains json_contains_path
        json_depth json_extract json_insert json_length json_merge json_merge_patch
        json_merge_preserve json_object json_quote json_remove json_replace json_search
        json_set json_type json_unquote json_valid json_value
        """,
    ),
    Doc(
        DOCS + "aggregate-functions/",
        "aggregate",
        """
        avg bit_and bit_or bit_xor count group_concat max min std stddev stddev_pop
        stddev_samp sum variance var_pop var_samp json_arrayagg json_objectagg
        """,
    ),
    Doc(
        DOCS + "window-functions/",
        "window",
        "row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value "
        "last_value nth_value",
    ),
)

TABLE_FUNCTIONS: tuple[Doc, ...] = (Doc(DOCS + "json_table/", "table", "json_table"),)
