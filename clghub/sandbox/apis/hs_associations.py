"""Associations v4 and owners.

``GET /crm/v4/objects/{from}/{id}/associations/{to}`` pages one record's
links; ``POST /crm/v4/associations/{from}/{to}/batch/read`` reads up to
1,000 records' links, answering 207 with ``NO_ASSOCIATIONS_FOUND`` for the
ones that have none (HubSpot reports "nothing linked" as an error entry, not
an empty result). Links live in ``hs_association`` in both directions.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from clghub.sandbox.apis.hs_catalog import ASSOCIATION_TYPES, Catalog
from clghub.sandbox.apis.hs_http import HubSpotError, json_response, parse_json_body
from clghub.sandbox.state import SandboxState

__all__ = ["ASSOCIATION_BATCH_LIMIT", "AssociationsResource", "OwnersResource"]

ASSOCIATION_BATCH_LIMIT = 1000
_PAGE_LIMIT = 500
_OWNER_LIMIT = 500


def _links(rows: list[tuple[int, int]]) -> list[dict[str, object]]:
    """``[(to_id, type_id)]`` sorted by to_id -> v4 ``to`` entries, one per record."""
    linked: dict[int, list[dict[str, object]]] = {}
    for to_id, type_id in rows:
        linked.setdefault(int(to_id), []).append(
            {"category": "HUBSPOT_DEFINED", "typeId": int(type_id), "label": None}
        )
    return [{"toObjectId": to_id, "associationTypes": types} for to_id, types in linked.items()]


class AssociationsResource:
    def __init__(self, state: SandboxState, catalog: Catalog) -> None:
        self.state = state
        self.catalog = catalog

    async def list_links(self, request: Request) -> Response:
        source = self.catalog.get(request.path_params["from_object"])
        target = self.catalog.get(request.path_params["to_object"])
        raw_id = request.path_params["record_id"]
        raw_limit = request.query_params.get("limit", str(_PAGE_LIMIT))
        raw_after = request.query_params.get("after", "0") or "0"
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= _PAGE_LIMIT:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"limit must be between 1 and {_PAGE_LIMIT}"
            )
        if not raw_after.isdigit() or not raw_id.isdigit():
            raise HubSpotError(400, "VALIDATION_ERROR", "ids and after must be numeric")
        limit = int(raw_limit)
        rows = self.state.db.execute(
            "SELECT to_id, type_id FROM hs_association WHERE from_type = ? AND from_id = ? "
            "AND to_type = ? AND to_id >= ? ORDER BY to_id, type_id",
            (source.name, int(raw_id), target.name, int(raw_after)),
        ).fetchall()
        links = _links([(r[0], r[1]) for r in rows])
        body: dict[str, object] = {"results": links[:limit]}
        if len(links) > limit:
            after = str(links[limit]["toObjectId"])
            link = str(request.url.include_query_params(after=after))
            body["paging"] = {"next": {"after": after, "link": link}}
        return json_response(body)

    async def batch_read(self, request: Request) -> Response:
        source = self.catalog.get(request.path_params["from_object"])
        target = self.catalog.get(request.path_params["to_object"])
        body = await parse_json_body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise HubSpotError(400, "VALIDATION_ERROR", "inputs must be a list of {id} objects")
        if len(inputs) > ASSOCIATION_BATCH_LIMIT:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Too many inputs: {len(inputs)}. The limit is {ASSOCIATION_BATCH_LIMIT}.",
            )
        started = self.state.timestamp()
        results: list[dict[str, object]] = []
        errors: list[dict[str, object]] = []
        for item in inputs:
            raw = str(item.get("id", ""))
            rows = (
                self.state.db.execute(
                    "SELECT to_id, type_id FROM hs_association WHERE from_type = ? AND from_id = ? "
                    "AND to_type = ? ORDER BY to_id, type_id",
                    (source.name, int(raw), target.name),
                ).fetchall()
                if raw.isdigit()
                else []
            )
            if rows:
                results.append({"from": {"id": raw}, "to": _links([(r[0], r[1]) for r in rows])})
                continue
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                    "message": f"No {target.singular()} is associated with {source.singular()} {raw}.",
                    "context": {
                        "fromObjectId": [raw],
                        "fromObjectType": [source.singular()],
                        "toObjectType": [target.singular()],
                    },
                    "errors": [],
                    "links": {},
                }
            )
        answer: dict[str, object] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": self.state.timestamp(),
        }
        if errors:
            answer.update({"numErrors": len(errors), "errors": errors})
            return json_response(answer, status=207)
        return json_response(answer)

    async def create_default(self, request: Request) -> Response:
        """PUT .../associations/default/{to}/{to_id}: link two records with the default type."""
        source = self.catalog.get(request.path_params["from_object"])
        target = self.catalog.get(request.path_params["to_object"])
        raw_from, raw_to = request.path_params["record_id"], request.path_params["to_id"]
        type_id = ASSOCIATION_TYPES.get((source.name, target.name))
        reverse = ASSOCIATION_TYPES.get((target.name, source.name))
        if type_id is None or reverse is None:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"No default association between {source.name} and {target.name}",
            )
        db = self.state.db
        for obj, raw in ((source, raw_from), (target, raw_to)):
            found = (
                db.execute(
                    f"SELECT 1 FROM {obj.table} WHERE id = ? AND archived = 0", (int(raw),)
                ).fetchone()
                if raw.isdigit()
                else None
            )
            if found is None:
                raise HubSpotError(
                    404,
                    "OBJECT_NOT_FOUND",
                    f"No {obj.singular()} with id {raw}",
                    context={"id": [raw]},
                )
        db.executemany(
            "INSERT OR IGNORE INTO hs_association (from_type, from_id, to_type, to_id, type_id) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (source.name, int(raw_from), target.name, int(raw_to), type_id),
                (target.name, int(raw_to), source.name, int(raw_from), reverse),
            ],
        )
        now = self.state.timestamp()
        result = {
            "from": {"id": raw_from},
            "to": {"id": raw_to},
            "associationSpec": {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": type_id,
            },
        }
        return json_response(
            {"status": "COMPLETE", "results": [result], "startedAt": now, "completedAt": now}
        )


class OwnersResource:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    @staticmethod
    def _owner(row: tuple[object, ...]) -> dict[str, object]:
        owner_id, email, first, last, user_id, teams, created, updated, archived = row
        try:
            parsed = orjson.loads(str(teams)) if teams else []
        except orjson.JSONDecodeError:
            parsed = []
        return {
            "id": str(owner_id),
            "email": email,
            "type": "PERSON",
            "firstName": first,
            "lastName": last,
            "userId": user_id,
            "userIdIncludingInactive": user_id,
            "createdAt": created,
            "updatedAt": updated,
            "archived": bool(archived),
            "teams": parsed if isinstance(parsed, list) else [],
        }

    _COLUMNS = "id, email, firstName, lastName, userId, teams, created_at, updated_at, archived"

    async def list_owners(self, request: Request) -> Response:
        raw_limit = request.query_params.get("limit", "100")
        raw_after = request.query_params.get("after", "0") or "0"
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= _OWNER_LIMIT:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"limit must be between 1 and {_OWNER_LIMIT}"
            )
        if not raw_after.isdigit():
            raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid after: {raw_after}")
        archived = 1 if request.query_params.get("archived", "false").lower() == "true" else 0
        limit = int(raw_limit)
        sql = f"SELECT {self._COLUMNS} FROM hs_owners WHERE archived = ? AND id >= ?"
        params: list[object] = [archived, int(raw_after)]
        email = request.query_params.get("email")
        if email:
            sql += " AND email = ? COLLATE NOCASE"
            params.append(email)
        rows = self.state.db.execute(sql + " ORDER BY id LIMIT ?", (*params, limit + 1)).fetchall()
        body: dict[str, object] = {"results": [self._owner(tuple(r)) for r in rows[:limit]]}
        if len(rows) > limit:
            after = str(rows[limit][0])
            link = str(request.url.include_query_params(after=after))
            body["paging"] = {"next": {"after": after, "link": link}}
        return json_response(body)

    async def read_owner(self, request: Request) -> Response:
        raw = request.path_params["owner_id"]
        by_user = request.query_params.get("idProperty", "id") == "userId"
        archived = 1 if request.query_params.get("archived", "false").lower() == "true" else 0
        column = "userId" if by_user else "id"
        row = (
            self.state.db.execute(
                f"SELECT {self._COLUMNS} FROM hs_owners WHERE {column} = ? AND archived = ?",
                (int(raw), archived),
            ).fetchone()
            if raw.isdigit()
            else None
        )
        if row is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found", context={"id": [raw]})
        return json_response(self._owner(tuple(row)))
