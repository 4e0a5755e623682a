"""T-SQL (SQL Server) functions SafeQuery allows by name (besides ``typed.py``).

Names from the Transact-SQL function reference
(https://learn.microsoft.com/en-us/sql/t-sql/functions/functions) that sqlglot does not
parse into a typed class. Not checked against a real engine (there is none here).
Absent on purpose: ``OPENROWSET``/``OPENDATASOURCE``/``OPENQUERY``/``OPENXML``, ``xp_*``,
``sp_*``, ``fn_*`` system functions, ``DB_NAME``/``USER_NAME``/``SUSER_*``/``HOST_NAME``/
``OBJECT_ID``/``SERVERPROPERTY`` and the other metadata and security functions.
"""

from avl.safety.allowlists._doc import Doc

ENGINE = "SQL Server"
DOCS = "https://learn.microsoft.com/en-us/sql/t-sql/functions/"

FUNCTIONS: tuple[Doc, ...] = (
    Doc(
        DOCS + "string-functions-transact-sql",
        "scalar",
        "charindex patindex stuff str quotename difference replicate nchar len string_escape",
    ),
    Doc(
        DOCS + "date-and-time-data-types-and-functions-transact-sql",
        "scalar",
        "datename datepart eomonth sysdatetime sysutcdatetime getutcdate "
        "datetimefromparts datetime2fromparts smalldatetimefromparts datetrunc isdate "
        "switchoffset todatetimeoffset",
    ),
    Doc(
        DOCS + "logical-functions-choose-transact-sql",
        "scalar",
        "choose iif isnull isnumeric try_convert try_parse parse",
    ),
    Doc(
        DOCS + "aggregate-functions-transact-sql",
        "aggregate",
        "count_big stdev stdevp var varp string_agg approx_count_distinct",
    ),
    Doc(DOCS + "mathematical-functions-transact-sql", "scalar", "square log10 rand"),
    Doc(
        DOCS + "json-functions-transact-sql",
        "scalar",
        "isjson json_value json_query json_modify",
    ),
    Doc(DOCS + "newid-transact-sql", "scalar", "newid"),
)
