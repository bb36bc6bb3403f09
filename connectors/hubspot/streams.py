"""HubSpot streams: list for the first load, windowed search for increments, an archived pass.

Increments search ``modified in [cursor - lookback, sync start)`` sorted by
``hs_object_id`` and windowed with ``hs_object_id > last id``: every request
is a fresh query that returns at most one page, so the 10,000-result cap of
search is never reached, even when more than 10,000 records share one
modification timestamp (bulk imports do that), and a resumed run continues
after the last committed id. Archiving does not change the modification
date and search never returns archived records, so each incremental run
also lists ``archived=true``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from clghub.config.models import HubSpotSourceConfig
from clghub.connectors.hubspot.client import HubSpotClient
from clghub.sync.mapping import StreamMapping
from clghub.sync.stream import Page, StreamState

__all__ = ["SEARCH_PAGE", "HubSpotObjectStream", "HubSpotOwnersStream"]

log = logging.getLogger(__name__)

SEARCH_PAGE = 200  # the search endpoint's maximum page size
LIST_PAGE = 100  # the list endpoint's maximum page size
# Keep GET URLs well under the length at which HubSpot answers 414.
_MAX_PROPERTY_QUERY = 6000
# Fields the connector adds to a record rather than reads as properties
# (contacts have no "name" property: it is first name + last name).
_SYNTHETIC = {"id", "archived", "archivedAt", "createdAt", "updatedAt", "company_id"}
_SYNTHETIC_BY_OBJECT = {"contacts": {"name"}}
_PRIMARY_TYPES = {1, 5, 339}
# Objects whose records point at a company through an association.
_COMPANY_ASSOCIATED = {"deals", "tickets"}
_MODIFIED = {"contacts": "lastmodifieddate"}


def _now_ms() -> datetime:
    """Now, to the millisecond: the precision of the APIs' modification stamps."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def property_chunks(properties: list[str], limit: int = _MAX_PROPERTY_QUERY) -> list[list[str]]:
    """Split a property list so that no list request's URL gets too long."""
    chunks: list[list[str]] = [[]]
    size = 0
    for name in properties:
        cost = len("&properties=") + len(quote(name))
        if chunks[-1] and size + cost > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(name)
        size += cost
    return chunks


