"""SafeQuery on the shared corpora: how many malicious statements are caught, how many benign ones blocked.

Run: ``.venv/bin/python benches/corpus_safety.py [--show 10] [--templates]``

Standard policy (see ``tests/safety/_corpus.py``): read-only statement kinds,
``max_rows=1000``, defaults otherwise. For ``sqli/malicious.jsonl`` the schema is
``sqli/app_schema.json`` plus the tables of every ``text2sql/databases/*/schema.sql``,
and those tables are the allow-list; ``generic`` rows are checked as MySQL, ``db2``
and ``firebird`` rows as PostgreSQL. Benign rows are checked against their own
database's schema when it is one of the text2sql databases, and without schema or
allow-list otherwise (the other databases' schemas are not in the shared data).

Prints the rejected share per tag (a row counts under its ``kind`` and each of its
``tags``), the benign block rates, the violation codes that did the work, and the
first ``--show`` rows that got through / were blocked. ``--templates`` then runs
``benches/corpus_template.py`` (template mode: render round trips and verify
rejection), SQLite only.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import shared_data_dir
from tests.safety._corpus import STRICT_TAGS, Guards, run_benign, run_malicious, run_questions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--show", type=int, default=5, help="rows to print that got through / were blocked"
    )
    parser.add_argument(
        "--templates", action="store_true", help="also run the template-mode corpus bench"
    )
    parser.add_argument(
        "--functions",
        action="store_true",
        help="list the distinct functions the benign corpora call, and whether each is allowed",
    )
    args = parser.parse_args(argv)

    data = shared_data_dir()
    guards = Guards(data)
    start = time.perf_counter()
    total, rejected, tag_total, tag_rejected, passed = run_malicious(guards)
    elapsed = time.perf_counter() - start
    print(
        f"malicious.jsonl: {rejected:,} of {total:,} rejected ({100 * rejected / total:.2f}%), {elapsed:.1f} s"
    )
    print(f"  {'tag':<16} {'rejected':>9} {'rows':>7} {'share':>8}  required")
    for tag in sorted(tag_total, key=lambda t: -tag_total[t]):
        need = "100%" if tag in STRICT_TAGS else ""
        share = 100 * tag_rejected[tag] / tag_total[tag]
        print(f"  {tag:<16} {tag_rejected[tag]:>9,} {tag_total[tag]:>7,} {share:>7.2f}%  {need}")
    codes: Counter[str] = Counter()
    for _row, verdict in _verdicts(guards):
        if verdict.violations:
            codes[verdict.violations[0].code.value] += 1
    print(
        "  first violation code of rejected rows:",
        ", ".join(f"{c} {n}" for c, n in codes.most_common()),
    )
    if passed and args.show:
        print(f"  got through ({len(passed)}), first {args.show}:")
        for row, _ in passed[: args.show]:
            print(f"    [{row['kind']}] {row['sql'][:150]}")
    for name in ("benign", "tricky"):
        n, blocked = run_benign(guards, name)
        print(f"\n{name}.jsonl: {len(blocked):,} of {n:,} blocked ({100 * len(blocked) / n:.2f}%)")
        for row, verdict in blocked[: args.show]:
            why = ", ".join(v.code.value for v in verdict.violations)
            print(f"    [{row['dialect']}/{row.get('db')}] {why}: {row['sql'][:150]}")
    n, blocked = run_questions(guards)
    print(f"\ntext2sql/questions.jsonl gold SQL (own schema): {len(blocked):,} of {n:,} blocked")
    if args.functions:
        from tests.safety._corpus import corpus_functions

        print("\nfunctions the benign corpora call (name: calls; * = refused):")
        for dialect, names in sorted(corpus_functions(guards).items()):
            refused = [n for n, (_c, ok) in names.items() if not ok]
            listed = ", ".join(
                f"{'*' if not ok else ''}{name}:{calls}"
                for name, (calls, ok) in sorted(names.items(), key=lambda kv: -kv[1][0])
            )
            print(f"  {dialect} ({len(names)} distinct, {len(refused)} refused): {listed}")
    if args.templates:
        try:
            from benches import corpus_template
        except ImportError as exc:
            print(f"\ntemplate mode unavailable: {exc}")
            return
        print("\n--- template mode (benches/corpus_template.py --no-servers --rounds 1) ---")
        sys.argv = [sys.argv[0], "--no-servers", "--rounds", "1"]
        corpus_template.main()


def _verdicts(guards: Guards):  # type: ignore[no-untyped-def]
    from tests.safety._corpus import rows

    for row in rows(guards.data / "sqli" / "malicious.jsonl"):
        yield row, guards.malicious(row["dialect"]).check(row["sql"])


if __name__ == "__main__":
    main()
