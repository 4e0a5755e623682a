"""The database layer the Assistant asks: one engine per kind of database behind
:class:`Database` (see ``_database.py``)."""

from avl.assistant._db._database import Database
from avl.assistant._db._types import Limits, QueryResult, SchemaSnapshot

__all__ = ["Database", "Limits", "QueryResult", "SchemaSnapshot"]
