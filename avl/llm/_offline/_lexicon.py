"""The words that carry a question's intent rather than its content (pure data).

Every entry is a pattern of ordinary English, not a phrase of any question set: the
phrases that ask for a count, an aggregate, an order, a comparison, a negation; the
verbs that ask to change data; the phrases that address the model instead of the
database. Multi-word phrases are tuples of lower-cased words.
"""

from __future__ import annotations

__all__: list[str] = []

# ---------------------------------------------------------------- numbers
#: Number words read as numbers ("top three", "at least two").
NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "fifty": 50,
    "hundred": 100,
    "single": 1,
    "once": 1,
    "twice": 2,
    "thrice": 3,
}
#: Number words that only count when a comparison or a ranking stands next to them
#: ("more than once", "top ten"); alone they are ordinary words ("one of the...").
WEAK_NUMBER_WORDS = frozenset({"one", "single", "once", "zero"})

# ---------------------------------------------------------------- aggregates
#: Phrases asking for a count ("how many X", "the number of X", "count the X").
COUNT_PHRASES = (
    ("how", "many"),
    ("number", "of"),
    ("numbers", "of"),
    ("count", "of"),
    ("count",),
    ("total", "number"),
    ("amount", "of"),
)
AVG_WORDS = frozenset({"average", "avg", "mean"})
SUM_WORDS = frozenset({"total", "sum", "combined", "overall", "altogether", "together"})
#: Words after a measure that sum it ("the area they cover together").
SUM_AFTER = frozenset({"together", "altogether", "combined", "overall"})
#: "How many types of X", "how many kinds of X": distinct values of X.
KIND_WORDS = frozenset({"type", "types", "kind", "kinds", "sort", "sorts", "variety", "varieties"})
#: Units of money after a number ("under 10 dollars").
CURRENCY_WORDS = frozenset(
    {"dollar", "dollars", "usd", "euro", "euros", "eur", "pound", "pounds", "gbp", "cents", "yen"}
)
#: Words of columns that hold money.
MONEY_WORDS = frozenset(
    {
        "price",
        "cost",
        "amount",
        "total",
        "fee",
        "salary",
        "revenue",
        "payment",
        "paid",
        "spent",
        "earnings",
        "income",
        "budget",
        "balance",
        "charge",
        "value",
    }
)
#: Values of a two-valued flag column that mean "yes".
TRUE_VALUES = frozenset({"t", "y", "yes", "true", "1"})
FALSE_VALUES = frozenset({"f", "n", "no", "false", "0"})
MAX_WORDS = frozenset(
    {"maximum", "max", "highest", "largest", "biggest", "greatest", "most", "longest", "top"}
)
MIN_WORDS = frozenset({"minimum", "min", "lowest", "smallest", "least", "fewest", "shortest"})
#: Words that name an extreme only as an aggregate of a column ("the maximum age"),
#: never as a ranking of rows.
EXPLICIT_EXTREMES = frozenset({"maximum", "minimum", "max", "min"})

#: Superlatives whose measure is in the word itself: the column is found through the
#: word's stem (``oldest`` -> ``age``), the direction is given here.
SELF_MEASURED = {
    "oldest": "DESC",
    "eldest": "DESC",
    "youngest": "ASC",
    "tallest": "DESC",
    "heaviest": "DESC",
    "lightest": "ASC",
    "cheapest": "ASC",
    "expensive": "DESC",
    "populous": "DESC",
}
#: Superlatives of time: the column is a date, time or year column.
RECENT_WORDS = {
    "latest": "DESC",
    "newest": "DESC",
    "recent": "DESC",
    "recently": "DESC",
    "last": "DESC",
    "earliest": "ASC",
    "oldest": "ASC",
    "first": "ASC",
}
#: "the most common X", "the most popular X": group by X, order by the count.
FREQUENCY_WORDS = frozenset({"common", "frequent", "popular", "often", "usual", "frequently"})
RARE_WORDS = frozenset({"rarest", "uncommon"})

