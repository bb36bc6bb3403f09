"""HubSpot object types and their property definitions.

Definitions come from schema.py (``custom=True`` ones are the portal's own
properties, ``hubspotDefined: false``), from the tasks object the sandbox
adds for alerts, and from properties created through the properties API:
those are kept in ``hs_property_def`` and become a column of ``hs_{object}``
the moment they are created, so they are readable and writable at once.

The catalogue is reloaded whenever the database schema changes (a property
was created, or the data was regenerated), keyed on SQLite's schema version.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

import orjson

from clghub.sandbox.apis.hs_http import HubSpotError
from clghub.sandbox.schema import HS_ASSOCIATION_TYPES, HS_MODIFIED_PROPERTY, HS_OBJECTS, HsProperty
from clghub.sandbox.state import SandboxState

__all__ = [
    "ASSOCIATION_TYPES",
    "CATALOG_CREATED_AT",
    "OBJECT_ALIASES",
    "SINGULAR",
    "TASK_PROPERTIES",
    "Catalog",
    "ObjectCatalog",
    "PropertyDef",
    "group_label",
]

CATALOG_CREATED_AT = "2020-01-01T00:00:00.000Z"
"""When the portal's built-in property definitions were made."""

SINGULAR = {
    "companies": "company",
    "contacts": "contact",
    "deals": "deal",
    "tickets": "ticket",
    "tasks": "task",
}
_TYPE_IDS = {
    "companies": "0-2",
    "contacts": "0-1",
    "deals": "0-3",
    "tickets": "0-5",
    "tasks": "0-27",
}
OBJECT_ALIASES: dict[str, str] = {
    **{plural: plural for plural in SINGULAR},
    **{singular: plural for plural, singular in SINGULAR.items()},
    **{type_id: plural for plural, type_id in _TYPE_IDS.items()},
}

TASK_PROPERTIES: tuple[HsProperty, ...] = (
    HsProperty("hs_task_subject", "string", "text", "Task Title", "taskinformation"),
    HsProperty("hs_task_body", "string", "textarea", "Task notes", "taskinformation"),
    HsProperty(
        "hs_task_status",
        "enumeration",
        "select",
        "Task Status",
        "taskinformation",
        ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"),
    ),
    HsProperty(
        "hs_task_priority",
        "enumeration",
        "select",
        "Priority",
        "taskinformation",
        ("NONE", "LOW", "MEDIUM", "HIGH"),
    ),
    HsProperty(
        "hs_task_type",
        "enumeration",
        "select",
        "Task Type",
        "taskinformation",
        ("CALL", "EMAIL", "TODO"),
    ),
    HsProperty("hs_timestamp", "datetime", "date", "Due date", "taskinformation"),
    HsProperty("hubspot_owner_id", "enumeration", "select", "Assigned to", "taskinformation"),
    HsProperty("hs_object_id", "number", "number", "Record ID", "taskinformation", read_only=True),
    HsProperty(
        "hs_createdate", "datetime", "date", "Created at", "taskinformation", read_only=True
    ),
    HsProperty(
        "hs_lastmodifieddate",
        "datetime",
        "date",
        "Last Modified Date",
        "taskinformation",
        read_only=True,
    ),
)

_DEFAULTS: dict[str, tuple[str, ...]] = {
    "companies": ("name", "domain"),
    "contacts": ("firstname", "lastname", "email"),
    "deals": ("dealname", "amount", "closedate", "pipeline", "dealstage"),
    "tickets": ("subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority"),
    "tasks": (
        "hs_task_subject",
        "hs_task_body",
        "hs_task_status",
        "hs_task_priority",
        "hs_timestamp",
    ),
}
_GROUP_LABELS = {
    "companyinformation": "Company information",
    "contactinformation": "Contact information",
    "dealinformation": "Deal information",
    "ticketinformation": "Ticket information",
    "taskinformation": "Task information",
    "analyticsinformation": "Web analytics history",
    "objectinformation": "Record information",
}
_UNIQUE_BY_DEFAULT = {("contacts", "email")}
_SQLITE_TYPES = {"number": "REAL", "bool": "INTEGER"}
_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,99}", re.ASCII)


