"""SafeQuery's rules, by concern, and the node-class -> handler table that dispatches to them.

One module per concern; each exposes ``RULES``, a mapping from sqlglot node classes to
handlers ``(run, node, scope) -> bool`` (True when the handler walked the node's
children itself):

* ``statements.py``: statement kinds, writes, ``INTO``, locking clauses, hints, variables;
* ``queries.py``: SELECT, set operations, subqueries, CTEs (scopes and outputs);
* ``relations.py``: tables, catalogues, table functions, files in ``FROM``;
* ``columns.py``: columns, stars, renames, positional references, ``COLUMNS(...)``;
* ``functions.py``: the function and type allow-lists (why a function was refused);
* ``predicates.py``: constant conditions and tautologies;
* ``shapes.py``: expressions that only injections produce;
* ``resources.py``: sizes, generators, cartesian products, recursion.

:data:`TABLE` merges them; a class claimed by several modules gets a handler that runs
each (in the order above). Structural classes with nothing to check map to
:func:`plain`. A class in no table is an unknown node and is refused.

A rule module is imported when a statement first needs it, not when SafeQuery is
(a check of ``SELECT 1`` loads ``queries.py`` and ``statements.py`` only): ``_CLAIMS``
names, for every class, the modules that claim it, and the table starts with a stub
per class that imports those modules on its first call, composes the class's handler
from their ``RULES`` and puts it in the table in its own place. ``_CLAIMS`` is written
down, not computed (computing it means importing every module); a test builds the table
eagerly from every module and compares it with the one the stubs build, class by class
and in the order of composition.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING

from sqlglot import exp

from avl.safety._walk import Handler, QueryHandler, Run, Scope
from avl.safety.rules import queries
from avl.safety.rules._util import WRITE_NODES

if TYPE_CHECKING:
    from avl.safety.allowlists import Catalog

__all__ = ["nameless", "plain"]


def plain(run: Run, node: exp.Expr, scope: Scope) -> bool:
    """A structural node with nothing to check of its own: walk its children."""
    return False


def _classes(*names: str) -> list[type[exp.Expr]]:
    out = []
    for name in names:
        cls = getattr(exp, name, None)
        if isinstance(cls, type) and issubclass(cls, exp.Expr):
            out.append(cls)
    return out


# Structural and operator nodes the walker knows and that need no rule of their own.
PLAIN = _classes(
    "Subquery", "TableAlias", "From", "Join", "Where", "Group", "Having", "Qualify", "Order",
    "Ordered", "Limit", "Offset", "Fetch", "LimitOptions", "Window", "WindowSpec", "Distinct",
    "Values", "Identifier", "Alias", "Aliases", "Tuple", "Paren", "Bracket", "Pivot",
    "PivotAlias", "Semicolon", "GroupingSets", "Rollup", "Cube", "Filter", "WithinGroup",
    "IgnoreNulls", "RespectNulls", "HavingMax", "Slice", "Lambda", "Kwarg", "ColumnDef",
    "TableSample", "Sample", "Var", "Placeholder", "Null", "Boolean", "BitString",
    "ByteString", "National", "RawString", "UnicodeString", "DataTypeParam", "Interval",
    "IntervalSpan", "Escape", "PseudoType", "Not", "Neg", "BitwiseNot", "DPipe", "JSONPath",
    "JSONPathKey", "JSONPathRoot", "JSONPathSubscript", "JSONPathWildcard",
    "JSONPathSelector", "JSONPathSlice", "JSONPathFilter", "JSONPathUnion",
    "JSONPathRecursive", "JSONPathScript", "Distance", "Operator", "Overlaps", "AtTimeZone",
    "FromTimeZone", "Check", "ConnectBy", "Connect", "Prior", "ScopeResolution", "Adjacent",
    "ExtendsLeft", "ExtendsRight", "UnpivotColumns", "MatchRecognize",
    "MatchRecognizeMeasure", "TimeUnit", "JSONKeyValue", "FormatJson", "JSONColumnDef",
    "JSONSchema", "Changes", "HistoricalData", "Version", "IndexTableHint", "WithTableHint",
    "Tags", "Schema", "Returning", "OnConflict", "Lateral", "Unnest", "TableFromRows",
    "Dot", "Is", "SimilarTo", "Glob", "ILikeAny", "LikeAny", "Any", "All", "Exists",
    "JSONValue",
)  # fmt: skip

# the rule modules, in the order their handlers run on a class several claim
_ORDER = (
    "statements",
    "queries",
    "relations",
    "columns",
    "functions",
    "predicates",
    "shapes",
    "resources",
)

# modules (in _ORDER) -> the classes they, and only they, claim; tests/safety/test_rule_table.py
# rebuilds it from every module's RULES and prints it when it no longer matches
_CLAIMS: dict[str, str] = {
    "statements": (
        "Alter Attach Command Commit Copy Create Delete Detach Drop Grant Hint Insert Into "
        "Lock Merge Parameter Pragma PropertyEQ Revoke Rollback SessionParameter Set "
        "Transaction TruncateTable Update Use "
    ),
    "queries": ("Except Intersect Select Subquery Union "),
    "relations": ("Table "),
    "columns": ("Column Columns Lambda PositionalColumn Star Var "),
    "functions": (
        "AIAgg AIClassify AIEmbed AIForecast AIGenerate AISimilarity AISummarizeAgg Abs Acos "
        "Acosh AddMonths Agg AggFunc AnonymousAggFunc AnyValue Apply ApproxDistinct "
        "ApproxPercentileAccumulate ApproxPercentileCombine ApproxPercentileEstimate "
        "ApproxQuantile ApproxQuantiles ApproxTopK ApproxTopKAccumulate ApproxTopKCombine "
        "ApproxTopKEstimate ApproxTopSum ApproximateSimilarity ArgMax ArgMin Array ArrayAgg "
        "ArrayAll ArrayAny ArrayAppend ArrayCompact ArrayConcat ArrayConcatAgg "
        "ArrayConstructCompact ArrayContainedBy ArrayContains ArrayContainsAll ArrayDistinct "
        "ArrayExcept ArrayFilter ArrayFirst ArrayInsert ArrayIntersect ArrayLast ArrayMax "
        "ArrayMin ArrayOverlaps ArrayPosition ArrayPrepend ArrayRemove ArrayRemoveAt "
        "ArrayReverse ArraySize ArraySlice ArraySort ArraySum ArrayToString ArrayUnionAgg "
        "ArrayUniqueAgg ArraysZip Ascii Asin Asinh Atan Atan2 Atanh Avg Base64DecodeBinary "
        "Base64DecodeString Base64Encode BitLength BitmapBitPosition BitmapBucketNumber "
        "BitmapConstructAgg BitmapCount BitmapOrAgg BitwiseAndAgg BitwiseCount BitwiseOrAgg "
        "BitwiseXorAgg Booland Boolnot Boolor BoolxorAgg ByteLength Cast CastToStrType Cbrt "
        "Ceil CheckJson CheckXml CityHash64 Coalesce CodePointsToBytes CodePointsToString "
        "Collate Collation CombinedAggFunc CombinedParameterizedAgg Compress ConcatWs "
        "ConnectByRoot Contains Convert ConvertTimezone ConvertToCharset Corr Cos Cosh "
        "CosineDistance Cot Coth Count CountIf CovarPop CovarSamp Csc Csch CumeDist "
        "CurrentAccount CurrentAccountName CurrentAvailableRoles CurrentCatalog CurrentClient "
        "CurrentDatabase CurrentDate CurrentDatetime CurrentIpAddress CurrentOrganizationName "
        "CurrentOrganizationUser CurrentRegion CurrentRole CurrentRoleType CurrentSchema "
        "CurrentSchemas CurrentSecondaryRoles CurrentSession CurrentStatement CurrentTime "
        "CurrentTimestamp CurrentTimestampLTZ CurrentTimezone CurrentTransaction CurrentUser "
        "CurrentUserId CurrentVersion CurrentWarehouse DataType Date DateAdd DateBin DateDiff "
        "DateFromParts DateFromUnixDate DateStrToDate DateSub DateToDateStr DateToDi "
        "DateTrunc Datetime DatetimeAdd DatetimeDiff DatetimeSub DatetimeTrunc Day DayOfMonth "
        "DayOfWeek DayOfWeekIso DayOfYear Dayname Decode DecodeCase DecompressBinary "
        "DecompressString Decrypt DecryptRaw Degrees DenseRank DiToDate DotProduct "
        "DynamicIdentifier Elt Encode Encrypt EncryptRaw EndsWith EqualNull EuclideanDistance "
        "Exists Exp Explode ExplodingGenerateSeries Extract Factorial FarmFingerprint "
        "FeaturesAtTime First FirstValue Flatten Float64 Floor Format FromBase FromBase32 "
        "FromBase64 FromISO8601Date FromISO8601Timestamp FromISO8601TimestampNanos FromJson "
        "GapFill GenerateBool GenerateDateArray GenerateDouble GenerateEmbedding GenerateInt "
        "GenerateSeries GenerateTable GenerateText GenerateTimestampArray Generator "
        "GetExtract GetIgnoreCase Getbit Greatest GroupConcat Grouping GroupingId HashAgg Hex "
        "HexDecodeString Hll Host Hour Initcap Inline Int64 IsArray IsAscii IsInf IsNan "
        "IsNullValue JSONArray JSONArrayAgg JSONArrayAppend JSONArrayContains JSONArrayInsert "
        "JSONBContains JSONBContainsAllTopKeys JSONBContainsAnyTopKeys JSONBContainsTopKey "
        "JSONBDeleteAtPath JSONBExists JSONBExtract JSONBExtractScalar JSONBObjectAgg "
        "JSONBPathExists JSONBool JSONCast JSONExists JSONExtract JSONExtractArray "
        "JSONExtractScalar JSONFormat JSONKeys JSONKeysAtDepth JSONObject JSONObjectAgg "
        "JSONRemove JSONSet JSONStripNulls JSONTable JSONType JSONValueArray "
        "JarowinklerSimilarity JustifyDays JustifyHours JustifyInterval Kurtosis Lag Last "
        "LastDay LastValue LaxBool LaxFloat64 LaxInt64 LaxString Lead Least Left Length "
        "Levenshtein List Ln Localtime Localtimestamp Log LogicalAnd LogicalOr Lower LowerHex "
        "MD5 MD5Digest MD5NumberLower64 MD5NumberUpper64 MLForecast MLTranslate MakeInterval "
        "ManhattanDistance Map MapCat MapContainsKey MapDelete MapFromEntries MapInsert "
        "MapKeys MapPick MapSize MatchAgainst Max Median Min Minhash MinhashCombine Minute "
        "Mode Month Monthname MonthsBetween Nanvl Negative NetFunc NextDay NextValueFor "
        "Normal Normalize NthValue Ntile Nullif NumberToStr Nvl2 ObjectAgg ObjectId "
        "ObjectIdentifier ObjectInsert ObjectTransform OpenJSON Overlay Pad ParameterizedAgg "
        "ParseBignumeric ParseDatetime ParseIp ParseJSON ParseNumeric ParseTime ParseUrl "
        "PercentRank PercentileCont PercentileDisc Pi Posexplode PosexplodeOuter Predict "
        "PreviousDay Quantile Quarter Radians Rand Randn Randstr RangeBucket RangeN Rank "
        "ReadCSV ReadParquet Reduce RegDomain RegexpCount RegexpExtract RegexpExtractAll "
        "RegexpFullMatch RegexpInstr RegexpReplace RegexpSplit RegexpSubstr RegrAvgx RegrAvgy "
        "RegrCount RegrIntercept RegrR2 RegrSlope RegrSxx RegrSxy RegrSyy RegrValx RegrValy "
        "Repeat Replace Reverse Right Rint Round RowNumber RtrimmedLength SHA SHA1Digest SHA2 "
        "SHA2Digest SafeAdd SafeConvertBytesToString SafeDivide SafeFunc SafeMultiply "
        "SafeNegate SafeSubtract Search SearchIp Sec Sech Second Secret Seq1 Seq2 Seq4 Seq8 "
        "SessionUser Shuffle Sign Sin Sinh Skewness Soundex SoundexP123 Space Split SplitPart "
        "SplitToTable Sqrt StDistance StPoint Stack StandardHash StarMap StartsWith Stddev "
        "StddevPop StddevSamp StrPosition StrToDate StrToMap StrToTime StrToUnix String "
        "StringToArray StripNullValue Strtok StrtokSplitToTable StrtokToArray Struct "
        "StructExtract Stuff Substring SubstringIndex Sum Systimestamp Tan Tanh Time TimeAdd "
        "TimeDiff TimeFromParts TimeSlice TimeStrToDate TimeStrToTime TimeStrToUnix TimeSub "
        "TimeToStr TimeToTimeStr TimeToUnix TimeTrunc Timestamp TimestampAdd TimestampDiff "
        "TimestampFromParts TimestampLtzFromParts TimestampSub TimestampTrunc "
        "TimestampTzFromParts ToArray ToBase32 ToBase64 ToBinary ToBoolean ToChar "
        "ToCodePoints ToDays ToDecfloat ToDouble ToFile ToMap ToNumber ToVariant Transform "
        "Translate Trim Trunc Try TryBase64DecodeBinary TryBase64DecodeString TryCast "
        "TryHexDecodeBinary TryHexDecodeString TryToDecfloat TsOrDiToDi TsOrDsAdd TsOrDsDiff "
        "TsOrDsToDate TsOrDsToDateStr TsOrDsToDatetime TsOrDsToTime TsOrDsToTimestamp Typeof "
        "Unhex Unicode Uniform UnixDate UnixMicros UnixMillis UnixSeconds UnixToStr "
        "UnixToTime UnixToTimeStr Unnest Upper UtcDate UtcTime UtcTimestamp Uuid VarMap "
        "Variance VariancePop VectorSearch Week WeekOfYear WeekStart WeightString WidthBucket "
        "XMLElement XMLGet XMLTable Year YearOfWeek YearOfWeekIso Zipf _ExplodeOuter "
    ),
    "predicates": (
        "Between EQ GT GTE Glob ILike In Is LT LTE Like NEQ NullSafeEQ NullSafeNEQ SimilarTo "
    ),
    "shapes": (
        "Add BitwiseAnd BitwiseLeftShift BitwiseOr BitwiseRightShift BitwiseXor Div Dot "
        "HexString IntDiv Literal Mod Mul Sub "
    ),
    "functions predicates": ("And Case If Or RegexpILike RegexpLike Xor "),
    "functions shapes": ("Anonymous Chr Concat Pow "),
}

# the classes only functions.py claims whose handler is more than functions.function
# alone: a size rule (CLASS_HOOKS in resources.py) or a handler of their own (types)
_NOT_BARE = (
    "ArrayAgg ArrayConcatAgg DataType ExplodingGenerateSeries Format GenerateDateArray "
    "GenerateSeries Generator GroupConcat JSONArrayAgg JSONBObjectAgg JSONObjectAgg "
    "ObjectIdentifier Pad Repeat Space"
)


def _compose(handlers: list[Handler]) -> Handler:
    if len(handlers) == 1:
        return handlers[0]
    chain = tuple(handlers)

    def composed(run: Run, node: exp.Expr, scope: Scope) -> bool:
        done = False
        for handler in chain:
            if handler(run, node, scope):
                done = True
        return done

    return composed


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


_PLAIN_SET = frozenset(PLAIN)


def _claim(cls: type[exp.Expr], modules: Sequence[str]) -> list[Handler]:
    """The handlers of ``cls`` from ``modules`` (names, in ``_ORDER``), in the order they run."""
    claims: list[Handler] = [plain] if cls in _PLAIN_SET else []
    for name in modules:
        handler = getattr(_module(name), "RULES", {}).get(cls)
        if handler is not None:
            claims = [handler] if claims in ([], [plain]) else [*claims, handler]
    # a write of any subclass is a write; COLUMNS(...) and #n are columns, not calls
    if not claims and issubclass(cls, WRITE_NODES):
        claims = [_module("statements").RULES[exp.Insert]]
    if cls in (exp.Columns, exp.PositionalColumn, exp.Star):
        claims = [_module("columns").RULES[cls]]
    if cls is exp.Anonymous:
        claims = [_module("functions").function, _module("shapes").anonymous]
    return claims


def _stub(cls: type[exp.Expr], modules: tuple[str, ...]) -> Handler:
    def first(run: Run, node: exp.Expr, scope: Scope) -> bool:
        handler = _compose(_claim(cls, modules))
        _TABLE[cls] = handler  # later lookups find the handler itself
        return handler(run, node, scope)

    return first


_TABLE: dict[type[exp.Expr], Handler] = dict.fromkeys(PLAIN, plain)
for _modules, _names in _CLAIMS.items():
    for _cls in _classes(*_names.split()):
        _TABLE[_cls] = _stub(_cls, tuple(_modules.split()))

TABLE: Mapping[type[exp.Expr], Handler] = MappingProxyType(_TABLE)
# classes with no rule of their own: the walk only visits their children
PLAIN_CLASSES: frozenset[type[exp.Expr]] = frozenset(c for c, h in _TABLE.items() if h is plain)
QUERIES: Mapping[type[exp.Expr], QueryHandler] = MappingProxyType(queries.QUERIES)
_BARE = frozenset(_classes(*_CLAIMS["functions"].split())) - frozenset(_classes(*_NOT_BARE.split()))


def nameless(catalog: Catalog) -> frozenset[type[exp.Expr]]:
    """Function classes that need no visit when written without a name (no meta).

    Such a node is syntax (``a AND b``, ``CASE``, ``CAST``, ``CURRENT_DATE``...) whose class
    the allow-list holds; ``functions.function`` would allow it and do nothing else (no
    size rule applies to the class and no other rule claims it).
    """
    return frozenset(cls for cls in catalog.classes if cls in _BARE)
