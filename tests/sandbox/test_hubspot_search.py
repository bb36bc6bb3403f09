"""HubSpot CRM search through hubspot-api-client: filters, sorting, paging,
the 10,000-result window, archived records and the indexing lag."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import orjson
import pytest
from hubspot import HubSpot
from hubspot.crm.companies import ApiException, Filter, FilterGroup, PublicObjectSearchRequest

from clghub.sandbox.server import SandboxServer
from clghub.sandbox.state import parse_ts
from tests.sandbox.crm_fixtures import crm_sandbox, http, hubspot, insert_companies, insert_hs, ts

COMPANIES = 10_050


def epoch_ms(storage: str) -> str:
    return str(int(parse_ts(storage).timestamp() * 1000))


@pytest.fixture(scope="module")
def portal() -> Iterator[tuple[SandboxServer, HubSpot, list[int]]]:
    """10,050 companies modified one second apart, every tenth in EMEA."""
    with crm_sandbox(hs_search_per_second=1000) as server:
        ids = insert_companies(server.state, COMPANIES)
        server.state.db.executemany(
            'UPDATE "hs_companies" SET region = ? WHERE id = ?',
            [("EMEA" if n % 10 == 0 else "NA", company) for n, company in enumerate(ids)],
        )
        yield server, hubspot(server), ids


def search(client: HubSpot, **request: object) -> object:
    return client.crm.companies.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(**request)
    )


def test_filters_sort_and_page(portal: tuple[SandboxServer, HubSpot, list[int]]) -> None:
    _, client, ids = portal
    since = epoch_ms(ts(5000))
    groups = [
        FilterGroup(
            filters=[
                Filter(property_name="hs_lastmodifieddate", operator="GTE", value=since),
                Filter(property_name="region", operator="EQ", value="emea"),
            ]
        )
    ]
    collected: list[str] = []
    after: str | None = None
    while True:
        page = search(
            client,
            filter_groups=groups,
            sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
            properties=["name", "region"],
            limit=200,
            after=after,
        )
        assert page.total == len([i for n, i in enumerate(ids) if n >= 5000 and n % 10 == 0])
        collected.extend(r.id for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    expected = [str(i) for n, i in enumerate(ids) if n >= 5000 and n % 10 == 0]
    assert collected == list(reversed(expected))
    assert set(page.results[0].properties) == {
        "name",
        "region",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    }


def test_operators(portal: tuple[SandboxServer, HubSpot, list[int]]) -> None:
    server, client, ids = portal
    special = insert_hs(
        server.state,
        "companies",
        name="Acme Rocket Works",
        domain="rockets.acme.example",
        seats=40.0,
    )

    def ids_for(*filters: Filter) -> list[str]:
        page = search(client, filter_groups=[FilterGroup(filters=list(filters))], limit=200)
        return [r.id for r in page.results]

    window = [
        Filter(
            property_name="hs_object_id",
            operator="BETWEEN",
            value=str(ids[10]),
            high_value=str(ids[12]),
        )
    ]
    assert ids_for(*window) == [str(i) for i in ids[10:13]]
    assert ids_for(
        Filter(property_name="hs_object_id", operator="IN", values=[str(ids[3]), str(ids[7])])
    ) == [
        str(ids[3]),
        str(ids[7]),
    ]
    assert ids_for(Filter(property_name="seats", operator="HAS_PROPERTY")) == [str(special)]
    assert ids_for(Filter(property_name="name", operator="CONTAINS_TOKEN", value="rocket")) == [
        str(special)
    ]
    assert ids_for(
        Filter(property_name="domain", operator="CONTAINS_TOKEN", value="*.acme.example")
    ) == [str(special)]
    assert (
        ids_for(
            Filter(property_name="seats", operator="GT", value="39.5"),
            Filter(property_name="name", operator="NOT_CONTAINS_TOKEN", value="works"),
        )
        == []
    )


def test_no_page_reaches_past_10000_results(
    portal: tuple[SandboxServer, HubSpot, list[int]],
) -> None:
    _, client, ids = portal
    last_allowed = search(client, limit=100, after="9900")
    assert [r.id for r in last_allowed.results] == [str(i) for i in ids[9900:10000]]
    assert last_allowed.paging.next.after == "10000"
    with pytest.raises(ApiException) as raised:
        search(client, limit=100, after="10000")
    assert raised.value.status == 400
    body = orjson.loads(raised.value.body)
    assert body["status"] == "error"
    assert body["category"] == "VALIDATION_ERROR"
    with pytest.raises(ApiException):
        search(client, limit=200, after="9900")
    window = [
        Filter(property_name="hs_object_id", operator="GT", value=str(ids[9999])),
        Filter(property_name="hs_object_id", operator="LTE", value=str(ids[-1])),
    ]
    windowed = search(
        client, filter_groups=[FilterGroup(filters=window)], sorts=["hs_object_id"], limit=100
    )
    assert windowed.total == COMPANIES - 10000
    assert [r.id for r in windowed.results] == [str(i) for i in ids[10000:]]


def test_request_limits(portal: tuple[SandboxServer, HubSpot, list[int]]) -> None:
    server, _, _ = portal
    one = {"filters": [{"propertyName": "name", "operator": "HAS_PROPERTY"}]}
    with http(server) as client:
        too_many_groups = client.post(
            "/crm/v3/objects/companies/search", json={"filterGroups": [one] * 6}
        )
        too_big = client.post("/crm/v3/objects/companies/search", json={"limit": 201})
        unknown = client.post(
            "/crm/v3/objects/companies/search",
            json={
                "filterGroups": [
                    {"filters": [{"propertyName": "nope", "operator": "EQ", "value": "x"}]}
                ]
            },
        )
    for response in (too_many_groups, too_big, unknown):
        assert response.status_code == 400
        assert response.json()["category"] == "VALIDATION_ERROR"
    assert "x-hubspot-ratelimit-max" not in too_big.headers


def test_archived_records_and_fresh_writes_stay_out_of_search() -> None:
    with crm_sandbox(search_lag_seconds=30) as server:
        client = hubspot(server)
        old = insert_hs(server.state, "companies", name="Indexed")
        insert_hs(server.state, "companies", name="Archived", archived=True)
        fresh_stamp = server.state.timestamp()
        fresh = insert_hs(
            server.state, "companies", name="Fresh", created_at=fresh_stamp, updated_at=fresh_stamp
        )
        found = search(client, limit=10)
        assert [r.id for r in found.results] == [str(old)]
        listed = client.crm.companies.basic_api.get_page()
        assert {r.id for r in listed.results} == {str(old), str(fresh)}
        server.state.advance(31)
        assert {r.id for r in search(client, limit=10).results} == {str(old), str(fresh)}
        assert isinstance(found.results[0].updated_at, datetime)
