"""Properties API: read definitions, create properties and property groups.

A created property is stored in ``hs_property_def`` and added as a column of
``hs_{object}`` in the same step, so records can carry it at once (clghub's
``clghub_*`` writeback properties do not exist until created here).
"""

from __future__ import annotations

import sqlite3

import orjson
from starlette.requests import Request
from starlette.responses import Response

from clghub.sandbox.apis.hs_catalog import Catalog, ObjectCatalog, PropertyDef, group_label
from clghub.sandbox.apis.hs_http import HubSpotError, json_response, parse_json_body
from clghub.sandbox.state import SandboxState

__all__ = ["FIELD_TYPES", "PROPERTY_TYPES", "PropertiesResource"]

PROPERTY_TYPES = ("string", "number", "date", "datetime", "enumeration", "bool")
FIELD_TYPES: dict[str, tuple[str, ...]] = {
    "string": ("text", "textarea", "file", "html", "phonenumber"),
    "number": ("number", "calculation_equation"),
    "date": ("date",),
    "datetime": ("date",),
    "enumeration": ("select", "radio", "checkbox", "booleancheckbox"),
    "bool": ("booleancheckbox",),
}
"""The field types HubSpot accepts for each property type."""

_BOOL_OPTIONS = [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}]


def _bad(message: str) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message)


