"""Segments: the CRM's own value when known, else the first matching rule, else the default."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Engine, insert

from clghub.store.models import table_of, utcnow
from clghub.store.revenue import ArrMonth
from clghub.workflows.segments import account_segments
from tests.workflows.builders import World, config

D = date(2026, 6, 15)
SETTINGS = config(
    segments={
        "names": ["smb", "mid_market", "enterprise"],
        "default": "smb",
        "rules": [
            {"name": "enterprise", "min_employees": 1000, "min_arr": "100000"},
            {"name": "mid_market", "min_employees": 200},
            {"name": "mid_market", "min_arr": "50000"},
        ],
    }
)


def test_segments_from_crm_rules_and_default(engine: Engine) -> None:
    with engine.begin() as connection:
        world = World(connection)
        named = world.account("Named", segment="enterprise", employees=5)
        renamed = world.account("Renamed", segment="Strategic", employees=250)
        big = world.account("Big", employees=5000)
        big_rich = world.account("Big and rich", employees=5000)
        rich = world.account("Rich", employees=10)
        rich_last_month = world.account("Rich last month", employees=10)
        small = world.account("Small", employees=10)
        unknown = world.account("Unknown")
        gone = world.account("Gone", deleted=True)
        ledger = [
            (big_rich, D.replace(day=1), "100000"),
            (rich, D.replace(day=1), "50000"),
            (rich_last_month, date(2026, 5, 1), "90000"),
            (small, D.replace(day=1), "49999.9999"),
        ]
        connection.execute(
            insert(table_of(ArrMonth)),
            [
                {"account_id": a, "month": m, "arr": Decimal(v), "computed_at": utcnow()}
                for a, m, v in ledger
            ],
        )
        segments = {
            r.account_id: r.segment for r in connection.execute(account_segments(SETTINGS, D))
        }

    assert segments == {
        named: "enterprise",  # the CRM's value wins over the rules
        renamed: "mid_market",  # not a known name: rules apply (250 employees)
        big: "mid_market",  # enterprise needs both employees and ARR
        big_rich: "enterprise",
        rich: "mid_market",  # ARR this month reaches 50,000
        rich_last_month: "smb",  # only the month as_of falls in counts
        small: "smb",
        unknown: "smb",
    }
    assert gone not in segments


def test_segments_without_arr_rules_need_no_ledger(engine: Engine) -> None:
    settings = config(segments={"rules": [{"name": "enterprise", "min_employees": 1000}]})
    with engine.begin() as connection:
        world = World(connection)
        big = world.account("Big", employees=1000)
        small = world.account("Small", employees=999)
        segments = {
            r.account_id: r.segment for r in connection.execute(account_segments(settings, D))
        }
    assert segments == {big: "enterprise", small: "smb"}
