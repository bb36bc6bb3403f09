"""CRM objects v3: list, read, create, update, archive, and the batch endpoints.

Batch answers follow HubSpot: 200 (201 for create) when every input
succeeded; 207 Multi-Status with ``numErrors`` and ``errors`` when some
failed (unknown or archived ids grouped under ``OBJECT_NOT_FOUND``, bad
property values as ``VALIDATION_ERROR`` per input); the failing inputs are
left out of ``results``, the others are applied. ``batch/archive`` answers
204 whatever the ids. Every update moves ``updatedAt`` and the object's
modified-date property; archiving does not (HubSpot keeps
``hs_lastmodifieddate`` as it was).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response

from clghub.sandbox.apis.hs_catalog import ASSOCIATION_TYPES, Catalog, ObjectCatalog
from clghub.sandbox.apis.hs_http import HubSpotError, parse_json_body, raw_json_response
from clghub.sandbox.apis.hs_records import (
    RecordRenderer,
    association_blocks,
    property_list,
    splice_associations,
)
from clghub.sandbox.apis.hs_values import PropertyProblem, invalid_properties_error, storage_values
from clghub.sandbox.apis.sf_query import plain_rows
from clghub.sandbox.state import SandboxState, log_writes

__all__ = ["BATCH_LIMIT", "LIST_LIMIT", "ObjectsResource", "query_list"]

LIST_LIMIT = 100
BATCH_LIMIT = 100
_REQUIRED = {
    "deals": ("dealname", "dealstage"),
    "tickets": ("subject", "hs_pipeline_stage"),
    "tasks": ("hs_timestamp",),
}
_CREATE_DEFAULTS: dict[str, dict[str, object]] = {
    "deals": {"pipeline": "default"},
    "tickets": {"hs_pipeline": "0"},
    "tasks": {"hs_task_status": "NOT_STARTED", "hs_task_priority": "NONE"},
}
_CLOSED_TICKET_STAGE = "4"


def query_list(request: Request, name: str) -> list[str] | None:
    """A multi-valued query parameter: repeated (``a=1&a=2``) and/or comma-separated."""
    raw = request.query_params.getlist(name)
    if not raw:
        return None
    return [part.strip() for value in raw for part in value.split(",") if part.strip()]


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "false"):
        raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid value for {name}: {value}")
    return value == "true"


def _record_id(raw: object) -> int | None:
    text = str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    return int(text) if text.isdigit() and len(text) < 19 else None


def _object_not_found(raw: str) -> HubSpotError:
    return HubSpotError(
        404,
        "OBJECT_NOT_FOUND",
        "Object not found.  objectId are usually numeric.",
        context={"id": [raw]},
    )


@dataclass(frozen=True)
class _InputFailure:
    """One batch input's (or, for OBJECT_NOT_FOUND, several inputs') failure."""

    category: str
    message: str
    ids: tuple[str, ...]
    problems: tuple[PropertyProblem, ...] = ()


class ObjectsResource:
    def __init__(self, state: SandboxState, catalog: Catalog, renderer: RecordRenderer) -> None:
        self.state = state
        self.catalog = catalog
        self.renderer = renderer

    @property
    def db(self) -> sqlite3.Connection:
        return self.state.db

    # -- reading ------------------------------------------------------------------

    def _render_ids(
        self,
        catalog: ObjectCatalog,
        ids: Sequence[int],
        properties: Sequence[str],
        *,
        archived: bool = False,
    ) -> dict[int, str]:
        if not ids:
            return {}
        found: dict[int, str] = {}
        # Chunks keep the statement shape (and so its cached SQL) fixed.
        for start in range(0, len(ids), BATCH_LIMIT):
            chunk = list(ids[start : start + BATCH_LIMIT])
            chunk += [-1] * (BATCH_LIMIT - len(chunk))
            where = f"archived = ? AND id IN ({', '.join('?' for _ in chunk)})"
            sql = self.renderer.select(catalog, properties, where=where, archived_at=archived)
            for record_id, text in plain_rows(self.db, sql, (1 if archived else 0, *chunk)):
                found[int(record_id)] = text
        return found

    def _targets(self, request: Request) -> list[ObjectCatalog]:
        names = query_list(request, "associations") or []
        return [self.catalog.get(name) for name in names]

    async def list_records(self, request: Request) -> Response:
        catalog = self.catalog.get(request.path_params["object"])
        raw_limit = request.query_params.get("limit", "10")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= LIST_LIMIT:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"limit must be between 1 and {LIST_LIMIT}, got {raw_limit}",
            )
        limit = int(raw_limit)
        raw_after = request.query_params.get("after", "0") or "0"
        if not raw_after.isdigit():
            raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid after: {raw_after}")
        archived = _flag(request, "archived")
        properties = property_list(catalog, query_list(request, "properties"))
        targets = self._targets(request)
        sql = self.renderer.select(
            catalog,
            properties,
            where="archived = ? AND id >= ?",
            archived_at=archived,
            paged=True,
            as_bytes=True,
        )
        rows = plain_rows(self.db, sql, (1 if archived else 0, int(raw_after), limit + 1, 0))
        page, extra = rows[:limit], rows[limit:]
        if targets:
            blocks = association_blocks(self.db, catalog, [int(r[0]) for r in page], targets)
            records = [splice_associations(text, blocks.get(int(rid))) for rid, text in page]
        else:
            records = [text for _, text in page]
        body = b'{"results":[' + b",".join(records) + b"]"
        if extra:
            next_after = str(extra[0][0])
            link = str(request.url.include_query_params(after=next_after))
            body += b',"paging":' + orjson.dumps({"next": {"after": next_after, "link": link}})
        return raw_json_response(body + b"}")

    def _find(
        self, catalog: ObjectCatalog, raw: str, id_property: str | None, *, archived: bool = False
    ) -> int | None:
        if id_property in (None, "", "hs_object_id"):
            record_id = _record_id(raw)
            if record_id is None:
                return None
            row = self.db.execute(
                f"SELECT id FROM {catalog.table} WHERE id = ? AND archived = ?",
                (record_id, 1 if archived else 0),
            ).fetchone()
            return int(row[0]) if row else None
        prop = catalog.properties.get(str(id_property))
        if prop is None or not prop.unique:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Property {id_property} is not a unique identifier property of {catalog.name}",
            )
        row = self.db.execute(
            f'SELECT id FROM {catalog.table} WHERE "{prop.name}" = ? COLLATE NOCASE AND archived = ? '
            "ORDER BY id LIMIT 1",
            (raw, 1 if archived else 0),
        ).fetchone()
        return int(row[0]) if row else None

    async def read(self, request: Request) -> Response:
        catalog = self.catalog.get(request.path_params["object"])
        raw = request.path_params["record_id"]
        archived = _flag(request, "archived")
        record_id = self._find(
            catalog, raw, request.query_params.get("idProperty"), archived=archived
        )
        if record_id is None:
            raise _object_not_found(raw)
        properties = property_list(catalog, query_list(request, "properties"))
        text = self._render_ids(catalog, [record_id], properties, archived=archived)[record_id]
        blocks = association_blocks(self.db, catalog, [record_id], self._targets(request))
        return raw_json_response(splice_associations(text.encode(), blocks.get(record_id)))

    # -- writing -------------------------------------------------------------------

    def _check_unique(
        self, catalog: ObjectCatalog, values: dict[str, object], record_id: int | None
    ) -> None:
        for name, value in values.items():
            prop = catalog.properties[name]
            if not prop.unique or value is None:
                continue
            row = self.db.execute(
                f'SELECT id FROM {catalog.table} WHERE "{name}" = ? COLLATE NOCASE AND archived = 0 '
                "AND id IS NOT ? LIMIT 1",
                (value, record_id),
            ).fetchone()
            if row is not None:
                message = (
                    f"Contact already exists. Existing ID: {row[0]}"
                    if catalog.name == "contacts"
                    else f"A {catalog.singular()} with {name} {value} already exists. Existing ID: {row[0]}"
                )
                raise HubSpotError(409, "CONFLICT", message)

    @staticmethod
    def _derive(catalog: ObjectCatalog, values: dict[str, object], now: str) -> None:
        if catalog.name == "deals" and "dealstage" in values:
            stage = values["dealstage"]
            values["hs_is_closed"] = 1 if stage in ("closedwon", "closedlost") else 0
            values["hs_is_closed_won"] = 1 if stage == "closedwon" else 0
        if catalog.name == "tickets" and "hs_pipeline_stage" in values:
            values["closed_date"] = (
                now if values["hs_pipeline_stage"] == _CLOSED_TICKET_STAGE else None
            )

    def _update(
        self, catalog: ObjectCatalog, record_id: int, values: dict[str, object], now: str
    ) -> list[str]:
        self._check_unique(catalog, values, record_id)
        changes = dict(values)
        self._derive(catalog, changes, now)
        changes[catalog.modified_property] = now
        assignments = ", ".join(f'"{name}" = ?' for name in changes)
        self.db.execute(
            f"UPDATE {catalog.table} SET {assignments}, updated_at = ? WHERE id = ?",
            (*changes.values(), now, record_id),
        )
        log_writes(self.db, "hubspot", catalog.name, str(record_id), changes)
        return list(changes)

    def _links(
        self, catalog: ObjectCatalog, associations: object
    ) -> list[tuple[str, int, int, int]]:
        """Checked associations of a new record: (target, target id, type id, reverse type id)."""
        if associations is None:
            return []
        if not isinstance(associations, list):
            raise HubSpotError(400, "VALIDATION_ERROR", "associations must be a list")
        by_type = {(pair[0], type_id): pair[1] for pair, type_id in ASSOCIATION_TYPES.items()}
        links: list[tuple[str, int, int, int]] = []
        for association in associations:
            to = association.get("to") if isinstance(association, dict) else None
            types = association.get("types") if isinstance(association, dict) else None
            to_id = _record_id(to.get("id")) if isinstance(to, dict) else None
            if to_id is None or not isinstance(types, list) or not types:
                raise HubSpotError(
                    400, "VALIDATION_ERROR", "Each association needs to.id and types"
                )
            for link in types:
                type_id = link.get("associationTypeId") if isinstance(link, dict) else None
                target = by_type.get((catalog.name, type_id)) if isinstance(type_id, int) else None
                if target is None or not isinstance(type_id, int):
                    raise HubSpotError(
                        400,
                        "VALIDATION_ERROR",
                        f"{type_id} is not a valid association type id for {catalog.name}",
                    )
                exists = self.db.execute(
                    f'SELECT 1 FROM "hs_{target}" WHERE id = ? AND archived = 0', (to_id,)
                ).fetchone()
                if exists is None:
                    raise HubSpotError(
                        400,
                        "VALIDATION_ERROR",
                        f"One or more associations are invalid: {target} {to_id} does not exist",
                    )
                links.append((target, to_id, type_id, ASSOCIATION_TYPES[(target, catalog.name)]))
        return links

    def _create(
        self, catalog: ObjectCatalog, values: dict[str, object], associations: object, now: str
    ) -> tuple[int, list[str]]:
        row = {**_CREATE_DEFAULTS.get(catalog.name, {}), **values}
        missing = [name for name in _REQUIRED.get(catalog.name, ()) if row.get(name) is None]
        if missing:
            raise invalid_properties_error(
                [
                    PropertyProblem(name, "REQUIRED_PROPERTY", f"{name} is required")
                    for name in missing
                ]
            )
        self._check_unique(catalog, values, None)
        # Everything is checked before anything is written: a failing batch
        # input leaves nothing behind.
        links = self._links(catalog, associations)
        self._derive(catalog, row, now)
        record_id = self.state.new_hs_id(catalog.name)
        row[catalog.created_property] = now
        row[catalog.modified_property] = now
        columns = ["id", "created_at", "updated_at", "archived", *row]
        placeholders = ", ".join("?" for _ in columns)
        column_list = ", ".join(f'"{c}"' for c in columns)
        self.db.execute(
            f"INSERT INTO {catalog.table} ({column_list}) VALUES ({placeholders})",
            (record_id, now, now, 0, *row.values()),
        )
        self.db.executemany(
            "INSERT OR IGNORE INTO hs_association (from_type, from_id, to_type, to_id, type_id) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                row
                for target, to_id, type_id, reverse in links
                for row in (
                    (catalog.name, record_id, target, to_id, type_id),
                    (target, to_id, catalog.name, record_id, reverse),
                )
            ],
        )
        return record_id, list(row)

    def _written(
        self, catalog: ObjectCatalog, ids: Sequence[int], names: Sequence[str]
    ) -> dict[int, str]:
        return self._render_ids(catalog, ids, property_list(catalog, names))

    async def create(self, request: Request) -> Response:
        catalog = self.catalog.get(request.path_params["object"])
        body = await parse_json_body(request)
        values = storage_values(catalog, body.get("properties", {}))
        now = self.state.timestamp()
        with _transaction(self.db):
            record_id, names = self._create(catalog, values, body.get("associations"), now)
        return raw_json_response(self._written(catalog, [record_id], names)[record_id], status=201)

    async def update(self, request: Request) -> Response:
        catalog = self.catalog.get(request.path_params["object"])
        raw = request.path_params["record_id"]
        body = await parse_json_body(request)
        record_id = self._find(catalog, raw, request.query_params.get("idProperty"))
        if record_id is None:
            raise _object_not_found(raw)
        values = storage_values(catalog, body.get("properties", {}))
        now = self.state.timestamp()
        with _transaction(self.db):
            names = self._update(catalog, record_id, values, now)
        return raw_json_response(self._written(catalog, [record_id], names)[record_id])

    async def archive(self, request: Request) -> Response:
        catalog = self.catalog.get(request.path_params["object"])
        record_id = _record_id(request.path_params["record_id"])
        if record_id is not None:
            self._archive(catalog, [record_id])
        return Response(status_code=204)

    def _archive(self, catalog: ObjectCatalog, ids: Sequence[int]) -> None:
        now = self.state.timestamp()
        self.db.executemany(
            f"UPDATE {catalog.table} SET archived = 1, archived_at = ? WHERE id = ? AND archived = 0",
            [(now, record_id) for record_id in ids],
        )

    # -- batch ------------------------------------------------------------------------

    async def _batch_inputs(
        self, request: Request
    ) -> tuple[ObjectCatalog, dict[str, object], list[dict[str, object]]]:
        catalog = self.catalog.get(request.path_params["object"])
        body = await parse_json_body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise HubSpotError(
                400, "VALIDATION_ERROR", "Invalid input JSON: inputs must be a list of objects"
            )
        if len(inputs) > BATCH_LIMIT:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Too many inputs: {len(inputs)}. A batch takes at most {BATCH_LIMIT} inputs.",
            )
        return catalog, body, inputs

    def _batch_answer(
        self,
        catalog: ObjectCatalog,
        started: str,
        results: list[str],
        failures: list[_InputFailure],
        *,
        ok_status: int = 200,
    ) -> Response:
        body = (
            '{"status":"COMPLETE","results":['
            + ",".join(results)
            + '],"startedAt":"'
            + started
            + '","completedAt":"'
            + self.state.timestamp()
            + '"'
        )
        if not failures:
            return raw_json_response(body + "}", status=ok_status)
        errors = [
            {
                "status": "error",
                "category": failure.category,
                "message": failure.message,
                "context": {"ids": list(failure.ids)},
                "errors": [
                    {"message": p.message, "code": p.error, "context": {"propertyName": [p.name]}}
                    for p in failure.problems
                ],
                "links": {},
            }
            for failure in failures
        ]
        body += ',"numErrors":' + str(len(errors)) + ',"errors":' + orjson.dumps(errors).decode()
        return raw_json_response(body + "}", status=207)

    @staticmethod
    def _not_found_failure(catalog: ObjectCatalog, verb: str, ids: list[str]) -> _InputFailure:
        return _InputFailure(
            "OBJECT_NOT_FOUND",
            f"Could not {verb} some {catalog.singular().upper()} objects, they may be deleted or "
            "not exist. Check that ids are valid.",
            tuple(ids),
        )

    @staticmethod
    def _validation_failure(raw_id: str, error: HubSpotError) -> _InputFailure:
        return _InputFailure(error.category, error.message, (raw_id,) if raw_id else ())

    async def batch_read(self, request: Request) -> Response:
        catalog, body, inputs = await self._batch_inputs(request)
        started = self.state.timestamp()
        archived = _flag(request, "archived")
        id_property = body.get("idProperty")
        requested = body.get("properties")
        names = [str(n) for n in requested] if isinstance(requested, list) and requested else None
        properties = property_list(catalog, names)
        ids: list[int] = []
        missing: list[str] = []
        for item in inputs:
            raw = str(item.get("id", ""))
            record_id = self._find(
                catalog, raw, str(id_property) if id_property else None, archived=archived
            )
            if record_id is None:
                missing.append(raw)
            elif record_id not in ids:
                ids.append(record_id)
        rendered = self._render_ids(catalog, ids, properties, archived=archived)
        failures = [self._not_found_failure(catalog, "get", missing)] if missing else []
        return self._batch_answer(catalog, started, [rendered[i] for i in ids], failures)

    async def batch_update(self, request: Request) -> Response:
        catalog, _, inputs = await self._batch_inputs(request)
        started = self.state.timestamp()
        counts = Counter(str(item.get("id")) for item in inputs)
        duplicates = sorted(raw for raw, count in counts.items() if count > 1)
        if duplicates:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique",
            )
        now = self.state.timestamp()
        updated: list[tuple[int, list[str]]] = []
        missing: list[str] = []
        failures: list[_InputFailure] = []
        with _transaction(self.db):
            for item in inputs:
                raw = str(item.get("id", ""))
                id_property = item.get("idProperty")
                record_id = self._find(catalog, raw, str(id_property) if id_property else None)
                if record_id is None:
                    missing.append(raw)
                    continue
                try:
                    values = storage_values(catalog, item.get("properties"))
                    names = self._update(catalog, record_id, values, now)
                except HubSpotError as error:
                    failures.append(self._validation_failure(raw, error))
                    continue
                updated.append((record_id, names))
        if missing:
            failures.insert(0, self._not_found_failure(catalog, "update", missing))
        results = [self._written(catalog, [rid], names)[rid] for rid, names in updated]
        return self._batch_answer(catalog, started, results, failures)

    async def batch_create(self, request: Request) -> Response:
        catalog, _, inputs = await self._batch_inputs(request)
        started = self.state.timestamp()
        now = self.state.timestamp()
        created: list[tuple[int, list[str]]] = []
        failures: list[_InputFailure] = []
        with _transaction(self.db):
            for item in inputs:
                try:
                    values = storage_values(catalog, item.get("properties"))
                    record_id, names = self._create(catalog, values, item.get("associations"), now)
                    created.append((record_id, names))
                except HubSpotError as error:
                    failures.append(self._validation_failure("", error))
        results = [self._written(catalog, [rid], names)[rid] for rid, names in created]
        return self._batch_answer(catalog, started, results, failures, ok_status=201)

    async def batch_upsert(self, request: Request) -> Response:
        catalog, _, inputs = await self._batch_inputs(request)
        started = self.state.timestamp()
        now = self.state.timestamp()
        written: list[tuple[int, list[str], bool]] = []
        failures: list[_InputFailure] = []
        with _transaction(self.db):
            for item in inputs:
                raw = str(item.get("id", ""))
                id_property = item.get("idProperty")
                if not id_property:
                    raise HubSpotError(400, "VALIDATION_ERROR", "Upsert inputs need an idProperty")
                try:
                    record_id = self._find(catalog, raw, str(id_property))
                    values = storage_values(catalog, item.get("properties"))
                    if record_id is None:
                        values.setdefault(str(id_property), raw)
                        record_id, names = self._create(catalog, values, None, now)
                        written.append((record_id, names, True))
                    else:
                        names = self._update(catalog, record_id, values, now)
                        written.append((record_id, names, False))
                except HubSpotError as error:
                    failures.append(self._validation_failure(raw, error))
        results = [
            self._written(catalog, [rid], names)[rid][:-1]
            + f',"new":{"true" if new else "false"}}}'
            for rid, names, new in written
        ]
        return self._batch_answer(catalog, started, results, failures)

    async def batch_archive(self, request: Request) -> Response:
        catalog, _, inputs = await self._batch_inputs(request)
        ids = [rid for rid in (_record_id(item.get("id")) for item in inputs) if rid is not None]
        with _transaction(self.db):
            self._archive(catalog, ids)
        return Response(status_code=204)


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
