"""sqlglot's typed function classes that SafeQuery allows in every dialect.

sqlglot parses the functions it knows into typed classes (``exp.Upper``,
``exp.DateTrunc``...), each with one documented meaning across dialects
(https://sqlglot.com/sqlglot/expressions.html). A call that is written with a name is
judged by that name in the dialects that have their own allow-list (SQLite, PostgreSQL,
MySQL/MariaDB, DuckDB, and the names of ``bigquery.py``, ``snowflake.py``, ``tsql.py``);
these classes decide:

* a function-like construct that has no name of its own (``CAST``, ``CASE``, ``EXTRACT``,
  ``SUBSTRING(x FROM 1)``, ``CURRENT_DATE``, ``a AND b``...), in every dialect;
* every call in the other sqlglot dialects, which have no list of their own.

``tests/safety/test_allowlists.py`` asserts that each name is a sqlglot function class.
Absent on purpose: the ``Current*`` information classes (user, role, schema, database,
session, version, warehouse...), ``ReadCSV``/``ReadParquet``/``ToFile``, ``Host`` and
every class not listed here.
"""

from __future__ import annotations

CLASSES: dict[str, str] = {
    "syntax": """
        And Or Xor Case If Cast TryCast JSONCast Coalesce Nullif Extract Exists Collate
        Convert Array Struct Map MapFromEntries Unnest Explode Greatest Least
        """,
    "math": """
        Abs Acos Acosh Asin Asinh Atan Atan2 Atanh Cbrt Ceil Cos Cosh Cot Degrees Exp
        Factorial Floor IsInf IsNan Ln Log Pi Pow Radians Rand Round SafeDivide Sign Sin
        Sinh Sqrt Tan Tanh Trunc WidthBucket BitwiseCount
        """,
    "string": """
        Ascii BitLength Chr Concat ConcatWs Contains Decode DecodeCase Elt Encode EndsWith
        Format FromBase64 Hex Initcap Left Length Levenshtein JarowinklerSimilarity Lower
        MD5 Normalize NumberToStr Overlay Pad RegexpCount RegexpExtract RegexpExtractAll
        RegexpFullMatch RegexpILike RegexpInstr RegexpLike RegexpReplace RegexpSplit
        RegexpSubstr Repeat Replace Reverse Right SHA SHA2 SHA2Digest Soundex Space Split
        SplitPart StartsWith StrPosition StringToArray Substring SubstringIndex ToBase64
        ToBinary ToChar ToNumber ToDouble ToBoolean Translate Trim Unhex Unicode Upper
        Typeof Uuid Getbit Base64DecodeString Base64Encode HexDecodeString LowerHex
        SHA1Digest String Strtok StrtokToArray ToBase32 Try TryBase64DecodeString
        TryHexDecodeString Nvl2
        """,
    "datetime": """
        CurrentDate CurrentTime CurrentTimestamp Localtime Localtimestamp UtcDate UtcTime
        UtcTimestamp Date DateAdd DateBin DateDiff DateFromParts DateSub DateTrunc Day
        DayOfMonth DayOfWeek DayOfWeekIso DayOfYear Dayname Hour JustifyDays JustifyHours
        JustifyInterval LastDay MakeInterval Minute Month Monthname Quarter Second
        StrToDate StrToTime Time TimeFromParts TimeStrToTime TimeToStr TimeToUnix Timestamp
        TimestampAdd TimestampDiff TimestampFromParts TimestampSub TimestampTrunc ToDays
        TsOrDsToDate TsOrDsToTimestamp UnixMicros UnixSeconds UnixToTime Week WeekOfYear
        WeekStart Year ConvertTimezone GenerateDateArray DateFromUnixDate DateStrToDate
        DateToDateStr DateToDi Datetime DatetimeAdd DatetimeDiff DatetimeSub DatetimeTrunc
        DiToDate MonthsBetween StrToUnix TimeAdd TimeDiff TimeSlice TimeStrToDate
        TimeStrToUnix TimeSub TimeToTimeStr TimeTrunc TimestampLtzFromParts
        TimestampTzFromParts TsOrDiToDi TsOrDsAdd TsOrDsDiff TsOrDsToDateStr TsOrDsToDatetime
        TsOrDsToTime UnixDate UnixMillis UnixToStr UnixToTimeStr YearOfWeek YearOfWeekIso
        """,
    "json": """
        JSONArray JSONArrayAgg JSONArrayAppend JSONArrayInsert JSONBObjectAgg JSONExtract
        JSONExtractScalar JSONBExtract JSONBExtractScalar JSONBContains JSONKeys JSONObject
        JSONObjectAgg JSONRemove JSONSet JSONStripNulls JSONType ParseJSON FromJson
        GetExtract ToVariant JSONTable JSONExists JSONBExists JSONBPathExists
        JSONExtractArray JSONFormat JSONBool JSONArrayContains JSONBContainsTopKey
        JSONBContainsAnyTopKeys JSONBContainsAllTopKeys StripNullValue JSONValueArray
        """,
    "array": """
        ArrayAppend ArrayConcat ArrayContains ArrayContainsAll ArrayDistinct ArrayFilter
        ArrayIntersect ArrayMax ArrayMin ArrayOverlaps ArrayPosition ArrayPrepend
        ArrayRemove ArrayReverse ArraySize ArraySlice ArraySort ArrayToString Flatten
        Transform Reduce MapKeys StructExtract CosineDistance EuclideanDistance
        GenerateSeries ExplodingGenerateSeries SplitToTable Seq1 Seq2 Seq4 Seq8 ArrayAll
        ArrayAny ArrayCompact ArrayConcatAgg ArrayContainedBy ArrayExcept ArrayFirst
        ArrayInsert ArrayLast ArrayRemoveAt ArraySum ArrayUnionAgg ArrayUniqueAgg ArraysZip
        List MapCat MapContainsKey MapDelete MapInsert MapPick MapSize StrToMap ToArray ToMap
        ToCodePoints
        """,
    "aggregate": """
        AnyValue ApproxDistinct ApproxQuantile ApproxQuantiles ArgMax ArgMin ArrayAgg Avg
        BitwiseAndAgg BitwiseOrAgg BitwiseXorAgg Corr Count CountIf CovarPop CovarSamp
        First GroupConcat Kurtosis Last LogicalAnd LogicalOr Max Median Min Mode
        PercentileCont PercentileDisc Quantile RegrAvgx RegrAvgy RegrCount RegrIntercept
        RegrR2 RegrSlope RegrSxx RegrSxy RegrSyy Skewness Stddev StddevPop StddevSamp Sum
        Variance VariancePop ApproxTopK ApproxTopSum
        """,
    "window": """
        CumeDist DenseRank FirstValue Lag LastValue Lead NthValue Ntile PercentRank Rank
        RowNumber
        """,
    "geography": "StDistance StPoint",
}

# Typed classes that read rows in a relation position (FROM / JOIN) and are allowed
# there in every dialect; their size is bounded by the resource rules.
TABLE_CLASSES: str = """
    GenerateSeries ExplodingGenerateSeries Unnest Explode JSONTable SplitToTable Generator
    """
