"""SafeQuery templates: render user input safely, and check SQL that legacy code spliced.

Run: ``python examples/template_login.py`` (uses an in-memory SQLite database).
"""

from __future__ import annotations

import sqlite3

from avl.errors import InvalidInputError, UnsafeQueryError
from avl.safety import SafeQuery


def main() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, role TEXT)")
    db.executemany(
        "INSERT INTO users (name, role) VALUES (?, ?)",
        [("O'Brien", "admin"), ("back\\slash", "user"), ("Zoë 😀", "user")],
    )

    login = SafeQuery.template(
        "SELECT id, role FROM users WHERE name = :name AND role <> :banned", dialect="sqlite"
    )
    print("parameters:", login.params)

    # 1. Render: each value becomes exactly one literal (proved by re-parsing).
    for name in ["O'Brien", "back\\slash", "Zoë 😀", "admin' --", "' OR '1'='1"]:
        sql = login.render(name=name, banned="locked")
        print(f"{name!r:16} -> {sql}\n{'':20}rows: {db.execute(sql).fetchall()}")

    # 2. A value SQLite cannot hold is refused clearly.
    try:
        login.render(name="nul\x00byte", banned="locked")
    except InvalidInputError as exc:
        print("refused:", exc)

    # 3. Verify SQL that legacy code built by concatenating strings.
    def legacy(name: str) -> str:
        return f"SELECT id, role FROM users WHERE name = '{name}' AND role <> 'locked'"

    for name in ["O''Brien", "admin' --", "x' OR '1'='1", "x'; DROP TABLE users; --"]:
        sql = legacy(name)
        try:
            print("verified:", login.verify(sql))
        except UnsafeQueryError as exc:
            print("rejected:", exc)


if __name__ == "__main__":
    main()
