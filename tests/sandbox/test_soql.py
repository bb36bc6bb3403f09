"""The SOQL parser and its translation to SQLite, without a server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clghub.sandbox.apis import soql
from clghub.sandbox.state import SandboxOptions, SandboxState
from tests.sandbox.crm_fixtures import insert_sf

NOW = datetime(2025, 6, 30, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def state() -> Iterator[SandboxState]:
    empty = SandboxState(SandboxOptions(accounts=1))
    yield empty
    empty.close()


def matching_ids(state: SandboxState, text: str, *, include_deleted: bool = False) -> list[str]:
    query = soql.parse(text)
    where = soql.translate_where(query, include_deleted=include_deleted, now=NOW)
    rows = state.db.execute(
        f'SELECT "Id" FROM "sf_{query.sobject}" WHERE {where.sql} ORDER BY {soql.order_sql(query)}',
        where.params,
    )
    return [row[0] for row in rows]


def literal(value: str) -> str:
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("\b", "\\b")
        .replace("\f", "\\f")
    )
    return f"'{escaped}'"


@settings(max_examples=150, deadline=None)
@given(name=st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s))
def test_any_string_survives_escaping(state: SandboxState, name: str) -> None:
    state.db.execute('DELETE FROM "sf_Contact"')
    wanted = insert_sf(state, "Contact", LastName=name)
    insert_sf(state, "Contact", LastName=name + "x")
    assert matching_ids(state, f"SELECT Id FROM Contact WHERE LastName = {literal(name)}") == [
        wanted
    ]


def test_parse_keeps_select_order_and_canonical_names() -> None:
    query = soql.parse(
        "select systemmodstamp, ID, name from ACCOUNT where NAME like 'a%' "
        "order by SystemModstamp desc nulls last, id limit 10 offset 5"
    )
    assert query.sobject == "Account"
    assert [f.name for f in query.fields] == ["SystemModstamp", "Id", "Name"]
    assert (query.limit, query.offset) == (10, 5)
    assert soql.order_sql(query) == '"SystemModstamp" DESC, "Id" ASC'
    ascending = soql.parse("SELECT Id FROM Account ORDER BY Name NULLS LAST")
    assert soql.order_sql(ascending) == '"Name" COLLATE NOCASE ASC NULLS LAST, "Id" ASC'
    descending = soql.parse("SELECT Id FROM Account ORDER BY Seats__c DESC")
    assert soql.order_sql(descending) == '"Seats__c" DESC NULLS FIRST, "Id" ASC'


@pytest.mark.parametrize(
    ("literal_text", "stored"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000Z"),
        ("2024-01-01T00:00:00.000+0000", "2024-01-01T00:00:00.000Z"),
        ("2024-01-01T05:30:00+05:30", "2024-01-01T00:00:00.000Z"),
        ("2023-12-31T19:00:00.250-05:00", "2024-01-01T00:00:00.250Z"),
    ],
)
def test_datetime_literals_normalize_to_utc(literal_text: str, stored: str) -> None:
    query = soql.parse(f"SELECT Id FROM Account WHERE SystemModstamp >= {literal_text}")
    where = soql.translate_where(query, include_deleted=True, now=NOW)
    assert where.params == (stored,)


def test_values_are_bound_never_interpolated() -> None:
    query = soql.parse(
        "SELECT Id FROM Account WHERE Name = 'x\\' OR 1=1 --' AND Seats__c > 5 "
        "AND Industry IN ('Retail', 'Media')"
    )
    where = soql.translate_where(query, include_deleted=False, now=NOW)
    assert "1=1" not in where.sql
    assert where.params == ("x' OR 1=1 --", 5, "Retail", "Media")


def test_relative_dates(state: SandboxState) -> None:
    state.db.execute('DELETE FROM "sf_Opportunity"')
    old = insert_sf(state, "Opportunity", CloseDate="2025-05-01")
    recent = insert_sf(state, "Opportunity", CloseDate="2025-06-20")
    today = insert_sf(state, "Opportunity", CloseDate="2025-06-30")
    future = insert_sf(state, "Opportunity", CloseDate="2025-07-15")
    assert matching_ids(state, "SELECT Id FROM Opportunity WHERE CloseDate = TODAY") == [today]
    last_30 = matching_ids(state, "SELECT Id FROM Opportunity WHERE CloseDate = LAST_N_DAYS:30")
    assert sorted(last_30) == sorted([recent, today])
    assert matching_ids(state, "SELECT Id FROM Opportunity WHERE CloseDate > TODAY") == [future]
    assert matching_ids(state, "SELECT Id FROM Opportunity WHERE CloseDate < LAST_N_DAYS:30") == [
        old
    ]


def test_deleted_rows_only_with_include_deleted(state: SandboxState) -> None:
    state.db.execute('DELETE FROM "sf_Case"')
    live = insert_sf(state, "Case", Subject="Live")
    gone = insert_sf(state, "Case", Subject="Gone", IsDeleted=1)
    assert matching_ids(state, "SELECT Id FROM Case") == sorted([live])
    assert sorted(matching_ids(state, "SELECT Id FROM Case", include_deleted=True)) == sorted(
        [live, gone]
    )


@pytest.mark.parametrize(
    ("text", "code", "column"),
    [
        ("SELECT FROM Account", "MALFORMED_QUERY", 8),
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY", 29),
        ("SELECT Id FROM Account WHERE Name = 'open", "MALFORMED_QUERY", 42),
        ("SELECT Id,\n  Bogus FROM Account", "INVALID_FIELD", 3),
        ("SELECT COUNT(), Name FROM Account", "MALFORMED_QUERY", 8),
        ("SELECT Id, Id FROM Account", "MALFORMED_QUERY", 12),
        ("SELECT FIELDS(ALL) FROM Account", "MALFORMED_QUERY", 8),
        ("SELECT Id FROM Account GROUP BY Name", "MALFORMED_QUERY", 24),
    ],
)
def test_errors_point_at_the_problem(text: str, code: str, column: int) -> None:
    with pytest.raises(soql.SoqlError) as raised:
        soql.parse(text)
    assert raised.value.code == code
    assert f":Column:{column}\n" in raised.value.render(text)


def test_fields_function_expands_with_a_limit() -> None:
    query = soql.parse("SELECT FIELDS(CUSTOM) FROM Account LIMIT 200")
    assert all(f.custom for f in query.fields)
    assert "Value_Score__c" in [f.name for f in query.fields]


def test_fifteen_character_ids_match_their_eighteen_character_form(state: SandboxState) -> None:
    state.db.execute('DELETE FROM "sf_Account"')
    record = insert_sf(state, "Account", Name="Short Id")
    assert soql.normalize_id(record[:15]) == record
    assert matching_ids(state, f"SELECT Id FROM Account WHERE Id = '{record[:15]}'") == [record]
    assert soql.normalize_id("001000000000001XXX") is None