def group_label(name: str) -> str:
    return _GROUP_LABELS.get(name, name.replace("_", " ").capitalize())


def _option_label(value: str) -> str:
    if value in ("true", "false"):
        return value.capitalize()
    return value.replace("_", " ").title() if value.isupper() or "_" in value else value


@dataclass(frozen=True)
class PropertyDef:
    name: str
    type: str
    field_type: str
    label: str
    group: str
    options: tuple[tuple[str, str], ...] = ()
    """(value, label) pairs."""
    hubspot_defined: bool = True
    read_only: bool = False
    unique: bool = False
    description: str = ""
    display_order: int = -1
    hidden: bool = False
    form_field: bool = False
    created_at: str = CATALOG_CREATED_AT
    updated_at: str = CATALOG_CREATED_AT
    extra: dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_schema(cls, obj: str, prop: HsProperty) -> PropertyDef:
        return cls(
            name=prop.name,
            type=prop.type,
            field_type=prop.field_type,
            label=prop.label,
            group=prop.group,
            options=tuple((value, _option_label(value)) for value in prop.options),
            hubspot_defined=not prop.custom,
            read_only=prop.read_only,
            unique=(obj, prop.name) in _UNIQUE_BY_DEFAULT,
            form_field=not prop.read_only,
        )

    @classmethod
    def from_stored(cls, stored: dict[str, object]) -> PropertyDef:
        options = stored.get("options")
        pairs = tuple(
            (str(o.get("value")), str(o.get("label", o.get("value"))))
            for o in (options if isinstance(options, list) else [])
            if isinstance(o, dict)
        )
        return cls(
            name=str(stored["name"]),
            type=str(stored["type"]),
            field_type=str(stored["fieldType"]),
            label=str(stored["label"]),
            group=str(stored["groupName"]),
            options=pairs,
            hubspot_defined=False,
            unique=stored.get("hasUniqueValue") is True,
            description=str(stored.get("description") or ""),
            display_order=int(str(stored.get("displayOrder", -1))),
            hidden=stored.get("hidden") is True,
            form_field=stored.get("formField") is True,
            created_at=str(stored.get("createdAt", CATALOG_CREATED_AT)),
            updated_at=str(stored.get("updatedAt", CATALOG_CREATED_AT)),
        )

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "updatedAt": self.updated_at,
            "createdAt": self.created_at,
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group,
            "options": [
                {
                    "label": label,
                    "value": value,
                    "displayOrder": order,
                    "hidden": False,
                    "description": "",
                }
                for order, (value, label) in enumerate(self.options)
            ],
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": self.name.endswith("owner_id") and self.type == "enumeration",
            "hasUniqueValue": self.unique,
            "hidden": self.hidden,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "formField": self.form_field,
            "archived": False,
        }
        if not self.hubspot_defined:
            body.pop("hubspotDefined")
        return body

    @property
    def column_type(self) -> str:
        return _SQLITE_TYPES.get(self.type, "TEXT")


@dataclass(frozen=True)
class ObjectCatalog:
    name: str
    properties: dict[str, PropertyDef]
    created_property: str
    modified_property: str
    defaults: tuple[str, ...]
    """Properties a read returns when the client names none."""

    @property
    def table(self) -> str:
        return f'"hs_{self.name}"'

    @property
    def always(self) -> tuple[str, ...]:
        """Properties every read carries, whatever the client asked for."""
        return (self.created_property, self.modified_property, "hs_object_id")

    def singular(self) -> str:
        return SINGULAR[self.name]


def _schema_properties(obj: str) -> tuple[HsProperty, ...]:
    return TASK_PROPERTIES if obj == "tasks" else HS_OBJECTS[obj]


