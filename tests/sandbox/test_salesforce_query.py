"""Salesforce query and queryAll over HTTPS with simple-salesforce: pages,
cursors, deleted rows, wire formats, SOQL errors and literal escaping."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from clghub.sandbox.server import SandboxServer
from tests.sandbox.crm_fixtures import (
    crm_sandbox,
    insert_accounts,
    insert_sf,
    salesforce,
    sf_error,
    ts,
)

TOTAL = 4500


@pytest.fixture(scope="module")
def org() -> Iterator[tuple[SandboxServer, list[str]]]:
    """4,500 accounts, SystemModstamp one second apart; the last 100 deleted."""
    with crm_sandbox() as server:
        ids = insert_accounts(server.state, TOTAL, Industry="Software")
        server.state.db.executemany(
            'UPDATE "sf_Account" SET "IsDeleted" = 1 WHERE "Id" = ?', [(i,) for i in ids[-100:]]
        )
        yield server, ids


@pytest.fixture
def sf(org: tuple[SandboxServer, list[str]]) -> Iterator[Salesforce]:
    with salesforce(org[0]) as client:
        yield client


def soql_string(value: str) -> str:
    """A SOQL string literal: backslash escapes for backslash, quote and line breaks."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f"'{escaped}'"


def test_query_pages_through_a_snapshot_in_order(
    sf: Salesforce, org: tuple[SandboxServer, list[str]]
) -> None:
    _, ids = org
    first = sf.query("SELECT Id, Name FROM Account ORDER BY SystemModstamp ASC")
    assert first["totalSize"] == TOTAL - 100
    assert first["done"] is False
    assert len(first["records"]) == 2000
    assert re.fullmatch(r"/services/data/v59\.0/query/01g\w{15}-2000", first["nextRecordsUrl"])
    seen = [r["Id"] for r in sf.query_all_iter("SELECT Id FROM Account ORDER BY SystemModstamp")]
    assert seen == ids[:-100]


def test_query_all_returns_deleted_rows_and_query_does_not(
    sf: Salesforce, org: tuple[SandboxServer, list[str]]
) -> None:
    _, ids = org
    text = "SELECT Id, IsDeleted FROM Account WHERE SystemModstamp >= {0} ORDER BY Id"
    since = ts(TOTAL - 150).replace(".000Z", "Z")
    live = list(sf.query_all_iter(text.format(since)))
    everything = list(sf.query_all_iter(text.format(since), include_deleted=True))
    assert {r["Id"] for r in live} == set(ids[TOTAL - 150 : TOTAL - 100])
    assert len(everything) == 150
    deleted = [r for r in everything if r["IsDeleted"]]
    assert {r["Id"] for r in deleted} == set(ids[-100:])
    assert all(r["IsDeleted"] is False for r in live)


def test_records_carry_salesforce_wire_formats(org: tuple[SandboxServer, list[str]]) -> None:
    server, _ = org
    account = insert_sf(
        server.state,
        "Account",
        Name="Wire Format Inc",
        AnnualRevenue=1250000.5,
        NumberOfEmployees=42,
        Website=None,
        SystemModstamp="2024-05-01T12:00:00.000Z",
    )
    insert_sf(server.state, "Opportunity", AccountId=account, CloseDate="2024-05-01", Amount=10)
    with salesforce(server) as sf:
        result = sf.query(
            "select name, id, annualrevenue, numberofemployees, website, isdeleted, systemmodstamp "
            f"from account where id = '{account[:15]}'"
        )
        deal = sf.query(f"SELECT CloseDate, IsWon FROM Opportunity WHERE AccountId = '{account}'")
    record = result["records"][0]
    assert list(record) == [
        "attributes",
        "Name",
        "Id",
        "AnnualRevenue",
        "NumberOfEmployees",
        "Website",
        "IsDeleted",
        "SystemModstamp",
    ]
    assert record["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v59.0/sobjects/Account/{account}",
    }
    assert record["SystemModstamp"] == "2024-05-01T12:00:00.000+0000"
    assert record["AnnualRevenue"] == 1250000.5
    assert record["NumberOfEmployees"] == 42
    assert record["Website"] is None
    assert record["IsDeleted"] is False
    assert deal["records"][0]["CloseDate"] == "2024-05-01"
    assert deal["records"][0]["IsWon"] is False


def test_count_queries(sf: Salesforce) -> None:
    plain = sf.query("SELECT COUNT() FROM Account WHERE Industry = 'software'")
    assert plain == {"totalSize": TOTAL - 100, "done": True, "records": []}
    aliased = sf.query("SELECT COUNT(Id) total FROM Account")
    assert aliased["records"][0]["total"] >= TOTAL - 100
    assert aliased["records"][0]["attributes"] == {"type": "AggregateResult"}


