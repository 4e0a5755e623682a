"""``avl costs``: showback/chargeback from a History, with the month-end forecast."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from avl.cli._common import EXIT_OK, history_url

__all__ = ["history_url", "register"]


def register(sub: Any) -> None:
    """Add ``costs`` to the subcommands."""
    p = sub.add_parser(
        "costs",
        help="cost per user, role or model from a History (showback/chargeback)",
        description="Cost, tokens and questions per group over a period, from the History "
        "every question is recorded in; optionally the month-end forecast.",
        epilog="examples:\n"
        "  avl costs --history sqlite:///history.db --by user --since 30d\n"
        "  avl costs --config avl.toml --by model --since 2025-12-01 --csv > december.csv\n"
        "  avl costs --history postgresql://host/db --by role --forecast --json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--history", metavar="URL", help="History URL (default: AVL_HISTORY)")
    p.add_argument("--config", metavar="FILE", help="console config whose history to read")
    p.add_argument(
        "--by",
        default="user",
        choices=("user", "role", "model", "outcome", "day"),
        help="group by (default user)",
    )
    p.add_argument(
        "--since",
        default="30d",
        metavar="WHEN",
        help="start: 30d, 12h, 2w, an ISO date or time (default 30d)",
    )
    p.add_argument("--until", default=None, metavar="WHEN", help="end (default now)")
    p.add_argument(
        "--forecast", action="store_true", help="add the month-end projection from the daily trend"
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header")
    p.set_defaults(func=_cmd_costs)


def _money(value: float) -> str:
    return f"{value:.4f}"


def _cmd_costs(args: argparse.Namespace, out: TextIO) -> int:
    import datetime as dt

    from avl.cli._render import render_json, render_table
    from avl.costs import cost_report
    from avl.history import History

    history = History(history_url(args), create=False)  # reading creates nothing
    try:
        report = cost_report(
            history, by=args.by, since=args.since, until=args.until, forecast=args.forecast
        )
    finally:
        history.close()
    if args.json:
        render_json(report.to_dict(), out)
        return EXIT_OK
    if args.csv:
        out.write(report.to_csv())
        return EXIT_OK

    def when(t: float) -> str:
        return dt.datetime.fromtimestamp(t, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M")

    out.write(
        f"cost by {report.by}, {when(report.since)} to {when(report.until)} UTC: "
        f"{_money(report.total_usd)} USD over {report.questions} question(s)\n"
    )
    render_table(
        (report.by, "questions", "tokens_in", "tokens_out", "cost_usd", "share", "unpriced"),
        [
            (
                r.key or "-",
                r.questions,
                r.tokens_in,
                r.tokens_out,
                _money(r.cost_usd),
                f"{100 * r.share:.1f}%",
                r.unpriced,
            )
            for r in report.rows
        ],
        out,
    )
    f = report.forecast
    if f is not None:
        out.write(
            f"\nforecast for {f.month}: {_money(f.projected_usd)} USD "
            f"(month to date {_money(f.month_to_date_usd)}, today's trend "
            f"{_money(f.daily_rate_usd)}/day, day {f.days_elapsed + 1} of {f.days_in_month})\n"
            f"method: {f.method}\n"
        )
    return EXIT_OK