# ---------------------------------------------------------------- comparisons
GT = (
    ("more", "than"),
    ("greater", "than"),
    ("larger", "than"),
    ("bigger", "than"),
    ("higher", "than"),
    ("longer", "than"),
    ("older", "than"),
    ("taller", "than"),
    ("heavier", "than"),
    ("later", "than"),
    ("over",),
    ("above",),
    ("after",),
    ("exceeds",),
    ("exceeding",),
    ("exceed",),
    ("since",),
    ("beyond",),
)
LT = (
    ("less", "than"),
    ("fewer", "than"),
    ("smaller", "than"),
    ("lower", "than"),
    ("shorter", "than"),
    ("younger", "than"),
    ("lighter", "than"),
    ("cheaper", "than"),
    ("earlier", "than"),
    ("under",),
    ("below",),
    ("before",),
)
GE = (
    ("at", "least"),
    ("no", "less", "than"),
    ("not", "less", "than"),
    ("no", "fewer", "than"),
    ("or", "more"),
    ("or", "greater"),
    ("or", "above"),
    ("or", "higher"),
    ("minimum", "of"),
)
LE = (
    ("at", "most"),
    ("no", "more", "than"),
    ("not", "more", "than"),
    ("not", "higher", "than"),
    ("not", "greater", "than"),
    ("or", "less"),
    ("or", "fewer"),
    ("or", "below"),
    ("or", "lower"),
    ("up", "to"),
    ("maximum", "of"),
)
NE = (("other", "than"), ("not", "equal", "to"), ("different", "from"))
EQ = (("equal", "to"), ("equals",), ("exactly",), ("only",), ("just",))

# ---------------------------------------------------------------- ordering
ORDER_WORDS = frozenset(
    {"order", "ordered", "sort", "sorted", "sorting", "rank", "ranked", "arrange", "arranged"}
)
ASC_PHRASES = (
    ("ascending",),
    ("increasing",),
    ("alphabetical",),
    ("alphabetically",),
    ("lowest", "to", "highest"),
    ("smallest", "to", "largest"),
    ("least", "to", "most"),
    ("low", "to", "high"),
    ("youngest", "to", "oldest"),
    ("earliest", "to", "latest"),
    ("oldest", "to", "newest"),
    ("a", "to", "z"),
)
DESC_PHRASES = (
    ("descending",),
    ("decreasing",),
    ("reverse",),
    ("highest", "to", "lowest"),
    ("largest", "to", "smallest"),
    ("most", "to", "least"),
    ("high", "to", "low"),
    ("oldest", "to", "youngest"),
    ("old", "to", "young"),
    ("latest", "to", "earliest"),
    ("newest", "to", "oldest"),
    ("z", "to", "a"),
)
ALPHABETICAL = frozenset({"alphabetical", "alphabetically", "lexicographically"})

# ---------------------------------------------------------------- grouping
#: Phrases before the group key ("for each city", "per country", "by status").
GROUP_PHRASES = (
    ("for", "each"),
    ("for", "every"),
    ("in", "each"),
    ("of", "each"),
    ("by", "each"),
    ("each",),
    ("every",),
    ("per",),
)

# ---------------------------------------------------------------- negation
NEGATIONS = frozenset({"not", "no", "never", "without", "except", "excluding", "none", "nobody"})

DISTINCT_WORDS = frozenset({"distinct", "different", "unique"})

#: Words after which a name is stated ("named X", "called X", "titled X").
NAMING_WORDS = frozenset({"named", "called", "titled", "name", "names"})

#: Verbs of containment for text filters ("whose name contains 'ab'").
CONTAINS_WORDS = frozenset(
    {"contain", "contains", "containing", "include", "includes", "including", "substring", "like"}
)
STARTS_WORDS = frozenset({"start", "starts", "starting", "begin", "begins", "beginning"})
ENDS_WORDS = frozenset({"end", "ends", "ending"})

#: Words asking for every column ("all the details", "all information").
ALL_COLUMNS = frozenset(
    {"details", "detail", "information", "info", "everything", "attributes", "record", "records"}
)

#: Words that ask who/what (answer with a naming column).
PERSON_WORDS = frozenset({"who", "whom", "whose"})