class PropertiesResource:
    def __init__(self, state: SandboxState, catalog: Catalog) -> None:
        self.state = state
        self.catalog = catalog

    @property
    def db(self) -> sqlite3.Connection:
        return self.state.db

    # -- groups -----------------------------------------------------------------------

    def _groups(self, catalog: ObjectCatalog) -> dict[str, dict[str, object]]:
        groups: dict[str, dict[str, object]] = {}
        for prop in catalog.properties.values():
            if prop.group not in groups:
                groups[prop.group] = {
                    "name": prop.group,
                    "label": group_label(prop.group),
                    "displayOrder": len(groups),
                    "archived": False,
                }
        for (definition,) in self.db.execute(
            "SELECT definition FROM hs_property_group WHERE object = ? ORDER BY rowid",
            (catalog.name,),
        ):
            stored = orjson.loads(definition)
            if isinstance(stored, dict):
                groups.setdefault(str(stored["name"]), stored)
        return groups

    async def list_groups(self, request: Request) -> Response:
        catalog = self.catalog.get(request.path_params["object"])
        return json_response({"results": list(self._groups(catalog).values())})

    async def read_group(self, request: Request) -> Response:
        catalog = self.catalog.get(request.path_params["object"])
        name = request.path_params["name"]
        group = self._groups(catalog).get(name)
        if group is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Unable to find property group {name}")
        return json_response(group)

    async def create_group(self, request: Request) -> Response:
        catalog = self.catalog.get(request.path_params["object"])
        body = await parse_json_body(request)
        name, label = body.get("name"), body.get("label")
        if not isinstance(name, str) or not Catalog.valid_name(name):
            raise _bad(f"Invalid property group name: {name}")
        if not isinstance(label, str) or not label.strip():
            raise _bad("A property group needs a label")
        groups = self._groups(catalog)
        if name in groups:
            raise HubSpotError(
                409, "OBJECT_ALREADY_EXISTS", f"A property group named {name} already exists."
            )
        order = body.get("displayOrder", -1)
        group = {
            "name": name,
            "label": label,
            "displayOrder": order if isinstance(order, int) else -1,
            "archived": False,
        }
        self.db.execute(
            "INSERT INTO hs_property_group (object, name, definition) VALUES (?, ?, ?)",
            (catalog.name, name, orjson.dumps(group).decode()),
        )
        return json_response(group, status=201)

    # -- properties ----------------------------------------------------------------------

    async def list_properties(self, request: Request) -> Response:
        catalog = self.catalog.get(request.path_params["object"])
        if request.query_params.get("archived", "false").lower() == "true":
            return json_response({"results": []})
        return json_response({"results": [p.to_json() for p in catalog.properties.values()]})

    async def read_property(self, request: Request) -> Response:
        catalog = self.catalog.get(request.path_params["object"])
        name = request.path_params["name"]
        prop = catalog.properties.get(name)
        if prop is None:
            raise HubSpotError(
                404,
                "OBJECT_NOT_FOUND",
                f"Unable to find property named {name} for object type {catalog.singular()}",
            )
        return json_response(prop.to_json())

    async def create_property(self, request: Request) -> Response:
        catalog = self.catalog.get(request.path_params["object"])
        body = await parse_json_body(request)
        created = self._create(catalog, body)
        return json_response(created.to_json(), status=201)

    async def batch_create(self, request: Request) -> Response:
        catalog = self.catalog.get(request.path_params["object"])
        body = await parse_json_body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise _bad("inputs must be a list of property definitions")
        started = self.state.timestamp()
        results: list[dict[str, object]] = []
        errors: list[dict[str, object]] = []
        for item in inputs:
            try:
                results.append(self._create(self.catalog.get(catalog.name), item).to_json())
            except HubSpotError as error:
                errors.append(
                    {
                        "status": "error",
                        "category": error.category,
                        "message": error.message,
                        "context": {"name": [str(item.get("name"))]},
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
        return json_response(answer, status=201)

    def _create(self, catalog: ObjectCatalog, body: dict[str, object]) -> PropertyDef:
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise _bad(f"Missing required fields: {', '.join(missing)}")
        name, kind, field_type = str(body["name"]), str(body["type"]), str(body["fieldType"])
        if not Catalog.valid_name(name):
            raise _bad(
                f"Invalid property name {name}: use lowercase letters, digits and underscores, "
                "starting with a letter (at most 100 characters)"
            )
        if name in catalog.properties:
            raise HubSpotError(
                409,
                "OBJECT_ALREADY_EXISTS",
                f"Property named '{name}' already exists.",
                context={"name": [name]},
            )
        if kind not in PROPERTY_TYPES:
            raise _bad(f"Invalid type {kind}: use one of {', '.join(PROPERTY_TYPES)}")
        if field_type not in FIELD_TYPES[kind]:
            raise _bad(f"fieldType {field_type} is not valid for a property of type {kind}")
        group = str(body["groupName"])
        if group not in self._groups(catalog):
            raise _bad(f"Property group {group} does not exist")
        options = body.get("options")
        if kind == "bool" and not options:
            options = _BOOL_OPTIONS
        if kind in ("enumeration", "bool"):
            if not isinstance(options, list) or not options:
                raise _bad(f"A property of type {kind} needs options")
            for option in options:
                if (
                    not isinstance(option, dict)
                    or not option.get("value")
                    or not option.get("label")
                ):
                    raise _bad("Each option needs a label and a value")
        else:
            options = []
        now = self.state.timestamp()
        definition = {
            "name": name,
            "label": str(body["label"]),
            "type": kind,
            "fieldType": field_type,
            "groupName": group,
            "description": str(body.get("description") or ""),
            "options": options,
            "displayOrder": body.get("displayOrder", -1),
            "hasUniqueValue": body.get("hasUniqueValue") is True,
            "hidden": body.get("hidden") is True,
            "formField": body.get("formField") is True,
            "createdAt": now,
            "updatedAt": now,
        }
        prop = PropertyDef.from_stored(definition)
        self.db.execute(
            "INSERT INTO hs_property_def (object, name, definition) VALUES (?, ?, ?)",
            (catalog.name, name, orjson.dumps(definition).decode()),
        )
        # The column makes the property readable and writable at once; the
        # schema change also tells the catalogue to reload.
        self.db.execute(f'ALTER TABLE {catalog.table} ADD COLUMN "{name}" {prop.column_type}')
        return prop
