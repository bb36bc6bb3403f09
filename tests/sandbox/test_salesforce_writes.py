"""Describe, single-record writes and sObject Collections, through simple-salesforce."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from simple_salesforce import Salesforce

from clghub.sandbox.schema import SF_OBJECTS
from clghub.sandbox.server import SandboxServer
from clghub.sandbox.state import format_ts
from tests.sandbox.crm_fixtures import (
    control,
    crm_sandbox,
    insert_accounts,
    insert_sf,
    salesforce,
    sf_error,
    ts,
)


@pytest.fixture
def org() -> Iterator[tuple[SandboxServer, Salesforce]]:
    with crm_sandbox() as server, salesforce(server) as sf:
        yield server, sf


def _row(server: SandboxServer, sobject: str, record_id: str) -> dict[str, Any]:
    row = server.state.db.execute(
        f'SELECT * FROM "sf_{sobject}" WHERE "Id" = ?', (record_id,)
    ).fetchone()
    return dict(zip(row.keys(), tuple(row), strict=True))


def test_describe_matches_the_catalogue(org: tuple[SandboxServer, Salesforce]) -> None:
    _, sf = org
    names = {o["name"]: o for o in sf.describe()["sobjects"]}
    assert set(names) == set(SF_OBJECTS)
    assert names["Account"]["keyPrefix"] == "001"
    assert names["Account"]["urls"]["describe"] == "/services/data/v59.0/sobjects/Account/describe"
    described = sf.Account.describe()
    fields = {f["name"]: f for f in described["fields"]}
    assert [f["name"] for f in described["fields"]] == [f.name for f in SF_OBJECTS["Account"]]
    assert fields["Id"]["type"] == "id"
    assert fields["Id"]["updateable"] is False
    assert fields["Value_Score__c"]["custom"] is True
    assert fields["Value_Score__c"]["updateable"] is True
    assert fields["Value_Score__c"]["type"] == "double"
    assert [p["value"] for p in fields["Value_Band__c"]["picklistValues"]] == [
        "green",
        "yellow",
        "red",
    ]
    assert fields["OwnerId"]["referenceTo"] == ["User"]
    assert fields["OwnerId"]["relationshipName"] == "Owner"
    assert fields["CSM__c"]["relationshipName"] == "CSM__r"
    assert fields["Product_Account_Key__c"]["externalId"] is True
    assert fields["SystemModstamp"]["compoundFieldName"] is None


def test_collection_update_reports_each_record_in_order(
    org: tuple[SandboxServer, Salesforce],
) -> None:
    server, sf = org
    good, locked, deleted, long_name, bad_value, read_only, bad_band = insert_accounts(
        server.state, 7
    )
    control(server, "salesforce/lock", {"ids": [locked], "locked": True})
    sf.Account.delete(deleted)
    unknown = "001000000009999AAA"
    updates: list[dict[str, Any]] = [
        {"id": good, "Value_Score__c": 71.5, "Value_Band__c": "green"},
        {"id": locked, "Value_Score__c": 10},
        {"id": deleted, "Value_Score__c": 10},
        {"id": unknown, "Value_Score__c": 10},
        {"id": "not-an-id", "Value_Score__c": 10},
        {"id": long_name, "Name": "x" * 256},
        {"id": bad_value, "Value_Score__c": "seventy"},
        {"id": read_only, "IsDeleted": True},
        {"id": bad_band, "Value_Band__c": "purple"},
    ]
    body = {
        "allOrNone": False,
        "records": [{"attributes": {"type": "Account"}, **u} for u in updates],
    }
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert results[0] == {"id": good, "success": True, "errors": []}
    codes = [r["errors"][0]["statusCode"] if not r["success"] else "OK" for r in results]
    assert codes == [
        "OK",
        "UNABLE_TO_LOCK_ROW",
        "ENTITY_IS_DELETED",
        "INVALID_CROSS_REFERENCE_KEY",
        "MALFORMED_ID",
        "STRING_TOO_LONG",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    ]
    assert results[5]["errors"][0]["fields"] == ["Name"]
    assert results[6]["errors"][0]["message"] == "Value Score: value not of required type: seventy"
    assert results[1]["errors"][0]["message"] == (
        f"unable to obtain exclusive access to this record or 1 records: {locked}"
    )
    written = _row(server, "Account", good)
    assert (written["Value_Score__c"], written["Value_Band__c"]) == (71.5, "green")
    assert written["SystemModstamp"] == written["LastModifiedDate"] > ts(10)
    assert _row(server, "Account", bad_value)["Value_Score__c"] is None
    assert _row(server, "Account", locked)["SystemModstamp"] == ts(1)


def test_all_or_none_rolls_every_record_back(org: tuple[SandboxServer, Salesforce]) -> None:
    server, sf = org
    first, second = insert_accounts(server.state, 2)
    body = {
        "allOrNone": True,
        "records": [
            {"attributes": {"type": "Account"}, "id": first, "Value_Score__c": 50},
            {"attributes": {"type": "Account"}, "id": second, "Value_Score__c": "bad"},
        ],
    }
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert results[0]["id"] == first
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_TYPE_ON_FIELD_IN_RECORD"
    assert _row(server, "Account", first)["Value_Score__c"] is None
    assert _row(server, "Account", first)["SystemModstamp"] == ts(0)


def test_collections_take_at_most_200_records(org: tuple[SandboxServer, Salesforce]) -> None:
    server, sf = org
    ids = insert_accounts(server.state, 201)
    records = [{"attributes": {"type": "Account"}, "id": i, "Seats__c": 5} for i in ids]
    status, errors = sf_error(
        lambda: sf.restful("composite/sobjects", method="PATCH", json={"records": records})
    )
    assert status == 400
    assert errors[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    created = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"records": [{"attributes": {"type": "Account"}, "Name": "New One"}]},
    )
    assert created[0]["success"] is True
    assert _row(server, "Account", created[0]["id"])["Name"] == "New One"


def test_single_record_lifecycle(org: tuple[SandboxServer, Salesforce]) -> None:
    server, sf = org
    account = insert_sf(server.state, "Account", Name="Acme")
    created = sf.Task.create(
        {"Subject": "Exec sponsor left", "WhatId": account, "ActivityDate": "2025-07-01"}
    )
    assert created["success"] is True
    task = sf.Task.get(created["id"])
    assert task["AccountId"] == account
    assert task["Status"] == "Not Started"
    assert task["CreatedDate"].endswith("+0000")
    assert sf.Task.update(created["id"], {"Status": "Completed"}) == 204
    assert sf.Task.get(created["id"])["Status"] == "Completed"
    assert sf.Task.delete(created["id"]) == 204
    status, errors = sf_error(lambda: sf.Task.get(created["id"]))
    assert (status, errors[0]["errorCode"]) == (404, "NOT_FOUND")
    status, errors = sf_error(lambda: sf.Task.update(created["id"], {"Status": "Completed"}))
    assert (status, errors[0]["errorCode"]) == (404, "ENTITY_IS_DELETED")
    archived = sf.query_all(
        f"SELECT Id, IsDeleted FROM Task WHERE Id = '{created['id']}'", include_deleted=True
    )
    assert archived["records"][0]["IsDeleted"] is True
    subset = sf.Account.get(account, params={"fields": "Name,Seats__c"})
    assert list(subset) == ["attributes", "Name", "Seats__c"]


def test_single_record_errors(org: tuple[SandboxServer, Salesforce]) -> None:
    server, sf = org
    account = insert_sf(server.state, "Account", Name="Locked Co")
    control(server, "salesforce/lock", {"ids": [account], "locked": True})
    status, errors = sf_error(lambda: sf.Account.update(account, {"Seats__c": 3}))
    assert (status, errors[0]["errorCode"]) == (400, "UNABLE_TO_LOCK_ROW")
    status, errors = sf_error(
        lambda: sf.Account.update(account, {"CreatedDate": "2020-01-01T00:00:00Z"})
    )
    assert (status, errors[0]["errorCode"], errors[0]["fields"]) == (
        400,
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        ["CreatedDate"],
    )
    status, errors = sf_error(lambda: sf.Opportunity.create({"Name": "No stage"}))
    assert (status, errors[0]["errorCode"]) == (400, "REQUIRED_FIELD_MISSING")
    assert "StageName" in errors[0]["message"]
    status, errors = sf_error(lambda: sf.Account.update(account, {"Nope__c": 1}))
    assert errors[0] == {
        "message": "No such column 'Nope__c' on sobject of type Account",
        "errorCode": "INVALID_FIELD",
        "fields": [],
    }
    control(server, "salesforce/lock", {"ids": [account], "locked": False})
    assert sf.Account.update(account, {"Seats__c": 3}) == 204


def test_derived_fields_follow_writes(org: tuple[SandboxServer, Salesforce]) -> None:
    server, sf = org
    account = insert_sf(server.state, "Account", Name="Acme")
    deal = sf.Opportunity.create(
        {
            "Name": "Renewal",
            "StageName": "Negotiation",
            "CloseDate": "2025-07-01",
            "AccountId": account,
        }
    )["id"]
    assert (
        _row(server, "Opportunity", deal)["IsClosed"],
        _row(server, "Opportunity", deal)["IsWon"],
    ) == (0, 0)
    before = server.state.now()
    sf.Opportunity.update(deal, {"StageName": "Closed Won"})
    row = _row(server, "Opportunity", deal)
    assert (row["IsClosed"], row["IsWon"]) == (1, 1)
    assert row["SystemModstamp"] >= format_ts(before)


def test_the_write_journal_lists_every_value_written(org: tuple[SandboxServer, Salesforce]) -> None:
    server, sf = org
    first, second = insert_accounts(server.state, 2)
    sf.Account.update(first, {"Value_Score__c": 50})
    sf.Account.update(first, {"Value_Score__c": 61})
    rolled_back = {
        "allOrNone": True,
        "records": [
            {"attributes": {"type": "Account"}, "id": second, "Value_Score__c": 70},
            {"attributes": {"type": "Account"}, "id": first, "Value_Score__c": "bad"},
        ],
    }
    sf.restful("composite/sobjects", method="PATCH", json=rolled_back)
    answer = httpx.get(
        f"{server.http_url}/_sandbox/writes", params={"field": "Value_Score__c"}, timeout=10
    )
    answer.raise_for_status()
    # A write that was rolled back was never made.
    assert answer.json()["writes"] == [
        {
            "system": "salesforce",
            "object": "Account",
            "record_id": first,
            "field": "Value_Score__c",
            "writes": 2,
            "values": ["50.0", "61.0"],
        }
    ]