# ---------------------------------------------------------------- intent words
#: Words that shape the question without naming data: they count as understood,
#: never as content that must link to the schema.
FUNCTION_WORDS = frozenset(
    {
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "where",
        "when",
        "how",
        "why",
        "list",
        "show",
        "give",
        "find",
        "return",
        "tell",
        "display",
        "get",
        "fetch",
        "provide",
        "report",
        "compute",
        "calculate",
        "count",
        "identify",
        "select",
        "retrieve",
        "know",
        "want",
        "need",
        "like",
        "would",
        "could",
        "can",
        "may",
        "might",
        "should",
        "will",
        "shall",
        "must",
        "please",
        "many",
        "much",
        "number",
        "numbers",
        "amount",
        "total",
        "sum",
        "average",
        "avg",
        "mean",
        "maximum",
        "minimum",
        "max",
        "min",
        "highest",
        "lowest",
        "largest",
        "smallest",
        "biggest",
        "greatest",
        "least",
        "fewest",
        "most",
        "top",
        "bottom",
        "first",
        "last",
        "order",
        "ordered",
        "sort",
        "sorted",
        "ascending",
        "descending",
        "increasing",
        "decreasing",
        "alphabetical",
        "alphabetically",
        "distinct",
        "different",
        "unique",
        "each",
        "every",
        "per",
        "all",
        "any",
        "some",
        "both",
        "either",
        "neither",
        "also",
        "only",
        "than",
        "more",
        "less",
        "fewer",
        "greater",
        "higher",
        "lower",
        "larger",
        "smaller",
        "bigger",
        "over",
        "above",
        "under",
        "below",
        "between",
        "after",
        "before",
        "since",
        "equal",
        "exactly",
        "respectively",
        "corresponding",
        "along",
        "together",
        "including",
        "contain",
        "contains",
        "containing",
        "named",
        "called",
        "titled",
        "there",
        "exist",
        "exists",
        "existing",
        "listed",
        "stored",
        "recorded",
        "available",
        "possible",
        "value",
        "values",
        "result",
        "results",
        "ones",
        "one",
        "times",
        "time",
        "common",
        "frequent",
        "popular",
        "often",
        "usual",
        "whole",
        "entire",
        "overall",
        "combined",
        "altogether",
        "within",
        "across",
        "among",
        "amongst",
        "throughout",
        "currently",
        "ever",
        "still",
        "yet",
        "again",
        "same",
        "other",
        "others",
        "another",
        "etc",
        "thing",
        "things",
        "table",
        "tables",
        "database",
        "data",
        "record",
        "records",
        "row",
        "rows",
        "entry",
        "entries",
        "item",
        "items",
        "id",
        "ids",
        "name",
        "names",
        "information",
        "info",
        "details",
        "detail",
        "everything",
        "type",
        "types",
        "kind",
        "kinds",
        "category",
        "categories",
        "once",
        "twice",
        "single",
        "range",
        "respective",
        "associated",
        "related",
        "relevant",
        "belong",
        "belongs",
        "belonging",
        "having",
        "got",
        "gets",
        "make",
        "made",
        "use",
        "used",
        "uses",
        "using",
        "include",
        "includes",
        "included",
        "involve",
        "involved",
        "yes",
        "true",
        "false",
        "null",
        "empty",
        "missing",
        "known",
        "unknown",
        "percentage",
        "rate",
        "ratio",
        "share",
        "counts",
        "frequency",
        "frequencies",
        "world",
        "worldwide",
        "everywhere",
    }
)

