"""BigQuery functions SafeQuery allows by name (besides the typed classes of ``typed.py``).

Names from the GoogleSQL reference (https://cloud.google.com/bigquery/docs/reference/
standard-sql/functions-all) that sqlglot does not parse into a typed class. Not checked
against a real engine (there is none here); every other call goes through ``typed.py``.
"""

from avl.safety.allowlists._doc import Doc

ENGINE = "BigQuery"
DOCS = "https://cloud.google.com/bigquery/docs/reference/standard-sql/"

FUNCTIONS: tuple[Doc, ...] = (
    Doc(
        DOCS + "geography_functions",
        "scalar",
        """
        st_area st_asbinary st_asgeojson st_astext st_boundary st_buffer st_centroid
        st_closestpoint st_contains st_convexhull st_coveredby st_covers st_difference
        st_dimension st_disjoint st_distance st_dwithin st_endpoint st_equals
        st_geogfromgeojson st_geogfromtext st_geogfromwkb st_geogpoint st_geohash
        st_intersection st_intersects st_isempty st_length st_makeline st_makepolygon
        st_maxdistance st_npoints st_numpoints st_perimeter st_pointn st_simplify
        st_startpoint st_touches st_union st_union_agg st_within st_x st_y
        """,
    ),
    Doc(
        DOCS + "datetime_functions",
        "scalar",
        "datetime datetime_add datetime_diff datetime_sub datetime_trunc format_datetime "
        "parse_datetime",
    ),
    Doc(
        DOCS + "timestamp_functions",
        "scalar",
        "timestamp_add timestamp_micros timestamp_millis parse_timestamp unix_millis",
    ),
    Doc(DOCS + "date_functions", "scalar", "date_from_unix_date unix_date format_date"),
    Doc(
        DOCS + "string_functions",
        "scalar",
        "byte_length char_length character_length code_points_to_string to_code_points "
        "lpad rpad ltrim rtrim instr regexp_instr",
    ),
    Doc(
        DOCS + "aggregate_functions",
        "aggregate",
        "logical_and logical_or string_agg array_concat_agg approx_count_distinct approx_top_count",
    ),
    Doc(
        DOCS + "json_functions",
        "scalar",
        "json_query json_value json_extract_scalar json_extract_array to_json_string",
    ),
    Doc(DOCS + "mathematical_functions", "scalar", "ieee_divide safe_multiply safe_add div"),
)
