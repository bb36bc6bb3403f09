"""``clghub export`` serves every revenue table, in a stable order."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from clghub.config.models import ClghubConfig
from clghub.export import EXPORTS, export_rows
from clghub.workflows import arr, clv, retention
from tests.workflows.ledger_builders import Book, config_with


def test_revenue_exports(engine: Engine) -> None:
    with engine.begin() as connection:
        book = Book(connection)
        for n in range(3):
            account = book.account(f"A{n}")
            book.deal(account, "1000", date(2022, 1 + n, 1), date(2022, 12, 31))
            book.deal(account, "1200", date(2023, 1, 1), type="renewal")
    config: ClghubConfig = config_with(clv={"min_cohort_accounts": 1})
    as_of = date(2023, 6, 30)
    with engine.begin() as connection:
        arr.compute(connection, config, as_of)
        retention.compute(connection, config, as_of)
        clv.compute(connection, config, as_of)
    expected = {
        "arr": ("account_id", "month", "arr"),
        "arr_movements": ("period_kind", "period_start", "account_id", "kind", "amount"),
        "retention": ("period_kind", "cohort_dim", "nrr", "grr", "logo_retention"),
        "clv": ("account_id", "as_of", "clv", "derl", "renewals"),
        "clv_models": ("segment", "alpha", "beta", "diagnostics"),
        "incentives": ("period", "team", "person_key", "amount"),
    }
    with engine.connect() as connection:
        for name, columns in expected.items():
            assert name in EXPORTS
            names, rows = export_rows(connection, name, {"detail": False, "config": config})
            assert set(columns) <= set(names), name
            listed = list(rows)
            if name != "incentives":  # no incentive run here
                assert listed, name
        _, ledger_rows = export_rows(connection, "arr", {})
        keys = [(row["account_id"], row["month"]) for row in ledger_rows]
        assert keys == sorted(keys)
        assert len(keys) == 12 + 11 + 10 + 3 * 6