# ---------------------------------------------------------------- abstention
#: Verbs that ask to change data or the schema, never answered with a read. Only
#: the imperative (first word, or after a polite or modal lead-in) counts: "the
#: deleted orders" and "the last update" are reads.
WRITE_VERBS = frozenset(
    {
        "delete",
        "remove",
        "drop",
        "truncate",
        "update",
        "insert",
        "add",
        "create",
        "alter",
        "rename",
        "modify",
        "change",
        "set",
        "grant",
        "revoke",
        "replace",
        "merge",
        "upsert",
        "erase",
        "wipe",
        "purge",
        "clear",
        "destroy",
        "empty",
        "overwrite",
        "edit",
        "append",
        "store",
        "save",
        "write",
        "put",
        "assign",
        "increase",
        "decrease",
        "raise",
        "lower",
        "reset",
        "cancel",
        "mark",
        "register",
        "enroll",
        "kill",
        "execute",
        "run",
        "commit",
        "rollback",
        "vacuum",
        "attach",
        "detach",
        "pragma",
        "restore",
        "import",
        "load",
        "upload",
        "copy",
        "move",
        "transfer",
        "give",
    }
)
#: Of the write verbs, those that are also ordinary read requests when their object
#: is not a data change ("give me the names" is a read; "give alice admin rights" is a
#: grant). They count as writes only with a write object (see ``WRITE_OBJECTS``).
AMBIGUOUS_WRITE_VERBS = frozenset(
    {"give", "run", "execute", "load", "copy", "move", "put", "create", "make", "store"}
)
#: Objects that make an ambiguous verb a change ("give ... privileges").
WRITE_OBJECTS = frozenset(
    {
        "privilege",
        "privileges",
        "permission",
        "permissions",
        "access",
        "rights",
        "right",
        "role",
        "admin",
        "ownership",
        "table",
        "database",
        "schema",
        "index",
        "column",
        "row",
        "rows",
        "record",
        "records",
        "script",
        "command",
        "statement",
        "query",
        "file",
        "backup",
        "view",
        "user",
        "account",
        "new",
    }
)
#: Words that may precede an imperative ("please delete", "can you drop", "I want to
#: update", "let's remove", "go ahead and truncate").
IMPERATIVE_LEADS = frozenset(
    {
        "please",
        "pls",
        "kindly",
        "now",
        "just",
        "then",
        "and",
        "also",
        "can",
        "could",
        "would",
        "will",
        "you",
        "u",
        "i",
        "we",
        "want",
        "wanna",
        "need",
        "like",
        "to",
        "let",
        "lets",
        "let's",
        "us",
        "me",
        "go",
        "ahead",
        "quickly",
        "immediately",
        "how",
        "do",
        "should",
        "must",
        "shall",
        "try",
        "help",
        "a",
        "an",
        "the",
    }
)
#: SQL statement keywords that, leading a question, make it a statement to run.
SQL_WRITE_KEYWORDS = frozenset(
    {
        "delete",
        "drop",
        "update",
        "insert",
        "alter",
        "truncate",
        "create",
        "grant",
        "revoke",
        "replace",
        "merge",
        "attach",
        "detach",
        "pragma",
        "vacuum",
        "reindex",
        "copy",
        "call",
        "exec",
        "execute",
        "set",
        "lock",
        "commit",
        "rollback",
        "begin",
    }
)

#: Phrases that address the model rather than ask the database (prompt injection).
INJECTION_PHRASES = (
    ("ignore", "previous"),
    ("ignore", "all"),
    ("ignore", "the", "above"),
    ("ignore", "above"),
    ("ignore", "prior"),
    ("ignore", "your"),
    ("ignore", "earlier"),
    ("ignore", "any"),
    ("ignore", "these"),
    ("ignore", "those"),
    ("ignore", "instructions"),
    ("disregard", "previous"),
    ("disregard", "all"),
    ("disregard", "the"),
    ("disregard", "your"),
    ("disregard", "prior"),
    ("disregard", "above"),
    ("forget", "previous"),
    ("forget", "all"),
    ("forget", "everything"),
    ("forget", "your"),
    ("forget", "the", "above"),
    ("override", "your"),
    ("override", "the"),
    ("bypass", "the"),
    ("bypass", "your"),
    ("new", "instructions"),
    ("system", "prompt"),
    ("your", "instructions"),
    ("your", "prompt"),
    ("your", "rules"),
    ("previous", "instructions"),
    ("prior", "instructions"),
    ("above", "instructions"),
    ("developer", "mode"),
    ("jailbreak",),
    ("you", "are", "now"),
    ("act", "as"),
    ("pretend", "to", "be"),
    ("pretend", "you"),
    ("roleplay",),
    ("from", "now", "on"),
    ("do", "anything", "now"),
    ("reveal", "your"),
    ("print", "your"),
    ("repeat", "your"),
    ("show", "your", "prompt"),
    ("as", "an", "ai"),
    ("language", "model"),
)
