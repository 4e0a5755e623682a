"""Snowflake functions SafeQuery allows by name (besides the typed classes of ``typed.py``).

Names from the Snowflake SQL function reference
(https://docs.snowflake.com/en/sql-reference/functions-all) that sqlglot does not parse
into a typed class. Not checked against a real engine (there is none here).
Absent on purpose: ``SYSTEM$*``, ``CURRENT_*`` information functions, ``GET_DDL``,
``RESULT_SCAN``, stage and file functions.
"""

from avl.safety.allowlists._doc import Doc

ENGINE = "Snowflake"
DOCS = "https://docs.snowflake.com/en/sql-reference/functions/"

FUNCTIONS: tuple[Doc, ...] = (
    Doc(
        "https://docs.snowflake.com/en/sql-reference/functions-geospatial",
        "scalar",
        """
        st_area st_asgeojson st_aswkb st_aswkt st_astext st_buffer st_centroid st_collect
        st_contains st_covers st_coveredby st_difference st_dimension st_disjoint
        st_distance st_dwithin st_envelope st_geogfromwkb st_geographyfromwkb
        st_geogfromtext st_geographyfromtext st_intersection st_intersects st_length
        st_makeline st_makepoint st_makepolygon st_npoints st_perimeter st_point
        st_union st_union_agg st_within st_x st_y to_geography try_to_geography
        """,
    ),
    Doc(
        "https://docs.snowflake.com/en/sql-reference/functions-conversion",
        "scalar",
        """
        to_timestamp to_timestamp_ltz to_timestamp_ntz to_timestamp_tz try_to_timestamp
        try_to_timestamp_ntz try_to_timestamp_ltz try_to_timestamp_tz to_decimal
        to_numeric try_to_decimal try_to_numeric try_to_number to_time try_to_time
        try_to_boolean to_array to_object
        """,
    ),
    Doc(
        "https://docs.snowflake.com/en/sql-reference/functions-date-time",
        "scalar",
        "dayofweekiso yearofweek yearofweekiso timeadd timediff timestampadd "
        "timestampdiff time_slice",
    ),
    Doc(
        "https://docs.snowflake.com/en/sql-reference/functions-semistructured",
        "scalar",
        "array_slice array_compact array_flatten array_insert object_keys object_insert "
        "strip_null_value is_array is_object is_null_value typeof",
    ),
    Doc(
        "https://docs.snowflake.com/en/sql-reference/functions-string",
        "scalar",
        "charindex editdistance insert len ltrim rtrim position regexp_count startswith endswith",
    ),
)