@pytest.mark.parametrize(
    ("soql", "code", "fragment"),
    [
        ("SELECT Id FRM Account", "MALFORMED_QUERY", "unexpected token: 'FRM'"),
        (
            "SELECT Id, Foo__c FROM Account",
            "INVALID_FIELD",
            "ERROR at Row:1:Column:12\nNo such column 'Foo__c' on entity 'Account'. If you are "
            "attempting to use a custom field, be sure to append the '__c'",
        ),
        ("SELECT Id FROM Acount", "INVALID_TYPE", "sObject type 'Acount' is not supported."),
        (
            "SELECT Id FROM Account WHERE CreatedDate > '2024-01-01'",
            "INVALID_FIELD",
            "value of filter criterion for field 'CreatedDate' must be of type dateTime",
        ),
        (
            "SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR Type = 'c'",
            "MALFORMED_QUERY",
            "unexpected token: 'OR'",
        ),
        ("SELECT Id FROM Account LIMIT 5 OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "2000"),
        ("SELECT Id FROM Account WHERE Id = 'nope'", "INVALID_QUERY_FILTER_OPERATOR", "nope"),
    ],
)
def test_bad_soql_answers_salesforce_errors(
    sf: Salesforce, soql: str, code: str, fragment: str
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query(soql)
    assert raised.value.status == 400
    [error] = raised.value.content
    assert error["errorCode"] == code
    assert fragment in error["message"]


NASTY_NAMES = [
    "O'Brien & Sons",
    "Back\\slash Ltd",
    "100% Legit",
    "Under_score GmbH",
    "Two\nLines",
    "Quote\" and ' both",
    "<!channel> Corp",
    "Ünïcödé 株式会社",
]


def test_string_literals_round_trip(org: tuple[SandboxServer, list[str]]) -> None:
    server, _ = org
    ids = {
        name: insert_sf(server.state, "Account", Name=name, Type="Partner") for name in NASTY_NAMES
    }
    insert_sf(server.state, "Account", Name="1000 Legit", Type="Partner")
    insert_sf(server.state, "Account", Name="UnderXscore GmbH", Type="Partner")
    with salesforce(server) as sf:
        for name, record_id in ids.items():
            found = sf.query(f"SELECT Id, Name FROM Account WHERE Name = {soql_string(name)}")
            assert [(r["Id"], r["Name"]) for r in found["records"]] == [(record_id, name)]
        percent = sf.query(r"SELECT Name FROM Account WHERE Name LIKE '100\%%'")
        underscore = sf.query(r"SELECT Name FROM Account WHERE Name LIKE 'under\_score%'")
        slash = sf.query(r"SELECT Name FROM Account WHERE Name LIKE 'back\\slash%'")
        injected = sf.query(
            "SELECT Id FROM Account WHERE Name = " + soql_string("x' OR Name != 'y")
        )
    assert [r["Name"] for r in percent["records"]] == ["100% Legit"]
    assert [r["Name"] for r in underscore["records"]] == ["Under_score GmbH"]
    assert [r["Name"] for r in slash["records"]] == ["Back\\slash Ltd"]
    assert injected["totalSize"] == 0


def test_null_semantics_follow_soql(org: tuple[SandboxServer, list[str]]) -> None:
    server, _ = org
    with_region = insert_sf(
        server.state, "Account", Name="Regional", Region__c="EMEA", Type="Prospect"
    )
    without = insert_sf(server.state, "Account", Name="Nowhere", Region__c=None, Type="Prospect")
    base = "SELECT Id FROM Account WHERE Type = 'Prospect' AND "
    with salesforce(server) as sf:
        assert {r["Id"] for r in sf.query(base + "Region__c != 'EMEA'")["records"]} == {without}
        assert {r["Id"] for r in sf.query(base + "Region__c = null")["records"]} == {without}
        assert {r["Id"] for r in sf.query(base + "Region__c != null")["records"]} == {with_region}
        negated = sf.query(base + "(NOT Region__c IN ('EMEA'))")
    assert {r["Id"] for r in negated["records"]} == {without}


def test_batch_size_option_and_locator_errors(sf: Salesforce) -> None:
    page = sf.query(
        "SELECT Id FROM Account WHERE Industry = 'Software'",
        headers={"Sforce-Query-Options": "batchSize=500"},
    )
    assert len(page["records"]) == 500
    assert page["nextRecordsUrl"].endswith("-500")
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query_more("01g000000000000AAA-500", identifier_is_url=False)
    assert raised.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_cursors_expire_after_fifteen_idle_minutes() -> None:
    with crm_sandbox() as server, salesforce(server) as sf:
        insert_accounts(server.state, 2500)
        first = sf.query("SELECT Id FROM Account")
        server.state.advance(14 * 60)
        second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
        assert len(second["records"]) == 500
        server.state.advance(16 * 60)
        status, errors = sf_error(
            lambda: sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
        )
    assert status == 400
    assert errors == [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]


def test_paging_survives_concurrent_writes() -> None:
    with crm_sandbox() as server, salesforce(server) as sf:
        ids = insert_accounts(server.state, 4200, Type="Customer")
        soql = "SELECT Id, Name FROM Account WHERE Type = 'Customer' ORDER BY SystemModstamp"
        first = sf.query(soql)
        served = [r["Id"] for r in first["records"]]
        moved, deleted = ids[2500], ids[3000]
        # Not served yet: an update that moves its SystemModstamp past every
        # other row, a delete, and a new matching record.
        sf.Account.update(moved, {"Name": "Renamed while paging"})
        sf.Account.delete(deleted)
        sf.Account.create({"Name": "Born while paging", "Type": "Customer"})
        page = first
        names: dict[str, str] = {}
        while not page["done"]:
            page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
            served.extend(r["Id"] for r in page["records"])
            names.update({r["Id"]: r["Name"] for r in page["records"]})
    assert len(served) == len(set(served))
    assert set(served) == set(ids) - {deleted}
    assert names[moved] == "Renamed while paging"
