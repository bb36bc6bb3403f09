"""Hand-computed ARR ledgers: every contract rule and movement, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from clghub.config.models import ClghubConfig
from clghub.store.models import Opportunity, Quarantine, table_of
from clghub.workflows import arr
from tests.workflows.ledger_builders import Book, config_with, ledger, movements

D = Decimal


def month(year: int, number: int) -> date:
    return date(year, number, 1)


def span(first: date, last: date, value: str) -> dict[date, Decimal]:
    """{month: value} for every month from ``first`` to ``last``."""
    out = {}
    index, end = first.year * 12 + first.month - 1, last.year * 12 + last.month - 1
    while index <= end:
        out[date(index // 12, index % 12 + 1, 1)] = D(value)
        index += 1
    return out


def run(
    engine: Engine,
    build: Callable[[Book], Any],
    as_of: date,
    config: ClghubConfig | None = None,
) -> tuple[Any, dict[str, int | float]]:
    with engine.begin() as connection:
        built = build(Book(connection))
    with engine.begin() as connection:
        counts = arr.compute(connection, config or ClghubConfig(), as_of)
    return built, counts


def quarantined(connection: Connection) -> dict[str, tuple[str, bool]]:
    """{source_id: (reason, resolved)} of the ARR workflow's quarantine."""
    table = table_of(Quarantine)
    rows = connection.execute(
        select(table).where(table.c.source == "workflow", table.c.stream == "arr")
    )
    return {r.source_id: (r.reason, r.resolved_at is not None) for r in rows}


def test_new_contract_with_default_term_then_churn(engine: Engine) -> None:
    def build(book: Book) -> int:
        acme = book.account("Acme")
        book.deal(acme, "12000", date(2024, 1, 15))  # no end: 2024-01-15 .. 2025-01-14
        return acme

    acme, counts = run(engine, build, date(2025, 3, 10))
    with engine.connect() as connection:
        assert ledger(connection) == {acme: span(month(2024, 1), month(2024, 12), "12000")}
        assert movements(connection, "month") == {
            (acme, month(2024, 1)): ("new", D("12000")),
            (acme, month(2025, 1)): ("churn", D("12000")),
        }
        assert movements(connection, "quarter") == {
            (acme, month(2024, 1)): ("new", D("12000")),
            (acme, month(2025, 1)): ("churn", D("12000")),
        }
    assert counts["ledger_rows"] == 12
    assert counts["active_accounts"] == 0


def test_mid_term_upgrade_and_contraction_within_the_term(engine: Engine) -> None:
    def build(book: Book) -> int:
        acme = book.account("Acme")
        book.deal(acme, "12000", date(2024, 1, 1), date(2024, 12, 31))
        book.deal(acme, "6000", date(2024, 4, 10), date(2024, 12, 31), type="expansion")
        # No end: the default term would run to 2025-08-31; the base term ends first.
        book.deal(acme, "3000", date(2024, 9, 1), type="contraction")
        return acme

    acme, counts = run(engine, build, date(2024, 12, 20))
    with engine.begin() as connection:
        assert ledger(connection) == {
            acme: span(month(2024, 1), month(2024, 3), "12000")
            | span(month(2024, 4), month(2024, 8), "18000")
            | span(month(2024, 9), month(2024, 12), "15000")
        }
        assert movements(connection, "month") == {
            (acme, month(2024, 1)): ("new", D("12000")),
            (acme, month(2024, 4)): ("expansion", D("6000")),
            (acme, month(2024, 9)): ("contraction", D("3000")),
        }
        # Quarters compare ends: Q2 ended at 18,000, Q3 at 15,000.
        assert movements(connection, "quarter") == {
            (acme, month(2024, 1)): ("new", D("12000")),
            (acme, month(2024, 4)): ("expansion", D("6000")),
            (acme, month(2024, 7)): ("contraction", D("3000")),
        }
        terms = connection.execute(
            arr.current_term_end_query(ClghubConfig(), date(2024, 12, 20))
        ).all()
        assert [tuple(t) for t in terms] == [(acme, date(2024, 12, 31), D("15000"))]
    assert counts["arr"] == 15000.0


