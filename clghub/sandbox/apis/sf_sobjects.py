"""sObject resources: describe, one record (read, create, update, delete), and
sObject Collections (up to 200 records a call, with or without all-or-none).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.requests import Request
from starlette.responses import Response

from clghub.sandbox.apis import soql
from clghub.sandbox.apis.sf_describe import describe_global, describe_object, object_summary
from clghub.sandbox.apis.sf_http import (
    NOT_FOUND_MESSAGE,
    SalesforceError,
    json_response,
    parse_json_body,
    raw_json_response,
)
from clghub.sandbox.apis.sf_wire import record_json_sql
from clghub.sandbox.apis.sf_write import (
    PreparedWrite,
    WriteFailure,
    apply,
    checked_id,
    create_record,
    delete_record,
    prepare_create,
    prepare_update,
    update_record,
)
from clghub.sandbox.schema import SF_OBJECTS, SfField
from clghub.sandbox.state import SandboxState

__all__ = ["COLLECTION_LIMIT", "SObjectResource", "transaction"]

COLLECTION_LIMIT = 200
"""sObject Collections take at most 200 records a call."""

_ROLLED_BACK = (
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header"
)
# Single-record calls answer "not there" with 404; Collections report it per record.
_NOT_FOUND_CODES = {
    "INVALID_CROSS_REFERENCE_KEY": "NOT_FOUND",
    "ENTITY_IS_DELETED": "ENTITY_IS_DELETED",
}


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN .. COMMIT, or ROLLBACK when the block raises."""
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _sobject(name: str) -> str:
    canonical = soql.canonical_object(name)
    if canonical is None:
        raise SalesforceError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)
    return canonical


def _single_failure(failure: WriteFailure) -> SalesforceError:
    code = _NOT_FOUND_CODES.get(failure.code)
    if code == "NOT_FOUND":
        return SalesforceError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)
    if code is not None:
        return SalesforceError(404, code, failure.message, [])
    return SalesforceError(400, failure.code, failure.message, list(failure.fields))


def _failure_entry(failure: WriteFailure) -> dict[str, object]:
    return {
        "success": False,
        "errors": [
            {"statusCode": failure.code, "message": failure.message, "fields": list(failure.fields)}
        ],
    }


