"""HubSpot properties (definitions, creation, groups), associations v4 and
owners, through hubspot-api-client."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    SimplePublicObjectBatchInput,
)
from hubspot.crm.properties import ApiException, PropertyCreate, PropertyGroupCreate

from clghub.sandbox.schema import HS_OBJECTS
from clghub.sandbox.server import SandboxServer
from tests.sandbox.crm_fixtures import associate, crm_sandbox, hubspot, insert_hs, ts


@pytest.fixture
def portal() -> Iterator[tuple[SandboxServer, HubSpot]]:
    with crm_sandbox() as server:
        yield server, hubspot(server)


def writeback_property(name: str = "clghub_value_score") -> PropertyCreate:
    return PropertyCreate(
        name=name,
        label="Value score",
        type="number",
        field_type="number",
        group_name="companyinformation",
        description="Written by clghub",
    )


def test_definitions_come_from_the_catalogue(portal: tuple[SandboxServer, HubSpot]) -> None:
    _, client = portal
    listed = client.crm.properties.core_api.get_all(object_type="companies")
    by_name = {p.name: p for p in listed.results}
    assert set(by_name) == {p.name for p in HS_OBJECTS["companies"]}
    assert by_name["name"].hubspot_defined is True
    assert by_name["segment"].hubspot_defined is None
    assert by_name["hs_object_id"].modification_metadata.read_only_value is True
    assert [o.value for o in by_name["lifecyclestage"].options] == [
        "lead",
        "opportunity",
        "customer",
        "other",
    ]
    assert "clghub_value_score" not in by_name
    single = client.crm.properties.core_api.get_by_name(
        object_type="deals", property_name="dealstage"
    )
    assert single.type == "enumeration"
    assert single.field_type == "radio"


def test_created_property_is_writable_at_once(portal: tuple[SandboxServer, HubSpot]) -> None:
    server, client = portal
    company = insert_hs(server.state, "companies", name="Acme")
    created = client.crm.properties.core_api.create(
        object_type="companies", property_create=writeback_property()
    )
    assert (created.name, created.type, created.group_name) == (
        "clghub_value_score",
        "number",
        "companyinformation",
    )
    assert created.hubspot_defined is None
    answer = client.crm.companies.batch_api.update(
        batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(
                    id=str(company), properties={"clghub_value_score": "71.5"}
                )
            ]
        )
    )
    assert answer.results[0].properties["clghub_value_score"] == "71.5"
    read = client.crm.companies.basic_api.get_by_id(str(company), properties=["clghub_value_score"])
    assert read.properties["clghub_value_score"] == "71.5"
    with pytest.raises(ApiException) as raised:
        client.crm.properties.core_api.create(
            object_type="companies", property_create=writeback_property()
        )
    assert raised.value.status == 409
    assert orjson.loads(raised.value.body)["category"] == "OBJECT_ALREADY_EXISTS"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"field_type": "select"}, "fieldType select is not valid for a property of type number"),
        ({"group_name": "nowhere"}, "Property group nowhere does not exist"),
        ({"name": "Bad Name"}, "Invalid property name"),
        ({"type": "enumeration", "field_type": "select"}, "needs options"),
    ],
)
def test_invalid_definitions_are_refused(
    portal: tuple[SandboxServer, HubSpot], change: dict[str, str], fragment: str
) -> None:
    _, client = portal
    definition = writeback_property()
    for attribute, value in change.items():
        setattr(definition, attribute, value)
    with pytest.raises(ApiException) as raised:
        client.crm.properties.core_api.create(object_type="companies", property_create=definition)
    assert raised.value.status == 400
    assert fragment in orjson.loads(raised.value.body)["message"]


def test_groups(portal: tuple[SandboxServer, HubSpot]) -> None:
    _, client = portal
    groups = client.crm.properties.groups_api.get_all(object_type="companies")
    assert "companyinformation" in {g.name for g in groups.results}
    created = client.crm.properties.groups_api.create(
        object_type="companies",
        property_group_create=PropertyGroupCreate(name="clghub", label="clghub value"),
    )
    assert created.name == "clghub"
    prop = writeback_property("clghub_band")
    prop.type, prop.field_type, prop.group_name = "enumeration", "select", "clghub"
    prop.options = [{"label": "Green", "value": "green"}, {"label": "Red", "value": "red"}]
    made = client.crm.properties.core_api.create(object_type="companies", property_create=prop)
    assert [o.value for o in made.options] == ["green", "red"]


def test_associations_v4(portal: tuple[SandboxServer, HubSpot]) -> None:
    server, client = portal
    company = insert_hs(server.state, "companies", name="Parent")
    deals = [
        insert_hs(server.state, "deals", dealname=f"Deal {n}", closedate=ts(n)) for n in range(3)
    ]
    for deal in deals:
        associate(server.state, "deals", deal, "companies", company)
    lonely = insert_hs(server.state, "deals", dealname="Alone")
    page = client.crm.associations.v4.basic_api.get_page(
        "companies", str(company), "deals", limit=2
    )
    assert [r.to_object_id for r in page.results] == [str(d) for d in deals[:2]]
    assert page.results[0].association_types[0].type_id == 6
    assert page.results[0].association_types[0].category == "HUBSPOT_DEFINED"
    rest = client.crm.associations.v4.basic_api.get_page(
        "companies", str(company), "deals", after=page.paging.next.after
    )
    assert [r.to_object_id for r in rest.results] == [str(deals[2])]
    batch = client.crm.associations.v4.batch_api.get_page(
        "deals",
        "companies",
        batch_input_public_fetch_associations_batch_request=BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=str(d)) for d in (*deals, lonely)]
        ),
    )
    assert [r._from.id for r in batch.results] == [str(d) for d in deals]
    assert batch.results[0].to[0].to_object_id == str(company)
    assert batch.num_errors == 1
    error = batch.errors[0]
    assert error.sub_category == "crm.associations.NO_ASSOCIATIONS_FOUND"
    assert error.message == f"No company is associated with deal {lonely}."


def test_owners(portal: tuple[SandboxServer, HubSpot]) -> None:
    server, client = portal
    server.state.db.executemany(
        "INSERT INTO hs_owners (id, email, firstName, lastName, userId, teams, created_at, updated_at, archived) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                101,
                "ana@example.com",
                "Ana",
                "Lima",
                9001,
                '[{"id": "7", "name": "CS", "primary": true}]',
                ts(),
                ts(),
                0,
            ),
            (102, "bo@example.com", "Bo", "Berg", 9002, "[]", ts(), ts(), 0),
            (103, "cy@example.com", "Cy", "Old", 9003, "[]", ts(), ts(), 1),
        ],
    )
    page = client.crm.owners.owners_api.get_page(limit=1)
    assert [o.email for o in page.results] == ["ana@example.com"]
    assert page.results[0].teams[0].name == "CS"
    rest = client.crm.owners.owners_api.get_page(limit=1, after=page.paging.next.after)
    assert [o.id for o in rest.results] == ["102"]
    assert rest.paging is None
    by_email = client.crm.owners.owners_api.get_page(email="BO@example.com")
    assert [o.id for o in by_email.results] == ["102"]
    archived = client.crm.owners.owners_api.get_page(archived=True)
    assert [o.id for o in archived.results] == ["103"]
    assert client.crm.owners.owners_api.get_by_id(9001, id_property="userId").id == "101"