def test_renewals_replace_the_previous_contract_from_their_start(engine: Engine) -> None:
    def build(book: Book) -> int:
        acme = book.account("Acme")
        book.deal(acme, "10000", date(2023, 1, 1), date(2023, 12, 31))
        # Early renewal overlapping the last quarter of the first term.
        book.deal(acme, "12000", date(2023, 10, 1), date(2024, 9, 30), type="renewal")
        # Renewal at a lower price (contraction at renewal), default term.
        book.deal(acme, "9000", date(2024, 10, 1), type="renewal")
        return acme

    acme, _ = run(engine, build, date(2025, 2, 15))
    with engine.connect() as connection:
        assert ledger(connection) == {
            acme: span(month(2023, 1), month(2023, 9), "10000")
            | span(month(2023, 10), month(2024, 9), "12000")
            | span(month(2024, 10), month(2025, 2), "9000")
        }
        assert movements(connection, "month") == {
            (acme, month(2023, 1)): ("new", D("10000")),
            (acme, month(2023, 10)): ("expansion", D("2000")),
            (acme, month(2024, 10)): ("contraction", D("3000")),
        }
        terms = connection.execute(
            arr.current_term_end_query(ClghubConfig(), date(2025, 2, 15))
        ).all()
        assert [tuple(t) for t in terms] == [(acme, date(2025, 9, 30), D("9000"))]


def test_renewal_closed_late_within_grace_is_not_churn(engine: Engine) -> None:
    def build(book: Book) -> int:
        acme = book.account("Acme")
        book.deal(acme, "10000", date(2023, 1, 1), date(2023, 12, 31))
        book.deal(
            acme, "11000", date(2024, 2, 20), type="renewal", close=date(2024, 2, 25)
        )  # 2024-02-20 .. 2025-02-19, 50 days after the first term
        return acme

    acme, _ = run(engine, build, date(2024, 6, 30))
    with engine.connect() as connection:
        # The first term is extended to 2024-02-19: January is still 10,000.
        assert ledger(connection) == {
            acme: span(month(2023, 1), month(2024, 1), "10000")
            | span(month(2024, 2), month(2024, 6), "11000")
        }
        assert movements(connection, "month") == {
            (acme, month(2023, 1)): ("new", D("10000")),
            (acme, month(2024, 2)): ("expansion", D("1000")),
        }
        terms = connection.execute(
            arr.current_term_end_query(ClghubConfig(), date(2024, 2, 26))
        ).all()
        assert [tuple(t) for t in terms] == [(acme, date(2025, 2, 19), D("11000"))]

    # As of 2024-02-10 the renewal was not closed yet: January shows churn. A later
    # run (above) restates it once the renewal is known.
    with engine.begin() as connection:
        arr.compute(connection, ClghubConfig(), date(2024, 2, 10))
        assert ledger(connection) == {acme: span(month(2023, 1), month(2023, 12), "10000")}
        assert movements(connection, "month")[(acme, month(2024, 1))] == ("churn", D("10000"))


def test_gap_beyond_grace_is_churn_then_reactivation(engine: Engine) -> None:
    def build(book: Book) -> tuple[int, int]:
        late = book.account("Late")
        book.deal(late, "10000", date(2023, 1, 1), date(2023, 12, 31))
        book.deal(late, "10000", date(2024, 3, 1), type="renewal")  # 60 days after
        back = book.account("Back")
        book.deal(back, "5000", date(2023, 1, 1), date(2023, 12, 31))
        # A deal typed "new" is new business: no grace, even 40 days later.
        book.deal(back, "5000", date(2024, 2, 10), type="new")
        return late, back

    config = config_with(reporting={"renewal_grace_days": 30})
    (late, back), _ = run(engine, build, date(2024, 4, 15), config)
    with engine.connect() as connection:
        assert ledger(connection) == {
            late: span(month(2023, 1), month(2023, 12), "10000")
            | span(month(2024, 3), month(2024, 4), "10000"),
            back: span(month(2023, 1), month(2023, 12), "5000")
            | span(month(2024, 2), month(2024, 4), "5000"),
        }
        monthly = movements(connection, "month")
        assert monthly[(late, month(2024, 1))] == ("churn", D("10000"))
        assert monthly[(late, month(2024, 3))] == ("reactivation", D("10000"))
        assert monthly[(back, month(2024, 1))] == ("churn", D("5000"))
        assert monthly[(back, month(2024, 2))] == ("reactivation", D("5000"))
        # The quarter's ends (December and March) are equal: no quarterly movement.
        quarterly = movements(connection, "quarter")
        assert (late, month(2024, 1)) not in quarterly
        assert (back, month(2024, 1)) not in quarterly


