"""Showback/chargeback from a History, the forecast, and ``avl costs``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from avl.cli import main
from avl.costs import cost_report, daily_costs, forecast_month, parse_since
from avl.errors import InvalidInputError
from avl.history import Entry, History
from avl.testing import FakeClock

NOW = dt.datetime(2025, 12, 11, 12, tzinfo=dt.timezone.utc).timestamp()
DAY = 86_400.0


def _history(path: Path | None = None) -> History:
    h = History(f"sqlite:///{path}" if path else "memory://")
    rows = [
        # (days ago, user, role, model, cost, tokens in/out)
        (0.1, "ann", "analyst", "openai/gpt-4o", 0.50, 1000, 100),
        (1.0, "ann", "analyst", "openai/gpt-4o-mini", 0.02, 800, 50),
        (2.0, "bob", "admin", "openai/gpt-4o", 1.00, 2000, 300),
        (3.0, "bob", "admin", "offline/demo", 0.0, 10, 5),
        (4.0, "cid", "", "custom/unknown", None, 500, 20),
        (45.0, "ann", "analyst", "openai/gpt-4o", 9.00, 1, 1),  # outside 30d
    ]
    h.record_many(
        Entry(
            time=NOW - ago * DAY,
            user=user,
            role=role,
            model=model,
            cost_usd=cost,
            tokens_in=ti,
            tokens_out=to,
            question="q",
        )
        for ago, user, role, model, cost, ti, to in rows
    )
    return h


def test_by_user() -> None:
    r = cost_report(_history(), by="user", since="30d", clock=FakeClock(start=NOW))
    assert r.total_usd == pytest.approx(1.52)
    assert r.questions == 5
    assert [(x.key, x.questions, round(x.cost_usd, 4)) for x in r.rows] == [
        ("bob", 2, 1.0),
        ("ann", 2, 0.52),
        ("cid", 1, 0.0),
    ]
    assert [round(x.share, 4) for x in r.rows] == [0.6579, 0.3421, 0.0]
    assert (r.rows[2].unpriced, r.rows[2].tokens_in) == (1, 500)


def test_by_model_and_role() -> None:
    clock = FakeClock(start=NOW)
    by_model = cost_report(_history(), by="model", since="30d", clock=clock)
    assert by_model.rows[0].key == "openai/gpt-4o"
    assert by_model.rows[0].cost_usd == pytest.approx(1.5)
    assert by_model.rows[0].tokens_in == 3000
    by_role = cost_report(_history(), by="role", since="30d", clock=clock)
    assert {x.key: round(x.cost_usd, 2) for x in by_role.rows} == {
        "admin": 1.0,
        "analyst": 0.52,
        "": 0.0,
    }


def test_window_bounds() -> None:
    clock = FakeClock(start=NOW)
    r = cost_report(_history(), since="60d", until="2025-11-01", clock=clock)
    assert r.total_usd == pytest.approx(9.0)
    with pytest.raises(InvalidInputError, match="until"):
        cost_report(_history(), since="2025-12-10", until="2025-12-01", clock=clock)
    with pytest.raises(InvalidInputError, match="by"):
        cost_report(_history(), by="team")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30d", NOW - 30 * DAY),
        ("12h", NOW - 12 * 3600),
        ("2w", NOW - 14 * DAY),
        ("90m", NOW - 5400),
        ("2025-12-01", dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc).timestamp()),
        (
            "2025-12-01T06:00:00+01:00",
            dt.datetime(2025, 12, 1, 5, tzinfo=dt.timezone.utc).timestamp(),
        ),
        (1_700_000_000, 1_700_000_000.0),
    ],
)
def test_parse_since(value: object, expected: float) -> None:
    assert parse_since(value, now=NOW) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["yesterday", "30 days", "-3d", "", float("nan"), True, None])
def test_parse_since_refuses(value: object) -> None:
    with pytest.raises(InvalidInputError, match="since"):
        parse_since(value, now=NOW)  # type: ignore[arg-type]


def test_forecast_linear_trend() -> None:
    days = {dt.date(2025, 12, d): 1.0 * d for d in range(1, 11)}
    f = forecast_month(days, today=dt.date(2025, 12, 11))
    # fitted y = day: days 11..31 sum to 441, plus the 55 spent
    assert f.projected_usd == pytest.approx(496.0)
    assert f.month_to_date_usd == 55.0
    assert f.daily_rate_usd == pytest.approx(11.0)
    assert (f.month, f.days_elapsed, f.days_in_month) == ("2025-12", 10, 31)
    assert "least-squares" in f.method


def test_forecast_flat_and_floor_and_today() -> None:
    flat = {dt.date(2025, 11, 20) + dt.timedelta(days=i): 2.0 for i in range(28)}
    f = forecast_month(flat, today=dt.date(2025, 12, 18))
    assert f.daily_rate_usd == pytest.approx(2.0)
    # 17 complete December days at 2, then 14 more days at 2
    assert f.projected_usd == pytest.approx(62.0)
    falling = {dt.date(2025, 12, d): 30.0 - 3 * d for d in range(1, 11)}
    g = forecast_month(falling, today=dt.date(2025, 12, 11))
    assert g.daily_rate_usd == 0.0  # the line is below zero: floored
    assert g.projected_usd == pytest.approx(sum(falling.values()))
    # today's partial spend counts when it is above the trend
    spiky = {**flat, dt.date(2025, 12, 18): 10.0}
    assert forecast_month(spiky, today=dt.date(2025, 12, 18)).projected_usd == pytest.approx(70.0)


def test_forecast_with_little_data_uses_the_mean() -> None:
    days = {dt.date(2025, 12, 1): 1.0, dt.date(2025, 12, 2): 3.0}
    f = forecast_month(days, today=dt.date(2025, 12, 3))
    assert f.daily_rate_usd == pytest.approx(2.0)
    assert f.projected_usd == pytest.approx(4.0 + 29 * 2.0)
    empty = forecast_month({}, today=dt.date(2025, 12, 3))
    assert (empty.projected_usd, empty.month_to_date_usd) == (0.0, 0.0)


def test_daily_costs() -> None:
    d = daily_costs(_history(), since="5d", clock=FakeClock(start=NOW))
    assert d == {
        dt.date(2025, 12, 11): pytest.approx(0.5),
        dt.date(2025, 12, 10): pytest.approx(0.02),
        dt.date(2025, 12, 9): pytest.approx(1.0),
        dt.date(2025, 12, 8): 0.0,
    }


def test_report_with_forecast_json() -> None:
    r = cost_report(_history(), since="30d", forecast=True, clock=FakeClock(start=NOW))
    assert r.forecast is not None
    data = r.to_dict()
    assert data["forecast"]["month"] == "2025-12"
    assert data["rows"][0]["key"] == "bob"
    json.dumps(data)


def test_cli_table_csv_json(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    _history(db).close()
    url = f"sqlite:///{db}"
    out = io.StringIO()
    assert main(["costs", "--history", url, "--by", "user", "--since", "3650d"], out=out) == 0
    text = out.getvalue()
    assert "cost by user" in text
    assert "10.5200 USD over 6 question(s)" in text
    assert text.splitlines()[1].split() == [
        "user",
        "questions",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "share",
        "unpriced",
    ]
    out = io.StringIO()
    assert (
        main(["costs", "--history", url, "--by", "model", "--since", "3650d", "--csv"], out=out)
        == 0
    )
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0][0] == "model"
    assert rows[1][:2] == ["openai/gpt-4o", "3"]
    out = io.StringIO()
    assert (
        main(["costs", "--history", url, "--since", "3650d", "--json", "--forecast"], out=out) == 0
    )
    data = json.loads(out.getvalue())
    assert data["total_usd"] == pytest.approx(10.52)
    assert "method" in data["forecast"]


def test_cli_reads_the_history_from_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AVL_HISTORY", raising=False)
    monkeypatch.delenv("AVL_CONFIG", raising=False)
    db = tmp_path / "h.db"
    _history(db).close()
    cfg = tmp_path / "avl.toml"
    cfg.write_text(f'history = "sqlite:///{db}"\n')
    out = io.StringIO()
    assert main(["costs", "--config", str(cfg), "--since", "3650d", "--json"], out=out) == 0
    assert json.loads(out.getvalue())["questions"] == 6


def test_cli_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AVL_HISTORY", raising=False)
    monkeypatch.delenv("AVL_CONFIG", raising=False)
    err = io.StringIO()
    assert main(["costs"], out=io.StringIO(), err=err) == 2
    assert "--history" in err.getvalue()
    err = io.StringIO()
    code = main(["costs", "--history", "memory://", "--since", "soon"], out=io.StringIO(), err=err)
    assert code == 2
    assert "since" in err.getvalue()
    cfg = tmp_path / "bad.toml"
    cfg.write_text("history = [\n")
    err = io.StringIO()
    assert main(["costs", "--config", str(cfg)], out=io.StringIO(), err=err) == 2
    assert "cannot read config" in err.getvalue()
