"""Writing value properties to HubSpot companies, provisioning them, and tasks for plays.

- Batch update, 100 companies a request. HubSpot answers 200 when all were
  applied and 207 when some were not: the ``results`` list the applied
  companies, ``errors`` name the others by id (``context.ids``). A company in
  neither is in doubt and read back on the next run. A request refused as a
  whole for a bad value (400) is split in halves until the bad company is
  found, so one bad record never holds back the other 99.
- ``provision`` creates the property group and every missing property with
  a fitting type; ``check_fields`` verifies each target property exists,
  is writable and fits its value.
- Tasks for plays: a task associated with the company, with a key in its
  subject. Every try first reads the company's tasks (associations, then a
  batch read: both read their writes at once, unlike search), so a retried
  or repeated creation never makes a second task.

All calls go through :class:`~clghub.connectors.hubspot.client.HubSpotClient`
(pacing under the rate limit, retries, token refresh).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

import orjson
from hubspot import HubSpot

from clghub.config.models import HubSpotWritebackConfig
from clghub.connectors.hubspot.client import HubSpotClient, Response
from clghub.http import ApiError
from clghub.writeback.protocol import (
    FieldCheck,
    FieldInfo,
    RecordWrite,
    TargetField,
    WriteOutcome,
    refuse_unowned,
)
from clghub.writeback.values import ValueSpec, canonical_from_crm, parse_crm_datetime

__all__ = ["BATCH_SIZE", "HubSpotTaskCreator", "HubSpotWriter", "property_definition"]

log = logging.getLogger(__name__)

BATCH_SIZE = 100  # batch endpoints take at most 100 inputs
_STRING_LIMIT = 65_536  # HubSpot's longest string property value
_TASK_TO_COMPANY = 192  # HUBSPOT_DEFINED association type: task -> company
_SUBJECT_LENGTH = 255
_COMPATIBLE: dict[str, set[str]] = {
    "number": {"number", "string"},
    "text": {"string"},
    "choice": {"enumeration", "string"},
    "datetime": {"datetime", "date", "string"},
}


def property_definition(spec: ValueSpec, name: str, group: str) -> dict[str, object]:
    """The HubSpot property a clghub value is written to."""
    definition: dict[str, object] = {
        "name": name,
        "label": spec.label,
        "description": spec.description,
        "groupName": group,
        "formField": False,
    }
    if spec.kind == "number":
        definition.update(type="number", fieldType="number")
    elif spec.kind == "choice":
        definition.update(
            type="enumeration",
            fieldType="select",
            options=[
                {"label": choice.capitalize(), "value": choice, "displayOrder": n}
                for n, choice in enumerate(spec.choices)
            ],
        )
    elif spec.kind == "datetime":
        definition.update(type="datetime", fieldType="date")
    else:
        definition.update(type="string", fieldType="textarea")
    return definition


def _wire(info: FieldInfo, text: str | None) -> str:
    if text is None:
        return ""  # an empty string clears a HubSpot property
    if info.type in ("datetime", "date"):
        moment = parse_crm_datetime(text)
        if moment is None:
            return text
        if info.type == "date":
            return moment.date().isoformat()
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return text


class HubSpotWriter:
    """The HubSpot writer of :mod:`clghub.writeback` (see the protocol there)."""

    crm = "hubspot"
    needs_total = False

    def __init__(self, client: HubSpotClient, settings: HubSpotWritebackConfig) -> None:
        self.client = client
        self.settings = settings
        self.object = settings.object
        self.owned_fields = frozenset(settings.owned_fields)
        self.mode = "batch"
        self.write_requests = 0
        self._types: dict[str, FieldInfo] = {}
        self._specs: dict[str, ValueSpec] = {}

    # -- properties --------------------------------------------------------------------

    def _properties(self) -> dict[str, dict[str, Any]]:
        body = self.client.properties(self.object).body or {}
        return {str(p["name"]): p for p in body.get("results", []) if isinstance(p, dict)}

    def provision(self, targets: Sequence[TargetField]) -> list[str]:
        """Create the property group and the missing properties; say what was done."""
        done: list[str] = []
        group = self.settings.property_group
        timeout = self.client.config.timeout_seconds
        groups = self.client.call(
            lambda api: api.crm.properties.groups_api.get_all(
                self.object, _preload_content=False, _request_timeout=timeout
            ),
            what=f"property groups of {self.object}",
        )
        names = {str(g.get("name")) for g in (groups.body or {}).get("results", [])}
        if group not in names:
            request = {"name": group, "label": "clghub", "displayOrder": -1}
            self._create(
                lambda api: api.crm.properties.groups_api.create(
                    self.object, request, _preload_content=False, _request_timeout=timeout
                ),
                what=f"create property group {group}",
            )
            done.append(f"created property group {self.object}.{group}")
        existing = self._properties()
        for target in targets:
            if target.name in existing:
                continue
            refuse_unowned(self.crm, self.owned_fields, [target.name])
            definition = property_definition(target.spec, target.name, group)
            self._create(self._property_call(definition), what=f"create property {target.name}")
            done.append(
                f"created property {self.object}.{target.name} ({definition['type']}, {definition['fieldType']})"
            )
        return done

    def _property_call(self, definition: dict[str, object]) -> Callable[[HubSpot], Any]:
        timeout = self.client.config.timeout_seconds

        def create(api: HubSpot) -> Any:
            return api.crm.properties.core_api.create(
                self.object, definition, _preload_content=False, _request_timeout=timeout
            )

        return create

    def _create(self, fn: Callable[[HubSpot], Any], *, what: str) -> None:
        try:
            self.client.call(fn, what=what)
        except ApiError as exc:
            # A retried creation whose first answer was lost finds it there.
            if exc.status != 409:
                raise

    def check_fields(self, targets: Sequence[TargetField]) -> FieldCheck:
        existing = self._properties()
        check = FieldCheck()
        for target in targets:
            found = existing.get(target.name)
            if found is None:
                check.problems.append(f"{self.object} property {target.name} does not exist")
                definition = property_definition(
                    target.spec, target.name, self.settings.property_group
                )
                check.to_create.append(
                    f"{target.name}: {definition['type']} ({definition['fieldType']}), "
                    "or run: clghub writeback --provision"
                )
                continue
            metadata = found.get("modificationMetadata") or {}
            info = FieldInfo(
                name=target.name,
                type=str(found.get("type")),
                updateable=not (
                    isinstance(metadata, dict) and metadata.get("readOnlyValue") is True
                )
                and not found.get("calculated"),
                length=_STRING_LIMIT if found.get("type") == "string" else None,
                options=tuple(
                    str(o.get("value")) for o in found.get("options") or [] if isinstance(o, dict)
                ),
            )
            problem = self._misfit(target.spec, info)
            if problem:
                check.problems.append(f"{self.object} property {target.name}: {problem}")
                continue
            check.fields[target.name] = info
        self._types = dict(check.fields)
        self._specs = {t.name: t.spec for t in targets}
        return check

    @staticmethod
    def _misfit(spec: ValueSpec, info: FieldInfo) -> str | None:
        if not info.updateable:
            return "is read-only"
        if info.type not in _COMPATIBLE[spec.kind]:
            wanted = " or ".join(sorted(_COMPATIBLE[spec.kind]))
            return f"is of type {info.type}; {spec.name} needs {wanted}"
        if info.type == "enumeration" and spec.choices:
            missing = [c for c in spec.choices if c not in info.options]
            if missing:
                return f"lacks the options {', '.join(missing)}"
        return None

    # -- writing -----------------------------------------------------------------------

    def batch_size(self, changed_records: int | None) -> int:
        return BATCH_SIZE

    def write(self, batch: Sequence[RecordWrite]) -> list[WriteOutcome]:
        if not self._types:
            raise RuntimeError("check_fields must run before write")
        refuse_unowned(self.crm, self.owned_fields, frozenset(f for r in batch for f in r.values))
        outcomes: list[WriteOutcome] = []
        for start in range(0, len(batch), BATCH_SIZE):
            outcomes += self._update(batch[start : start + BATCH_SIZE])
        return outcomes

    def _update(self, chunk: Sequence[RecordWrite]) -> list[WriteOutcome]:
        """One batch update; a retry first reads which companies already hold their
        values (an answer lost on the way back), so no company is written twice."""
        timeout = self.client.config.timeout_seconds
        held: set[str] = set()
        tries = 0
        sent: list[RecordWrite] = []

        def send(api: HubSpot) -> Any:
            nonlocal tries, sent
            tries += 1
            if tries > 1:
                held.update(self._holding(api, [r for r in chunk if r.record_id not in held]))
            sent = [r for r in chunk if r.record_id not in held]
            if not sent:
                return _Answer({"status": "COMPLETE", "results": []})
            request = {
                "inputs": [
                    {
                        "id": record.record_id,
                        "properties": {
                            f: _wire(self._types[f], v) for f, v in record.values.items()
                        },
                    }
                    for record in sent
                ]
            }
            self.write_requests += 1
            return api.crm.objects.batch_api.update(
                self.object, request, _preload_content=False, _request_timeout=timeout
            )

        try:
            response = self.client.call(send, what=f"batch update {self.object}")
        except ApiError as exc:
            if exc.status != 400:
                raise
            rest = [r for r in chunk if r.record_id not in held]
            done = [WriteOutcome(r.record_id, ok=True) for r in chunk if r.record_id in held]
            if len(rest) == 1:
                return [*done, WriteOutcome(rest[0].record_id, ok=False, error=exc.api_message)]
            # One bad value fails the request: find it by halves.
            half = len(rest) // 2
            return done + self._update(rest[:half]) + self._update(rest[half:])
        done = [WriteOutcome(r.record_id, ok=True) for r in chunk if r.record_id in held]
        return done + self._outcomes(sent, response)

    def _holding(self, api: HubSpot, records: Sequence[RecordWrite]) -> set[str]:
        """The companies that hold every value they were about to be sent."""
        if not records:
            return set()
        fields = sorted({f for r in records for f in r.values})
        self.client.pacer.acquire()
        request = {"inputs": [{"id": r.record_id} for r in records], "properties": fields}
        raw = api.crm.objects.batch_api.read(
            self.object,
            request,
            archived=False,
            _preload_content=False,
            _request_timeout=self.client.config.timeout_seconds,
        )
        body = orjson.loads(raw.data) if raw.data else {}
        current = {str(r.get("id")): r.get("properties") or {} for r in body.get("results") or []}
        return {
            record.record_id
            for record in records
            if record.record_id in current
            and all(
                canonical_from_crm(self._specs[f], current[record.record_id].get(f)) == v
                for f, v in record.values.items()
            )
        }

    @staticmethod
    def _outcomes(chunk: Sequence[RecordWrite], response: Response) -> list[WriteOutcome]:
        body = response.body if isinstance(response.body, dict) else {}
        applied = {str(r.get("id")) for r in body.get("results") or [] if isinstance(r, dict)}
        refused: dict[str, str] = {}
        for error in body.get("errors") or []:
            if not isinstance(error, dict):
                continue
            message = f"{error.get('category', 'ERROR')}: {error.get('message', '')}"
            details = [
                str(e.get("message")) for e in error.get("errors") or [] if isinstance(e, dict)
            ]
            if details:
                message += " (" + "; ".join(details) + ")"
            context = error.get("context") or {}
            for record_id in context.get("ids") or [] if isinstance(context, dict) else []:
                refused[str(record_id)] = message
        outcomes = []
        for record in chunk:
            if record.record_id in refused:
                outcomes.append(
                    WriteOutcome(record.record_id, ok=False, error=refused[record.record_id])
                )
            elif record.record_id in applied:
                outcomes.append(WriteOutcome(record.record_id, ok=True))
            else:
                outcomes.append(WriteOutcome(record.record_id, ok=False, in_doubt=True))
        return outcomes

    # -- reading back ----------------------------------------------------------------------

    def read(
        self, record_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, object]]:
        found: dict[str, dict[str, object]] = {}
        for start in range(0, len(record_ids), BATCH_SIZE):
            chunk = list(record_ids[start : start + BATCH_SIZE])
            response = self.client.batch_read(self.object, chunk, list(fields))
            body = response.body if isinstance(response.body, dict) else {}
            for record in body.get("results") or []:
                properties = record.get("properties") or {}
                found[str(record.get("id"))] = {f: properties.get(f) for f in fields}
        return found

    def close(self) -> None:
        self.client.close()


class HubSpotTaskCreator:
    """HubSpot tasks on companies, created at most once per key."""

    crm = "hubspot"

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client

    def _existing(self, api: HubSpot, company_id: str, key: str) -> str | None:
        """A task of the company whose subject carries ``key`` (reads, never search)."""
        timeout = self.client.config.timeout_seconds
        after: str | None = None
        task_ids: list[str] = []
        while True:
            self.client.pacer.acquire()
            kwargs: dict[str, Any] = {
                "limit": 500,
                "_preload_content": False,
                "_request_timeout": timeout,
            }
            if after:
                kwargs["after"] = after
            page = orjson.loads(
                api.crm.associations.v4.basic_api.get_page(
                    "companies", company_id, "tasks", **kwargs
                ).data
            )
            task_ids += [str(r.get("toObjectId")) for r in page.get("results") or []]
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
        for start in range(0, len(task_ids), BATCH_SIZE):
            self.client.pacer.acquire()
            request = {
                "inputs": [{"id": i} for i in task_ids[start : start + BATCH_SIZE]],
                "properties": ["hs_task_subject"],
            }
            body = orjson.loads(
                api.crm.objects.batch_api.read(
                    "tasks",
                    request,
                    archived=False,
                    _preload_content=False,
                    _request_timeout=timeout,
                ).data
            )
            for task in body.get("results") or []:
                subject = str((task.get("properties") or {}).get("hs_task_subject") or "")
                if subject.endswith(key):
                    return str(task.get("id"))
        return None

    def create_task(
        self,
        *,
        record_id: str,
        key: str,
        subject: str,
        body: str,
        owner_ref: str | None,
        due: date,
    ) -> str:
        """The id of the company's task carrying ``key``, created if there is none."""
        room = _SUBJECT_LENGTH - len(key) - 1
        properties: dict[str, str] = {
            "hs_task_subject": f"{subject[: max(0, room)].rstrip()} {key}",
            "hs_task_body": body,
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": "HIGH",
            "hs_timestamp": datetime.combine(due, time(9, 0), tzinfo=UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.000Z"
            ),
        }
        if owner_ref and owner_ref.isdigit():
            properties["hubspot_owner_id"] = owner_ref
        request = {
            "properties": properties,
            "associations": [
                {
                    "to": {"id": record_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": _TASK_TO_COMPANY,
                        }
                    ],
                }
            ],
        }
        timeout = self.client.config.timeout_seconds

        def find_or_create(api: HubSpot) -> Any:
            # Runs again on every retry: a creation whose answer was lost is found here.
            existing = self._existing(api, record_id, key)
            if existing is not None:
                return _Answer({"id": existing})
            return api.crm.objects.basic_api.create(
                "tasks", request, _preload_content=False, _request_timeout=timeout
            )

        response = self.client.call(find_or_create, what="create task")
        task_id = (response.body or {}).get("id") if isinstance(response.body, dict) else None
        if not task_id:
            raise ApiError("HubSpot", response.status, "task creation answered without an id")
        return str(task_id)

    def close(self) -> None:
        self.client.close()


class _Answer:
    """Looks like a raw HubSpot response, for an answer known without asking again."""

    status = 200

    def __init__(self, body: dict[str, Any]) -> None:
        self.data = orjson.dumps(body)
        self.headers: dict[str, str] = {}