class HubSpotObjectStream:
    source = "hubspot"

    def __init__(
        self,
        client: HubSpotClient,
        object_type: str,
        mapping: StreamMapping,
        config: HubSpotSourceConfig,
    ) -> None:
        self.client = client
        self.name = object_type
        self.mapping = mapping
        self.config = config
        self.warnings: list[str] = []
        self.modified = mapping.modified_field or _MODIFIED.get(object_type, "hs_lastmodifieddate")
        synthetic = _SYNTHETIC | _SYNTHETIC_BY_OBJECT.get(object_type, set())
        wanted = [f for f in mapping.source_fields() if f not in synthetic]
        if "name" in mapping.source_fields() and object_type == "contacts":
            wanted += [p for p in ("firstname", "lastname") if p not in wanted]
        for essential in ("hs_object_id", self.modified):
            if essential not in wanted:
                wanted.append(essential)
        self.properties = wanted

    # -- schema ---------------------------------------------------------------

    def validate(self) -> list[str]:
        """Mapped properties missing in the portal (dropped with a warning)."""
        response = self.client.properties(self.name)
        available = {p["name"] for p in (response.body or {}).get("results", [])}
        missing = [p for p in self.properties if p not in available and p != "hs_object_id"]
        if missing:
            message = f"{self.name}: mapped properties missing in HubSpot, skipped: {', '.join(missing)} (see {self.mapping.label})"
            log.warning(message)
            self.warnings.append(message)
            self.properties = [p for p in self.properties if p not in missing]
            self.mapping = self.mapping.without(set(missing))
        return missing

    # -- reading ----------------------------------------------------------------

    def read(self, state: StreamState) -> Iterator[Page]:
        self.validate()
        position = dict(state.position)
        phase = position.get("phase")
        if phase is None:
            now = _now_ms()
            if state.cursor and not state.full_refresh:
                start = datetime.fromisoformat(state.cursor) - timedelta(
                    minutes=self.config.lookback_minutes
                )
                position = {
                    "phase": "search",
                    "start": _iso(start),
                    "end": _iso(now),
                    "last_id": "0",
                }
            else:
                position = {"phase": "list", "end": _iso(now), "after": None}
        if position["phase"] == "list":
            yield from self._list(position, state.cursor)
            position = {"phase": "archived", "end": position["end"], "after": None}
        if position["phase"] == "search":
            yield from self._search(position, state.cursor)
            position = {"phase": "archived", "end": position["end"], "after": None}
        yield from self._archived(position, state.cursor)

    def _list(self, position: dict[str, Any], cursor: str | None = None) -> Iterator[Page]:
        after = position.get("after")
        chunks = property_chunks(self.properties)
        associations = ["companies"] if self.name in _COMPANY_ASSOCIATED else None
        while True:
            merged: dict[str, dict[str, Any]] = {}
            next_after: str | None = None
            for index, chunk in enumerate(chunks):
                response = self.client.list_page(
                    self.name,
                    after=after,
                    properties=chunk,
                    archived=False,
                    associations=associations if index == 0 else None,
                    limit=LIST_PAGE,
                )
                body = response.body or {}
                for result in body.get("results", []):
                    record = merged.setdefault(str(result["id"]), self._flatten(result))
                    record.update(result.get("properties") or {})
                if index == 0:
                    next_after = ((body.get("paging") or {}).get("next") or {}).get("after")
            records = [self._finish(r) for r in merged.values()]
            if not next_after:
                # Records archived before this load follow, as they do after every increment.
                yield Page(
                    records,
                    cursor=cursor,
                    position={"phase": "archived", "end": position["end"], "after": None},
                    mode="full",
                )
                return
            after = str(next_after)
            yield Page(records, cursor=cursor, position={**position, "after": after}, mode="full")

    def _search(self, position: dict[str, Any], cursor: str | None) -> Iterator[Page]:
        start = datetime.fromisoformat(position["start"])
        end = datetime.fromisoformat(position["end"])
        last_id = str(position.get("last_id") or "0")
        while True:
            request = {
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": self.modified, "operator": "GTE", "value": _ms(start)},
                            {"propertyName": self.modified, "operator": "LT", "value": _ms(end)},
                            {"propertyName": "hs_object_id", "operator": "GT", "value": last_id},
                        ]
                    }
                ],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": self.properties,
                "limit": SEARCH_PAGE,
            }
            body = self.client.search(self.name, request).body or {}
            results = body.get("results", [])
            records = [self._flatten(r) for r in results]
            if self.name in _COMPANY_ASSOCIATED and records:
                self._attach_companies(records)
            records = [self._finish(r) for r in records]
            if records:
                last_id = str(max(int(r["id"]) for r in records))
            if len(results) < SEARCH_PAGE:
                # The window is done; the archived pass follows before the cursor moves.
                yield Page(
                    records,
                    cursor=cursor,
                    position={"phase": "archived", "end": position["end"], "after": None},
                    mode="incremental",
                )
                return
            yield Page(
                records,
                cursor=cursor,
                position={**position, "last_id": last_id},
                mode="incremental",
            )

    def _archived(self, position: dict[str, Any], cursor: str | None) -> Iterator[Page]:
        after = position.get("after")
        while True:
            response = self.client.list_page(
                self.name, after=after, properties=[self.modified], archived=True, limit=LIST_PAGE
            )
            body = response.body or {}
            records = [self._finish(self._flatten(r)) for r in body.get("results", [])]
            for record in records:
                record["archived"] = True
            next_after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not next_after:
                yield Page(records, cursor=position["end"], position={}, mode="incremental")
                return
            after = str(next_after)
            yield Page(
                records, cursor=cursor, position={**position, "after": after}, mode="incremental"
            )

    # -- records ------------------------------------------------------------------

    def _flatten(self, result: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = dict(result.get("properties") or {})
        record["id"] = str(result["id"])
        record["archived"] = bool(result.get("archived", False))
        for key in ("createdAt", "updatedAt", "archivedAt"):
            if result.get(key) is not None:
                record[key] = result[key]
        companies = ((result.get("associations") or {}).get("companies") or {}).get("results") or []
        if companies:
            labelled = [c for c in companies if "unlabeled" not in str(c.get("type", ""))]
            record["company_id"] = str((labelled or companies)[0]["id"])
        return record

    def _finish(self, record: dict[str, Any]) -> dict[str, Any]:
        if self.name == "contacts" and "name" not in record:
            parts = [record.get("firstname"), record.get("lastname")]
            record["name"] = " ".join(p for p in parts if p) or None
        return record

    def _attach_companies(self, records: list[dict[str, Any]]) -> None:
        ids = [r["id"] for r in records]
        body = self.client.associations(self.name, "companies", ids).body or {}
        company: dict[str, str] = {}
        for result in body.get("results", []):
            targets = result.get("to") or []
            primary = [
                t
                for t in targets
                if any(
                    a.get("typeId") in _PRIMARY_TYPES or a.get("label") == "Primary"
                    for a in t.get("associationTypes") or []
                )
            ]
            chosen = (primary or targets)[:1]
            if chosen:
                company[str((result.get("from") or {}).get("id"))] = str(chosen[0]["toObjectId"])
        for record in records:
            if record["id"] in company:
                record["company_id"] = company[record["id"]]


class HubSpotOwnersStream:
    """Owners: a small list read whole each run (archived owners become inactive people)."""

    source = "hubspot"
    name = "owners"

    def __init__(self, client: HubSpotClient, mapping: StreamMapping) -> None:
        self.client = client
        self.mapping = mapping
        self.warnings: list[str] = []

    def read(self, state: StreamState) -> Iterator[Page]:
        now = _iso(_now_ms())
        for archived in (False, True):
            after: str | None = None
            while True:
                body = self.client.owners_page(after=after, archived=archived).body or {}
                records = [self._flatten(r, archived) for r in body.get("results", [])]
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                last = archived and not after
                yield Page(records, cursor=now if last else state.cursor, position={}, mode="full")
                if not after:
                    break

    @staticmethod
    def _flatten(owner: dict[str, Any], archived: bool) -> dict[str, Any]:
        teams = owner.get("teams") or []
        primary = next((t for t in teams if t.get("primary")), teams[0] if teams else None)
        name = " ".join(
            p for p in (owner.get("firstName"), owner.get("lastName")) if p
        ) or owner.get("email")
        return {
            "id": str(owner["id"]),
            "email": owner.get("email"),
            "firstName": owner.get("firstName"),
            "lastName": owner.get("lastName"),
            "name": name,
            "team": (primary or {}).get("name"),
            "archived": archived or bool(owner.get("archived", False)),
            "updatedAt": owner.get("updatedAt"),
        }