def test_multi_year_contract_from_amount_and_currencies(engine: Engine) -> None:
    def build(book: Book) -> dict[str, int]:
        ids = {name: book.account(name) for name in ("usd", "eur", "gbp", "jpy", "chf")}
        # Three years for 360,000: ARR 120,000.
        book.deal(ids["usd"], None, date(2023, 1, 1), date(2025, 12, 31), amount="360000")
        book.deal(ids["eur"], "999.99", date(2024, 1, 1), currency="eur")
        # Six months for 2,500 GBP: ARR 5,000 GBP = 6,350 USD at 1.27.
        book.deal(
            ids["gbp"], None, date(2024, 1, 1), date(2024, 6, 30), currency="GBP", amount="2500"
        )
        book.deal(ids["jpy"], "1234567", date(2024, 1, 1), currency="JPY")
        book.deal(ids["chf"], "1000", date(2024, 1, 1), currency="CHF")
        return ids

    rates = {"EUR": "1.08", "GBP": "1.27", "JPY": "0.0067"}
    config = config_with(reporting={"fx_rates": rates})
    ids, counts = run(engine, build, date(2024, 3, 31), config)
    with engine.connect() as connection:
        march = {account: values[month(2024, 3)] for account, values in ledger(connection).items()}
        assert march == {
            ids["usd"]: D("120000"),
            ids["eur"]: D("1079.9892"),  # 999.99 x 1.08
            ids["gbp"]: D("6350"),
            ids["jpy"]: D("8271.5989"),  # 1,234,567 x 0.0067
        }
        chf_deal = connection.execute(
            select(table_of(Opportunity).c.source_id).where(
                table_of(Opportunity).c.account_id == ids["chf"]
            )
        ).scalar_one()
        assert quarantined(connection) == {
            f"salesforce:{chf_deal}": ("unknown currency CHF (no reporting.fx_rates entry)", False)
        }
    assert counts["deals_quarantined"] == 1

    # With a rate the deal counts and its quarantine entry is resolved.
    fixed = config_with(reporting={"fx_rates": rates | {"CHF": "1.1"}})
    with engine.begin() as connection:
        arr.compute(connection, fixed, date(2024, 3, 31))
        assert ledger(connection)[ids["chf"]][month(2024, 3)] == D("1100")
        assert quarantined(connection) == {
            f"salesforce:{chf_deal}": ("unknown currency CHF (no reporting.fx_rates entry)", True)
        }


def test_deals_that_do_not_count(engine: Engine) -> None:
    start = date(2024, 1, 1)

    def build(book: Book) -> dict[str, int]:
        acme = book.account("Acme")
        gone = book.account("Gone", deleted=True)
        book.deal(acme, "1000", start)
        book.deal(acme, "5", start, type="expansion", status="lost")
        book.deal(acme, "7", start, type="expansion", status="open")
        book.deal(acme, "11", start, type="expansion", deleted=True)
        book.deal(gone, "13", start)
        book.deal(None, "17", start)
        book.deal(acme, "19", start, type="expansion", close=date(2024, 7, 1))  # closed later
        return {
            "acme": acme,
            "upsell": book.deal(acme, "23", start, type="upsell"),
            "backwards": book.deal(acme, "29", start, date(2023, 12, 1), type="expansion"),
            "negative": book.deal(acme, "-31", start, type="expansion"),
            "empty": book.deal(acme, None, start, type="expansion"),
            "orphan": book.deal(acme, "37", date(2023, 6, 1), date(2023, 12, 31), type="expansion"),
            "overdrawn": book.deal(acme, "1500", date(2024, 3, 1), type="contraction"),
        }

    ids, counts = run(engine, build, date(2024, 4, 30))
    with engine.connect() as connection:
        # March and April: 1,000 - 1,500 is below zero, so those months count as zero.
        assert ledger(connection) == {ids["acme"]: span(month(2024, 1), month(2024, 2), "1000")}
        opportunity = table_of(Opportunity)
        source_ids = dict(
            connection.execute(select(opportunity.c.id, opportunity.c.source_id)).all()
        )
        reasons = {
            source_id.removeprefix("salesforce:"): reason
            for source_id, (reason, _) in quarantined(connection).items()
        }
        assert reasons == {
            source_ids[ids["upsell"]]: "unknown opportunity type 'upsell'",
            source_ids[ids["backwards"]]: "contract ends before it starts",
            source_ids[ids["negative"]]: "negative ARR",
            source_ids[ids["empty"]]: "won deal without ARR or amount",
            source_ids[ids["orphan"]]: "expansion starts when no base contract is in force",
            source_ids[ids["overdrawn"]]: (
                "contraction removes more ARR than the account has; those months count as zero"
            ),
        }
    assert counts["deals_quarantined"] == 6