class Catalog:
    """Object types and property definitions of the sandbox portal."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._schema_version: int | None = None
        self._objects: dict[str, ObjectCatalog] = {}

    @staticmethod
    def object_name(raw: str) -> str | None:
        return OBJECT_ALIASES.get(raw.lower())

    def get(self, raw: str) -> ObjectCatalog:
        """The catalogue of an object type (plural, singular or type id), or 404."""
        name = self.object_name(raw)
        if name is None:
            raise HubSpotError(
                404,
                "OBJECT_NOT_FOUND",
                f"Unable to infer object type from: {raw}",
            )
        return self._load()[name]

    def all(self) -> dict[str, ObjectCatalog]:
        return self._load()

    def invalidate(self) -> None:
        self._schema_version = None

    def _load(self) -> dict[str, ObjectCatalog]:
        db = self.state.db
        (version,) = db.execute("PRAGMA schema_version").fetchone()
        if version == self._schema_version:
            return self._objects
        self._ensure_tables(db)
        stored: dict[str, list[dict[str, object]]] = {}
        for obj, definition in db.execute("SELECT object, definition FROM hs_property_def"):
            parsed = orjson.loads(definition)
            if isinstance(parsed, dict) and obj in SINGULAR:
                stored.setdefault(obj, []).append(parsed)
        objects: dict[str, ObjectCatalog] = {}
        for obj in SINGULAR:
            properties = {p.name: PropertyDef.from_schema(obj, p) for p in _schema_properties(obj)}
            for definition in stored.get(obj, []):
                created = PropertyDef.from_stored(definition)
                properties.setdefault(created.name, created)
                self._ensure_column(db, obj, created)
            created_property = "hs_createdate" if obj == "tasks" else "createdate"
            modified = HS_MODIFIED_PROPERTY.get(obj, "hs_lastmodifieddate")
            objects[obj] = ObjectCatalog(
                obj, properties, created_property, modified, _DEFAULTS[obj]
            )
        (self._schema_version,) = db.execute("PRAGMA schema_version").fetchone()
        self._objects = objects
        return objects

    @staticmethod
    def _ensure_tables(db: sqlite3.Connection) -> None:
        columns = ", ".join(
            f'"{p.name}" {_SQLITE_TYPES.get(p.type, "TEXT")}'
            for p in TASK_PROPERTIES
            if p.name != "hs_object_id"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS hs_tasks (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, "
            f"updated_at TEXT NOT NULL, archived INTEGER NOT NULL DEFAULT 0, archived_at TEXT, {columns})"
        )
        db.execute("CREATE INDEX IF NOT EXISTS ix_hs_tasks_updated ON hs_tasks (updated_at, id)")
        db.execute(
            "CREATE TABLE IF NOT EXISTS hs_property_def (object TEXT NOT NULL, name TEXT NOT NULL, "
            "definition TEXT NOT NULL, PRIMARY KEY (object, name))"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS hs_property_group (object TEXT NOT NULL, name TEXT NOT NULL, "
            "definition TEXT NOT NULL, PRIMARY KEY (object, name))"
        )

    @staticmethod
    def _ensure_column(db: sqlite3.Connection, obj: str, prop: PropertyDef) -> None:
        present = {row[1] for row in db.execute(f'PRAGMA table_info("hs_{obj}")')}
        if prop.name not in present and _NAME_RE.fullmatch(prop.name):
            db.execute(f'ALTER TABLE "hs_{obj}" ADD COLUMN "{prop.name}" {prop.column_type}')

    @staticmethod
    def valid_name(name: str) -> bool:
        return _NAME_RE.fullmatch(name) is not None


ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    **HS_ASSOCIATION_TYPES,
    ("contacts", "deals"): 4,
    ("deals", "contacts"): 3,
    ("tasks", "companies"): 192,
    ("companies", "tasks"): 191,
    ("tasks", "contacts"): 204,
    ("contacts", "tasks"): 203,
    ("tasks", "deals"): 216,
    ("deals", "tasks"): 215,
}
"""HubSpot-defined association type ids, from -> to (v4 typeId)."""
