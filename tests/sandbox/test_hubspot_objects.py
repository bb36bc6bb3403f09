"""HubSpot CRM objects through hubspot-api-client: list pages, reads, writes,
batch endpoints (200 and 207), tasks with associations, and the 414 limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hubspot import HubSpot
from hubspot.crm.companies import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInput,
)
from hubspot.crm.companies import SimplePublicObjectInputForCreate as CompanyInputForCreate
from hubspot.crm.objects import ApiException as ObjectsApiException
from hubspot.crm.objects import SimplePublicObjectInputForCreate

from clghub.sandbox.server import SandboxServer
from tests.sandbox.crm_fixtures import (
    associate,
    crm_sandbox,
    http,
    hubspot,
    insert_companies,
    insert_hs,
    ts,
)


@pytest.fixture
def portal() -> Iterator[tuple[SandboxServer, HubSpot]]:
    with crm_sandbox() as server:
        yield server, hubspot(server)


def test_list_pages_by_id_with_string_values(portal: tuple[SandboxServer, HubSpot]) -> None:
    server, client = portal
    ids = insert_companies(
        server.state, 250, numberofemployees=120.0, annualrevenue=1500000.5, industry="RETAIL"
    )
    seen: list[str] = []
    after: str | None = None
    while True:
        page = client.crm.companies.basic_api.get_page(
            limit=100, after=after, properties=["name", "numberofemployees", "annualrevenue"]
        )
        seen.extend(record.id for record in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
        assert page.paging.next.link.startswith(server.http_url)
    assert seen == [str(i) for i in ids]
    first = client.crm.companies.basic_api.get_by_id(
        str(ids[0]), properties=["numberofemployees", "annualrevenue", "nothing_here"]
    )
    assert first.properties == {
        "numberofemployees": "120",
        "annualrevenue": "1500000.5",
        "createdate": "2024-01-01T00:00:00.000Z",
        "hs_lastmodifieddate": "2024-01-01T00:00:00.000Z",
        "hs_object_id": str(ids[0]),
    }
    default = client.crm.companies.basic_api.get_page(limit=1).results[0]
    assert set(default.properties) == {
        "name",
        "domain",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    }
    assert default.properties["domain"] is None


def test_archived_records_list_separately(portal: tuple[SandboxServer, HubSpot]) -> None:
    server, client = portal
    live = insert_hs(
        server.state, "deals", dealname="Live", closedate=ts(0), contract_start_date="2024-02-01"
    )
    gone = insert_hs(server.state, "deals", dealname="Gone", archived=True, archived_at=ts(99))
    listed = client.crm.deals.basic_api.get_page(properties=["dealname", "contract_start_date"])
    assert [r.id for r in listed.results] == [str(live)]
    assert listed.results[0].properties["contract_start_date"] == "2024-02-01"
    archived = client.crm.deals.basic_api.get_page(archived=True)
    assert [(r.id, r.archived) for r in archived.results] == [(str(gone), True)]
    assert archived.results[0].archived_at is not None


def test_list_includes_associations(portal: tuple[SandboxServer, HubSpot]) -> None:
    server, client = portal
    company = insert_hs(server.state, "companies", name="Parent")
    linked = insert_hs(server.state, "contacts", email="a@parent.example")
    alone = insert_hs(server.state, "contacts", email="b@nowhere.example")
    associate(server.state, "contacts", linked, "companies", company)
    page = client.crm.contacts.basic_api.get_page(associations=["companies"])
    by_id = {r.id: r for r in page.results}
    assert by_id[str(linked)].associations["companies"].results[0].id == str(company)
    assert by_id[str(linked)].associations["companies"].results[0].type == "contact_to_company"
    assert by_id[str(alone)].associations is None


def test_a_long_property_list_answers_414(portal: tuple[SandboxServer, HubSpot]) -> None:
    server, client = portal
    insert_companies(server.state, 1)
    names = [f"some_rather_long_property_name_{i:04d}" for i in range(400)]
    with pytest.raises(ApiException) as raised:
        client.crm.companies.basic_api.get_page(properties=names)
    assert raised.value.status == 414
    chunked = client.crm.companies.basic_api.get_page(properties=names[:100])
    assert len(chunked.results) == 1


def test_limit_above_100_is_refused(portal: tuple[SandboxServer, HubSpot]) -> None:
    server, _ = portal
    with http(server) as client:
        response = client.get("/crm/v3/objects/companies", params={"limit": 101})
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_batch_update_reports_partial_failure_with_207(
    portal: tuple[SandboxServer, HubSpot],
) -> None:
    server, client = portal
    good, bad_value, unknown_prop = insert_companies(server.state, 3)
    archived = insert_hs(server.state, "companies", name="Gone", archived=True)
    inputs = [
        SimplePublicObjectBatchInput(id=str(good), properties={"seats": "25", "region": "EMEA"}),
        SimplePublicObjectBatchInput(id=str(bad_value), properties={"seats": "lots"}),
        SimplePublicObjectBatchInput(id=str(unknown_prop), properties={"clghub_value_score": "71"}),
        SimplePublicObjectBatchInput(id=str(archived), properties={"seats": "1"}),
        SimplePublicObjectBatchInput(id="424242", properties={"seats": "1"}),
    ]
    before = server.state.timestamp()
    answer = client.crm.companies.batch_api.update(
        batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(
            inputs=inputs
        )
    )
    assert answer.status == "COMPLETE"
    assert [r.id for r in answer.results] == [str(good)]
    assert answer.results[0].properties["seats"] == "25"
    assert answer.results[0].properties["hs_lastmodifieddate"] >= before
    assert answer.num_errors == 3
    by_category = {(e.category, tuple(e.context["ids"])) for e in answer.errors}
    assert ("OBJECT_NOT_FOUND", (str(archived), "424242")) in by_category
    validation = [e for e in answer.errors if e.category == "VALIDATION_ERROR"]
    assert {e.context["ids"][0] for e in validation} == {str(bad_value), str(unknown_prop)}
    messages = " ".join(e.message for e in validation)
    assert "PROPERTY_DOESNT_EXIST" in messages
    assert "lots was not a valid number." in messages
    untouched = client.crm.companies.basic_api.get_by_id(str(bad_value), properties=["seats"])
    assert untouched.properties["seats"] is None
    assert untouched.updated_at.isoformat().startswith("2024-01-01")
    # The write journal holds the one record that was written, and nothing refused.
    journal = httpx.get(
        f"{server.http_url}/_sandbox/writes", params={"field": ["seats", "region"]}, timeout=10
    ).json()["writes"]
    assert [(w["record_id"], w["field"], w["values"]) for w in journal] == [
        (str(good), "seats", ["25.0"]),
        (str(good), "region", ["EMEA"]),
    ]


def test_batch_read_and_upsert(portal: tuple[SandboxServer, HubSpot]) -> None:
    server, client = portal
    [known] = insert_companies(server.state, 1, domain="known.example")
    read = client.crm.companies.batch_api.read(
        batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
            properties=["name"],
            inputs=[SimplePublicObjectId(id=str(known)), SimplePublicObjectId(id="1")],
        )
    )
    assert [r.id for r in read.results] == [str(known)]
    assert read.errors[0].category == "OBJECT_NOT_FOUND"
    with http(server) as raw:
        prop = raw.post(
            "/crm/v3/properties/companies",
            json={
                "name": "clghub_account_key",
                "label": "Account key",
                "type": "string",
                "fieldType": "text",
                "groupName": "companyinformation",
                "hasUniqueValue": True,
            },
        )
        assert prop.status_code == 201
    upserted = client.crm.companies.batch_api.upsert(
        batch_input_simple_public_object_batch_input_upsert=BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id="acct-1", id_property="clghub_account_key", properties={"name": "First"}
                )
            ]
        )
    )
    assert upserted.results[0].new is True
    again = client.crm.companies.batch_api.upsert(
        batch_input_simple_public_object_batch_input_upsert=BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id="acct-1", id_property="clghub_account_key", properties={"name": "Renamed"}
                )
            ]
        )
    )
    assert again.results[0].new is False
    assert again.results[0].id == upserted.results[0].id
    assert again.results[0].properties["name"] == "Renamed"


def test_batches_take_at_most_100_inputs(portal: tuple[SandboxServer, HubSpot]) -> None:
    server, _ = portal
    inputs = [{"id": str(i), "properties": {"seats": "1"}} for i in range(101)]
    with http(server) as raw:
        response = raw.post("/crm/v3/objects/companies/batch/update", json={"inputs": inputs})
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_single_record_writes_and_tasks(portal: tuple[SandboxServer, HubSpot]) -> None:
    server, client = portal
    company = insert_hs(server.state, "companies", name="Acme", hubspot_owner_id="40000001")
    updated = client.crm.companies.basic_api.update(
        str(company),
        simple_public_object_input=SimplePublicObjectInput(properties={"segment": "enterprise"}),
    )
    assert updated.properties["segment"] == "enterprise"
    with pytest.raises(ApiException) as raised:
        client.crm.companies.basic_api.update(
            str(company),
            simple_public_object_input=SimplePublicObjectInput(properties={"segment": "giant"}),
        )
    body: dict[str, Any] = orjson.loads(raised.value.body)
    assert raised.value.status == 400
    assert body["category"] == "VALIDATION_ERROR"
    assert "INVALID_OPTION" in body["message"]
    task = client.crm.objects.basic_api.create(
        object_type="tasks",
        simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
            properties={
                "hs_task_subject": "Value score dropped",
                "hs_task_body": "Score 42 (was 71)",
                "hs_timestamp": "1751328000000",
                "hubspot_owner_id": "40000001",
            },
            associations=[
                {
                    "to": {"id": str(company)},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}],
                }
            ],
        ),
    )
    assert task.properties["hs_task_status"] == "NOT_STARTED"
    assert task.properties["hs_timestamp"] == "2025-07-01T00:00:00.000Z"
    links = client.crm.associations.v4.basic_api.get_page("companies", str(company), "tasks")
    assert [str(r.to_object_id) for r in links.results] == [task.id]
    with pytest.raises(ObjectsApiException) as missing:
        client.crm.objects.basic_api.create(
            object_type="tasks",
            simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
                properties={"hs_task_subject": "No due date"}
            ),
        )
    assert missing.value.status == 400
    client.crm.companies.basic_api.archive(str(company))
    with pytest.raises(ApiException) as gone:
        client.crm.companies.basic_api.get_by_id(str(company))
    assert gone.value.status == 404
    assert orjson.loads(gone.value.body)["category"] == "OBJECT_NOT_FOUND"


def test_list_paging_survives_concurrent_writes(portal: tuple[SandboxServer, HubSpot]) -> None:
    server, client = portal
    ids = insert_companies(server.state, 300)
    first = client.crm.companies.basic_api.get_page(limit=100)
    seen = [r.id for r in first.results]
    # Behind the reader: an update, an archive; ahead of it: an update and a new record.
    client.crm.companies.basic_api.update(
        str(ids[5]), simple_public_object_input=SimplePublicObjectInput(properties={"seats": "3"})
    )
    client.crm.companies.basic_api.archive(str(ids[6]))
    client.crm.companies.basic_api.update(
        str(ids[250]), simple_public_object_input=SimplePublicObjectInput(properties={"seats": "4"})
    )
    created = client.crm.companies.basic_api.create(
        simple_public_object_input_for_create=CompanyInputForCreate(properties={"name": "Late"})
    )
    after = first.paging.next.after
    while after:
        page = client.crm.companies.basic_api.get_page(limit=100, after=after)
        seen.extend(r.id for r in page.results)
        after = page.paging.next.after if page.paging else None
    assert len(seen) == len(set(seen))
    assert seen == [*map(str, ids), created.id]


def test_reset_starts_tasks_and_created_properties_over(
    portal: tuple[SandboxServer, HubSpot],
) -> None:
    server, _ = portal
    with http(server) as raw:
        task = raw.post(
            "/crm/v3/objects/tasks",
            json={"properties": {"hs_task_subject": "Call", "hs_timestamp": "2025-07-01"}},
        )
        assert task.status_code == 201
        made = raw.post(
            "/crm/v3/properties/companies",
            json={
                "name": "clghub_band",
                "label": "Band",
                "type": "string",
                "fieldType": "text",
                "groupName": "companyinformation",
            },
        )
        assert made.status_code == 201
        assert raw.post(f"{server.http_url}/_sandbox/reset").status_code == 200
        assert raw.get("/crm/v3/objects/tasks").json()["results"] == []
        assert raw.get("/crm/v3/properties/companies/clghub_band").status_code == 404
