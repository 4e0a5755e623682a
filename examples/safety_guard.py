"""SafeQuery in front of a real SQLite database: a tenant only ever reads its own rows.

Run: ``python examples/safety_guard.py``
"""

from __future__ import annotations

import sqlite3

from avl.errors import UnsafeQueryError
from avl.safety import Policy, PolicySet

con = sqlite3.connect(":memory:")
con.executescript(
    """
    CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, password_hash TEXT, tenant_id INTEGER);
    CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total REAL, tenant_id INTEGER);
    INSERT INTO users VALUES (1, 'ann', 'x1', 1), (2, 'bob', 'x2', 2);
    INSERT INTO orders VALUES (1, 1, 10.5, 1), (2, 1, 99.0, 1), (3, 2, 12.0, 2);
    """
)
schema = {
    "users": ["id", "name", "password_hash", "tenant_id"],
    "orders": ["id", "user_id", "total", "tenant_id"],
}
roles = PolicySet(
    {
        "tenant": Policy(
            dialect="sqlite",
            schema=schema,
            allowed_tables=list(schema),
            denied_columns=["users.password_hash"],
            max_rows=100,
            row_filters={"orders": "tenant_id = :tenant", "users": "tenant_id = :tenant"},
        ),
    }
)

questions = [
    "SELECT u.name, SUM(o.total) AS spent FROM users u JOIN orders o ON o.user_id = u.id GROUP BY u.name",
    "SELECT name, password_hash FROM users",
    "SELECT name FROM users WHERE name = '' OR '1'='1'",
    "SELECT name FROM users; DROP TABLE orders",
    # a column list renames the columns: the denied mark follows password_hash to c
    "WITH t(a, b, c, d) AS (SELECT * FROM users) SELECT c FROM t",
    # functions must be on the SQLite allow-list; load_extension never is
    "SELECT load_extension('/tmp/evil.so')",
    "SELECT my_udf(total) FROM orders",
    # two unrelated tables: a cartesian product
    "SELECT users.name, orders.total FROM users, orders",
]
for sql in questions:
    try:
        safe = roles.ensure(sql, role="tenant", params={"tenant": 1})
    except UnsafeQueryError as exc:
        print(f"refused {exc.codes}: {sql}")
        continue
    print(f"ran: {safe}")
    print("   ->", con.execute(safe).fetchall())
