"""CRM search: ``POST /crm/v3/objects/{type}/search``.

Filter groups are ORed, filters within a group ANDed (at most 5 groups, 6
filters a group, 18 in all). Text comparisons ignore case. Date and datetime
values may be epoch milliseconds (what HubSpot documents) or ISO 8601. A
query pages by offset (``after``) and sees at most 10,000 results: a page
reaching past that answers 400. Archived records are never found. With
``search_lag_seconds`` set, records written less than that long ago are not
yet visible, as HubSpot's index trails writes by seconds.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

from starlette.requests import Request
from starlette.responses import Response

from clghub.sandbox.apis.hs_catalog import Catalog, ObjectCatalog, PropertyDef
from clghub.sandbox.apis.hs_http import HubSpotError, parse_json_body, raw_json_response
from clghub.sandbox.apis.hs_records import RecordRenderer, property_list
from clghub.sandbox.apis.hs_values import parse_datetime
from clghub.sandbox.apis.sf_query import plain_rows
from clghub.sandbox.state import SandboxState, format_ts

__all__ = [
    "MAX_FILTERS",
    "MAX_FILTERS_PER_GROUP",
    "MAX_FILTER_GROUPS",
    "SEARCH_LIMIT",
    "SEARCH_WINDOW",
    "SearchResource",
]

MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
SEARCH_LIMIT = 200
SEARCH_WINDOW = 10_000
"""No search sees past its 10,000th result."""

_COMPARISONS = {"EQ": "=", "NEQ": "!=", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}
_TEXT_TYPES = ("string", "enumeration")
_WORD_CLASS = "0-9a-z"


def _bad_request(message: str) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message)


@lru_cache(maxsize=1024)
def _token_pattern(pattern: str) -> re.Pattern[str]:
    # A token (or token sequence) bounded by non-word characters; * is a wildcard.
    escaped = re.escape(pattern.lower()).replace(r"\*", ".*")
    return re.compile(rf"(?<![{_WORD_CLASS}]){escaped}(?![{_WORD_CLASS}])")


def _token_match(text: object, pattern: object) -> int:
    if text is None or pattern is None:
        return 0
    return 1 if _token_pattern(str(pattern)).search(str(text).lower()) else 0


class _Filters:
    """SQL for filter groups, with bound parameters."""

    def __init__(self, catalog: ObjectCatalog) -> None:
        self.catalog = catalog
        self.params: list[object] = []

    def column(self, prop: PropertyDef) -> str:
        return "id" if prop.name == "hs_object_id" else f'"{prop.name}"'

    def value(self, prop: PropertyDef, raw: object) -> object:
        if raw is None or isinstance(raw, dict | list):
            raise _bad_request(f"A value is required for a filter on {prop.name}")
        text = str(raw).lower() if isinstance(raw, bool) else str(raw)
        if prop.name == "hs_object_id" or prop.type == "number":
            try:
                return float(text)
            except ValueError:
                raise _bad_request(f"{text} is not a valid number for {prop.name}") from None
        if prop.type in ("datetime", "date"):
            moment = parse_datetime(text)
            if moment is None:
                raise _bad_request(f"{text} is not a valid date for {prop.name}")
            return format_ts(moment) if prop.type == "datetime" else moment.date().isoformat()
        if prop.type == "bool":
            if text.lower() not in ("true", "false"):
                raise _bad_request(f"{text} is not a valid boolean for {prop.name}")
            return 1 if text.lower() == "true" else 0
        return text

    def bind(self, value: object) -> str:
        self.params.append(value)
        return "?"

    def filter(self, spec: object) -> str:
        if not isinstance(spec, dict):
            raise _bad_request("Each filter must be an object")
        name = spec.get("propertyName")
        operator = spec.get("operator")
        prop = self.catalog.properties.get(str(name))
        if prop is None:
            raise _bad_request(f"Property {name} does not exist on {self.catalog.name}")
        column = self.column(prop)
        collate = " COLLATE NOCASE" if prop.type in _TEXT_TYPES else ""
        if operator in _COMPARISONS:
            placeholder = self.bind(self.value(prop, spec.get("value")))
            op = _COMPARISONS[str(operator)]
            if op == "!=":
                return f"({column} IS NULL OR {column}{collate} != {placeholder})"
            return f"({column}{collate} {op} {placeholder})"
        if operator == "BETWEEN":
            low = self.bind(self.value(prop, spec.get("value")))
            high = self.bind(self.value(prop, spec.get("highValue")))
            return f"({column}{collate} BETWEEN {low} AND {high})"
        if operator in ("IN", "NOT_IN"):
            values = spec.get("values")
            if not isinstance(values, list) or not values:
                raise _bad_request(f"{operator} needs a non-empty values list")
            members = ", ".join(self.bind(self.value(prop, v)) for v in values)
            if operator == "IN":
                return f"({column}{collate} IN ({members}))"
            return f"({column} IS NULL OR {column}{collate} NOT IN ({members}))"
        if operator == "HAS_PROPERTY":
            return f"({column} IS NOT NULL AND {column} != '')"
        if operator == "NOT_HAS_PROPERTY":
            return f"({column} IS NULL OR {column} = '')"
        if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            raw = spec.get("value")
            if raw is None or str(raw) == "":
                raise _bad_request(f"{operator} needs a value")
            match = f"hs_token_match({column}, {self.bind(str(raw))})"
            return match if operator == "CONTAINS_TOKEN" else f"(NOT {match})"
        raise _bad_request(f"Unknown filter operator: {operator}")

    def groups(self, groups: object) -> str:
        if groups is None:
            return "1"
        if not isinstance(groups, list):
            raise _bad_request("filterGroups must be a list")
        if len(groups) > MAX_FILTER_GROUPS:
            raise _bad_request(
                f"Too many filter groups: {len(groups)}. The limit is {MAX_FILTER_GROUPS}."
            )
        clauses: list[str] = []
        total = 0
        for group in groups:
            filters = group.get("filters") if isinstance(group, dict) else None
            if not isinstance(filters, list):
                raise _bad_request("Each filter group needs a filters list")
            if len(filters) > MAX_FILTERS_PER_GROUP:
                raise _bad_request(
                    f"Too many filters in a group: {len(filters)}. "
                    f"The limit is {MAX_FILTERS_PER_GROUP}."
                )
            total += len(filters)
            if filters:
                clauses.append("(" + " AND ".join(self.filter(f) for f in filters) + ")")
        if total > MAX_FILTERS:
            raise _bad_request(f"Too many filters: {total}. The limit is {MAX_FILTERS} in all.")
        return "(" + " OR ".join(clauses) + ")" if clauses else "1"

    def text_query(self, query: object) -> str:
        if not isinstance(query, str) or not query.strip():
            return "1"
        text_props = [
            self.catalog.properties[name]
            for name in self.catalog.defaults
            if self.catalog.properties[name].type == "string"
        ]
        if not text_props:
            return "1"
        like = (
            "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        terms = [f"{self.column(p)} LIKE {self.bind(like)} ESCAPE '\\'" for p in text_props]
        return "(" + " OR ".join(terms) + ")"


def _sort(catalog: ObjectCatalog, sorts: object) -> str:
    if sorts is None or sorts == []:
        return "id ASC"
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise _bad_request("Search takes at most one sort")
    spec = sorts[0]
    if isinstance(spec, str):
        name, descending = spec.lstrip("-"), spec.startswith("-")
    elif isinstance(spec, dict):
        name = str(spec.get("propertyName"))
        direction = str(spec.get("direction", "ASCENDING")).upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise _bad_request(f"Invalid sort direction: {direction}")
        descending = direction == "DESCENDING"
    else:
        raise _bad_request("Invalid sort")
    prop = catalog.properties.get(name)
    if prop is None:
        raise _bad_request(f"Property {name} does not exist on {catalog.name}")
    column = "id" if prop.name == "hs_object_id" else f'"{prop.name}"'
    collate = " COLLATE NOCASE" if prop.type in _TEXT_TYPES else ""
    return f"{column}{collate} {'DESC' if descending else 'ASC'}, id ASC"


def _integer(raw: object, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    text = str(raw)
    if isinstance(raw, bool) or not text.isdigit():
        raise _bad_request(f"Invalid {name}: {raw}")
    return int(text)


class SearchResource:
    def __init__(self, state: SandboxState, catalog: Catalog, renderer: RecordRenderer) -> None:
        self.state = state
        self.catalog = catalog
        self.renderer = renderer

    async def search(self, request: Request) -> Response:
        catalog = self.catalog.get(request.path_params["object"])
        body = await parse_json_body(request)
        limit = _integer(body.get("limit"), "limit", 10)
        if limit > SEARCH_LIMIT:
            raise _bad_request(f"limit must be at most {SEARCH_LIMIT}, got {limit}")
        after = _integer(body.get("after"), "after", 0)
        if after + limit > SEARCH_WINDOW:
            # HubSpot's answer when a page reaches past the 10,000th result.
            raise _bad_request("There was a problem with the request.")
        filters = _Filters(catalog)
        where = [
            "archived = 0",
            filters.groups(body.get("filterGroups")),
            filters.text_query(body.get("query")),
        ]
        lag = self.state.options.search_lag_seconds
        if lag > 0:
            cutoff = format_ts(self.state.now() - timedelta(seconds=lag))
            where.append(f"updated_at <= {filters.bind(cutoff)}")
        where_sql = " AND ".join(where)
        order = _sort(catalog, body.get("sorts"))
        requested = body.get("properties")
        names = [str(n) for n in requested] if isinstance(requested, list) and requested else None
        properties = property_list(catalog, names)
        db = self.state.db
        db.create_function("hs_token_match", 2, _token_match, deterministic=True)
        (total,) = db.execute(
            f"SELECT count(*) FROM {catalog.table} WHERE {where_sql}", filters.params
        ).fetchone()
        sql = self.renderer.select(
            catalog, properties, where=where_sql, order=order, paged=True, as_bytes=True
        )
        rows = plain_rows(db, sql, (*filters.params, limit, after)) if limit else []
        page = b'{"total":%d,"results":[' % total + b",".join(r[1] for r in rows) + b"]"
        if after + limit < total:
            page += b',"paging":{"next":{"after":"%d"}}' % (after + limit)
        return raw_json_response(page + b"}")
