"""Bulk API 2.0 through simple-salesforce's bulk2 handler: query jobs with
locator paging and CSV results, and ingest jobs with their result files."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceOperationError

from clghub.sandbox.server import SandboxServer
from tests.sandbox.crm_fixtures import (
    crm_sandbox,
    https_session,
    insert_accounts,
    insert_sf,
    salesforce,
    sf_login,
)

WAIT = 0
"""simple-salesforce sleeps this long before each status poll."""


@pytest.fixture
def org() -> Iterator[tuple[SandboxServer, Salesforce]]:
    with crm_sandbox() as server, salesforce(server) as sf:
        yield server, sf


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_query_job_pages_csv_by_locator(org: tuple[SandboxServer, Salesforce]) -> None:
    server, sf = org
    ids = insert_accounts(server.state, 2500, Type="Customer")
    tricky = insert_sf(
        server.state,
        "Account",
        Name='Comma, "Quote" and\nnewline',
        Type="Customer",
        Website=None,
        SystemModstamp="2030-01-01T00:00:00.000Z",
    )
    pages = list(
        sf.bulk2.Account.query(
            "SELECT Id, Name, Website, IsDeleted, SystemModstamp FROM Account "
            "WHERE Type = 'Customer' ORDER BY SystemModstamp",
            max_records=1000,
            wait=WAIT,
        )
    )
    assert len(pages) == 3
    rows = [row for page in pages for row in _rows(page)]
    assert [r["Id"] for r in rows] == [*ids, tricky]
    last = rows[-1]
    assert last["Name"] == 'Comma, "Quote" and\nnewline'
    assert last["Website"] == ""
    assert last["IsDeleted"] == "false"
    assert last["SystemModstamp"] == "2030-01-01T00:00:00.000Z"
    assert pages[0].splitlines()[0] == '"Id","Name","Website","IsDeleted","SystemModstamp"'


def test_query_all_job_includes_deleted_rows(
    org: tuple[SandboxServer, Salesforce], tmp_path: Path
) -> None:
    server, sf = org
    live, gone = insert_accounts(server.state, 2)
    sf.Account.delete(gone)
    every = [
        row
        for page in sf.bulk2.Account.query_all("SELECT Id, IsDeleted FROM Account", wait=WAIT)
        for row in _rows(page)
    ]
    assert {(r["Id"], r["IsDeleted"]) for r in every} == {(live, "false"), (gone, "true")}
    files = sf.bulk2.Account.download("SELECT Id FROM Account", path=str(tmp_path), wait=WAIT)
    assert [f["number_of_records"] for f in files] == [1]
    assert _rows(Path(files[0]["file"]).read_text()) == [{"Id": live}]


def test_query_jobs_report_progress_and_refuse_early_reads() -> None:
    with crm_sandbox() as server:
        insert_accounts(server.state, 3)
        token = sf_login(server)
        session: requests.Session = https_session(server)
        session.headers["Authorization"] = f"Bearer {token}"
        jobs = f"{server.https_url}/services/data/v59.0/jobs/query"
        try:
            created = session.post(
                jobs, json={"operation": "query", "query": "SELECT Id FROM Account"}
            )
            assert created.status_code == 200
            job = created.json()
            assert job["state"] == "UploadComplete"
            assert job["id"].startswith("750")
            early = session.get(f"{jobs}/{job['id']}/results")
            assert early.status_code == 400
            polls = [session.get(f"{jobs}/{job['id']}").json() for _ in range(2)]
            assert [p["state"] for p in polls] == ["InProgress", "JobComplete"]
            assert set(polls[1]) == {
                "id",
                "operation",
                "object",
                "createdById",
                "createdDate",
                "systemModstamp",
                "state",
                "concurrencyMode",
                "contentType",
                "apiVersion",
                "lineEnding",
                "columnDelimiter",
                "jobType",
                "numberRecordsProcessed",
                "retries",
            }
            assert polls[1]["numberRecordsProcessed"] == 3
            results = session.get(f"{jobs}/{job['id']}/results", params={"maxRecords": 2})
            assert results.headers["Sforce-NumberOfRecords"] == "2"
            rest = session.get(
                f"{jobs}/{job['id']}/results", params={"locator": results.headers["Sforce-Locator"]}
            )
            assert rest.headers["Sforce-Locator"] == "null"
            assert rest.headers["Sforce-NumberOfRecords"] == "1"
            bad = session.post(
                jobs, json={"operation": "query", "query": "SELECT Nope FROM Account"}
            )
            assert bad.status_code == 400
            assert bad.json()[0]["errorCode"] == "INVALID_FIELD"
            missing = session.get(f"{jobs}/750000000000000AAA")
            assert missing.status_code == 404
            assert session.delete(f"{jobs}/{job['id']}").status_code == 204
        finally:
            session.close()


def test_ingest_update_with_result_files(org: tuple[SandboxServer, Salesforce]) -> None:
    server, sf = org
    first, second, deleted = insert_accounts(server.state, 3)
    sf.Account.delete(deleted)
    records = [
        {"Id": first, "Value_Score__c": "71.5", "Value_Band__c": "green"},
        {"Id": second, "Value_Score__c": "not a number", "Value_Band__c": "red"},
        {"Id": deleted, "Value_Score__c": "10", "Value_Band__c": "red"},
    ]
    [outcome] = sf.bulk2.Account.update(records=records, wait=WAIT)
    assert outcome["numberRecordsProcessed"] == 3
    assert outcome["numberRecordsFailed"] == 2
    job_id = outcome["job_id"]
    successes = _rows(sf.bulk2.Account.get_successful_records(job_id))
    assert [(r["sf__Id"], r["sf__Created"]) for r in successes] == [(first, "false")]
    failures = {
        r["sf__Id"]: r["sf__Error"] for r in _rows(sf.bulk2.Account.get_failed_records(job_id))
    }
    assert failures[second].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:")
    assert failures[deleted].startswith("ENTITY_IS_DELETED:entity is deleted")
    row = server.state.db.execute(
        'SELECT "Value_Score__c", "Value_Band__c" FROM "sf_Account" WHERE "Id" = ?', (first,)
    ).fetchone()
    assert tuple(row) == (71.5, "green")


def test_ingest_insert_and_bad_headers(org: tuple[SandboxServer, Salesforce]) -> None:
    server, sf = org
    [outcome] = sf.bulk2.Contact.insert(
        records=[{"LastName": "Rivera", "Email": "r@example.com"}, {"FirstName": "No last name"}],
        wait=WAIT,
    )
    assert (outcome["numberRecordsProcessed"], outcome["numberRecordsFailed"]) == (2, 1)
    created = _rows(sf.bulk2.Contact.get_successful_records(outcome["job_id"]))
    assert created[0]["sf__Created"] == "true"
    names = server.state.db.execute('SELECT "Name" FROM "sf_Contact"').fetchall()
    assert [tuple(n) for n in names] == [("Rivera",)]
    with pytest.raises(SalesforceOperationError, match="Field name not found : Nope__c"):
        sf.bulk2.Contact.insert(records=[{"LastName": "X", "Nope__c": "1"}], wait=WAIT)