class SObjectResource:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # -- describe ----------------------------------------------------------

    async def describe_global(self, request: Request, version: str) -> Response:
        return json_response(describe_global(version))

    async def describe(self, request: Request, version: str) -> Response:
        sobject = _sobject(request.path_params["sobject"])
        return json_response(describe_object(sobject, version))

    async def basic_info(self, request: Request, version: str) -> Response:
        sobject = _sobject(request.path_params["sobject"])
        return json_response(
            {"objectDescribe": object_summary(sobject, version), "recentItems": []}
        )

    # -- one record --------------------------------------------------------

    def _selected_fields(self, sobject: str, request: Request) -> tuple[SfField, ...]:
        wanted = request.query_params.get("fields")
        if not wanted:
            return SF_OBJECTS[sobject]
        fields = soql.field_map(sobject)
        selected: list[SfField] = []
        for name in (part.strip() for part in wanted.split(",") if part.strip()):
            found = fields.get(name.lower())
            if found is None:
                raise SalesforceError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on entity '{sobject}'. If you are attempting to use "
                    "a custom field, be sure to append the '__c' after the custom field name. "
                    "Please reference your WSDL or the describe call for the appropriate names.",
                )
            selected.append(found)
        return tuple(selected)

    def _render_one(
        self, sobject: str, where: str, value: str, request: Request, version: str
    ) -> Response:
        fields = self._selected_fields(sobject, request)
        expression = record_json_sql(sobject, fields, version)
        row = self.state.db.execute(
            f'SELECT {expression} FROM "sf_{sobject}" WHERE {where} LIMIT 2', (value,)
        ).fetchall()
        if not row:
            raise SalesforceError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)
        if len(row) > 1:
            raise SalesforceError(
                300, "MULTIPLE_CHOICES", "More than one record has this external ID"
            )
        return raw_json_response(row[0][0].encode())

    async def get(self, request: Request, version: str) -> Response:
        sobject = _sobject(request.path_params["sobject"])
        record_id = soql.normalize_id(request.path_params["record_id"])
        if record_id is None:
            raise SalesforceError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)
        deleted = ' AND "IsDeleted" = 0' if "isdeleted" in soql.field_map(sobject) else ""
        return self._render_one(sobject, f'"Id" = ?{deleted}', record_id, request, version)

    async def get_by_external_id(self, request: Request, version: str) -> Response:
        sobject = _sobject(request.path_params["sobject"])
        field = soql.field_map(sobject).get(request.path_params["field"].lower())
        if field is None or not (field.external_id or field.name == "Id"):
            raise SalesforceError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: "
                f"{request.path_params['field']}",
            )
        deleted = ' AND "IsDeleted" = 0' if "isdeleted" in soql.field_map(sobject) else ""
        return self._render_one(
            sobject, f'"{field.name}" = ?{deleted}', request.path_params["value"], request, version
        )

    async def create(self, request: Request, version: str) -> Response:
        sobject = _sobject(request.path_params["sobject"])
        body = await parse_json_body(request)
        if not isinstance(body, dict):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "The request body must be a JSON object"
            )
        try:
            with transaction(self.state.db):
                new_id = create_record(
                    self.state.db,
                    sobject,
                    body,
                    now=self.state.timestamp(),
                    new_id=self.state.new_sf_id,
                )
        except WriteFailure as failure:
            raise _single_failure(failure) from None
        return json_response({"id": new_id, "success": True, "errors": []}, status=201)

    async def update(self, request: Request, version: str) -> Response:
        sobject = _sobject(request.path_params["sobject"])
        body = await parse_json_body(request)
        if not isinstance(body, dict):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "The request body must be a JSON object"
            )
        try:
            record_id = checked_id(sobject, request.path_params["record_id"])
            with transaction(self.state.db):
                update_record(self.state.db, sobject, record_id, body, now=self.state.timestamp())
        except WriteFailure as failure:
            raise _single_failure(failure) from None
        return Response(status_code=204)

    async def delete(self, request: Request, version: str) -> Response:
        sobject = _sobject(request.path_params["sobject"])
        try:
            with transaction(self.state.db):
                delete_record(
                    self.state.db,
                    sobject,
                    request.path_params["record_id"],
                    now=self.state.timestamp(),
                )
        except WriteFailure as failure:
            raise _single_failure(failure) from None
        return Response(status_code=204)

    # -- sObject Collections -------------------------------------------------

    async def collection(self, request: Request, version: str) -> Response:
        """PATCH: update up to 200 records; POST: create them."""
        creating = request.method == "POST"
        body = await parse_json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "The request body needs a 'records' array"
            )
        records: list[object] = body["records"]
        if len(records) > COLLECTION_LIMIT:
            raise SalesforceError(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records "
                "into this call",
            )
        all_or_none = body.get("allOrNone") is True
        now = self.state.timestamp()
        # Check every record first; write only once the outcome of each is known.
        prepared: list[PreparedWrite | WriteFailure] = []
        for record in records:
            try:
                prepared.append(self._prepare(record, creating=creating, now=now))
            except WriteFailure as failure:
                prepared.append(failure)
        if all_or_none and any(isinstance(p, WriteFailure) for p in prepared):
            return json_response([_rolled_back(p) for p in prepared])
        results: list[dict[str, object]] = []
        with transaction(self.state.db):
            for item in prepared:
                if isinstance(item, WriteFailure):
                    results.append(_failure_entry(item))
                else:
                    record_id = apply(self.state.db, item, self.state.new_sf_id)
                    results.append({"id": record_id, "success": True, "errors": []})
        return json_response(results)

    def _prepare(self, record: object, *, creating: bool, now: str) -> PreparedWrite:
        if not isinstance(record, dict):
            raise WriteFailure("INVALID_FIELD", "Each record must be a JSON object")
        attributes = record.get("attributes")
        type_name = attributes.get("type") if isinstance(attributes, dict) else None
        if not isinstance(type_name, str) or not type_name:
            raise WriteFailure("INVALID_TYPE", "Must specify a type in attributes")
        sobject = soql.canonical_object(type_name)
        if sobject is None:
            raise WriteFailure("INVALID_TYPE", f"sObject type '{type_name}' is not supported.")
        if creating:
            return prepare_create(self.state.db, sobject, record, now=now)
        raw_id = next((v for k, v in record.items() if k.lower() == "id"), None)
        if raw_id is None:
            raise WriteFailure("MISSING_ARGUMENT", "Id not specified in an update call", ("Id",))
        return prepare_update(self.state.db, sobject, str(raw_id), record, now=now)


def _rolled_back(item: PreparedWrite | WriteFailure) -> dict[str, object]:
    if isinstance(item, WriteFailure):
        return _failure_entry(item)
    entry: dict[str, object] = {
        "success": False,
        "errors": [
            {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": _ROLLED_BACK,
                "fields": [],
            }
        ],
    }
    if item.record_id is not None:
        entry = {"id": item.record_id, **entry}
    return entry