def test_untyped_deals_are_new_then_renewals(engine: Engine) -> None:
    def build(book: Book) -> int:
        acme = book.account("Acme")
        book.deal(acme, "8000", date(2023, 5, 1), type=None)  # first: new
        book.deal(acme, "9000", date(2024, 6, 15), type=None)  # renewal 45 days late: bridged
        return acme

    acme, _ = run(engine, build, date(2024, 8, 31))
    with engine.connect() as connection:
        assert ledger(connection) == {
            acme: span(month(2023, 5), month(2024, 5), "8000")
            | span(month(2024, 6), month(2024, 8), "9000")
        }
        assert movements(connection, "month") == {
            (acme, month(2023, 5)): ("new", D("8000")),
            (acme, month(2024, 6)): ("expansion", D("1000")),
        }


def test_month_ends_and_the_open_month(engine: Engine) -> None:
    def build(book: Book) -> dict[str, int]:
        ids = {name: book.account(name) for name in ("full", "short", "open", "future")}
        # Ends on the last day of February: February counts; a day earlier, it does not.
        book.deal(ids["full"], "100", date(2024, 1, 1), date(2024, 2, 29))
        book.deal(ids["short"], "100", date(2024, 1, 1), date(2024, 2, 28))
        # Ends after as_of within the open month: March is valued on as_of.
        book.deal(ids["open"], "100", date(2024, 1, 1), date(2024, 3, 25))
        # Starts after as_of (signed already): not yet ARR.
        book.deal(ids["future"], "100", date(2024, 3, 25), close=date(2024, 3, 1))
        return ids

    ids, _ = run(engine, build, date(2024, 3, 20))
    with engine.connect() as connection:
        assert ledger(connection) == {
            ids["full"]: span(month(2024, 1), month(2024, 2), "100"),
            ids["short"]: span(month(2024, 1), month(2024, 1), "100"),
            ids["open"]: span(month(2024, 1), month(2024, 3), "100"),
        }
        monthly = movements(connection, "month")
        assert monthly[(ids["short"], month(2024, 2))] == ("churn", D("100"))
        assert monthly[(ids["full"], month(2024, 3))] == ("churn", D("100"))
        assert (ids["open"], month(2024, 3)) not in monthly


def test_fiscal_quarters_follow_the_fiscal_year(engine: Engine) -> None:
    def build(book: Book) -> int:
        acme = book.account("Acme")
        book.deal(acme, "1000", date(2024, 1, 1), date(2024, 12, 31))
        book.deal(acme, "500", date(2024, 2, 1), date(2024, 12, 31), type="expansion")
        return acme

    config = config_with(reporting={"fiscal_year_start_month": 2})
    acme, _ = run(engine, build, date(2025, 3, 1), config)
    with engine.connect() as connection:
        # Fiscal quarters: Nov-Jan, Feb-Apr, ...
        assert movements(connection, "quarter") == {
            (acme, month(2023, 11)): ("new", D("1000")),
            (acme, month(2024, 2)): ("expansion", D("500")),
            (acme, month(2024, 11)): ("churn", D("1500")),
        }


def test_rerun_gives_the_same_rows(engine: Engine) -> None:
    def build(book: Book) -> int:
        acme = book.account("Acme")
        book.deal(acme, "1000", date(2024, 1, 1))
        book.deal(acme, "1", date(2024, 1, 1), currency="XXX")
        return acme

    config = ClghubConfig()
    _, first = run(engine, build, date(2024, 6, 30), config)
    with engine.begin() as connection:
        before = (ledger(connection), movements(connection), movements(connection, "quarter"))
        second = arr.compute(connection, config, date(2024, 6, 30))
        after = (ledger(connection), movements(connection), movements(connection, "quarter"))
        seen = connection.execute(select(table_of(Quarantine).c.seen_count)).scalars().all()
    assert before == after
    assert first == second
    assert seen == [2]


def test_a_deal_deleted_in_the_crm_leaves_the_ledger(engine: Engine) -> None:
    def build(book: Book) -> int:
        acme = book.account("Acme")
        book.deal(acme, "1000", date(2024, 1, 1))
        return acme

    run(engine, build, date(2024, 3, 31))
    with engine.begin() as connection:
        connection.execute(update(table_of(Opportunity)).values(is_deleted=True))
        arr.compute(connection, ClghubConfig(), date(2024, 3, 31))
        assert ledger(connection) == {}
        assert movements(connection) == {}
