"""Helpers for the Salesforce and HubSpot emulator tests.

A test starts a real sandbox (HTTP and HTTPS on loopback), empties its CRM
tables, and inserts exactly the rows it needs, so counts and pages are
known. Clients are the real ones (simple-salesforce over HTTPS with the
sandbox CA, hubspot-api-client over HTTP) with only their base URL changed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import requests
from hubspot import HubSpot
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.login import token_login

from clghub.sandbox.apis.hs_catalog import ASSOCIATION_TYPES
from clghub.sandbox.apis.sf_auth import (
    SANDBOX_CONSUMER_KEY,
    SANDBOX_CONSUMER_SECRET,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
)
from clghub.sandbox.schema import HS_MODIFIED_PROPERTY, HS_OBJECTS, SF_ID_PREFIX, SF_OBJECTS
from clghub.sandbox.server import SandboxServer
from clghub.sandbox.state import SandboxOptions, SandboxState, format_ts, sf_id

AS_OF = date(2025, 6, 30)
VERSION = "59.0"
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
OWNER_ID = "005000000000000AAA"
"""The sandbox integration user (a valid reference for OwnerId)."""

_NUMBERS: dict[str, int] = {}


def _next(sequence: str) -> int:
    _NUMBERS[sequence] = _NUMBERS.get(sequence, 500_000) + 1
    return _NUMBERS[sequence]


@contextmanager
def crm_sandbox(**options: Any) -> Iterator[SandboxServer]:
    """A running sandbox whose Salesforce and HubSpot tables start empty."""
    base = SandboxOptions(seed=3, accounts=1, as_of=AS_OF)
    with SandboxServer(replace(base, **options)) as server:
        clear_crm(server.state)
        yield server


def clear_crm(state: SandboxState) -> None:
    db = state.db
    for sobject in SF_OBJECTS:
        db.execute(f'DELETE FROM "sf_{sobject}"')
    for obj in (*HS_OBJECTS, "owners"):
        db.execute(f'DELETE FROM "hs_{obj}"')
    db.execute("DELETE FROM hs_association")


# -- Salesforce rows ----------------------------------------------------------------


def ts(offset_seconds: float = 0.0) -> str:
    """A storage timestamp ``offset_seconds`` after BASE_TIME."""
    return format_ts(BASE_TIME + timedelta(seconds=offset_seconds))


def insert_sf(state: SandboxState, sobject: str, **fields: object) -> str:
    """Insert one Salesforce record with sensible required fields; returns its Id."""
    record_id = str(fields.pop("Id", None) or sf_id(SF_ID_PREFIX[sobject], _next(sobject)))
    row: dict[str, object] = {"Id": record_id}
    names = {f.name for f in SF_OBJECTS[sobject]}
    defaults: dict[str, object] = {
        "IsDeleted": 0,
        "CreatedDate": ts(),
        "LastModifiedDate": ts(),
        "SystemModstamp": ts(),
        "OwnerId": OWNER_ID,
        "IsClosed": 0,
        "IsWon": 0,
        "IsActive": 1,
    }
    required = {
        "Account": {"Name": f"Account {record_id}"},
        "Contact": {"LastName": "Fixture"},
        "Opportunity": {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2024-06-30"},
        "Task": {"Status": "Not Started", "Priority": "Normal"},
    }
    for name, value in {**defaults, **required.get(sobject, {}), **fields}.items():
        if name in names:
            row[name] = value
    columns = ", ".join(f'"{c}"' for c in row)
    state.db.execute(
        f'INSERT INTO "sf_{sobject}" ({columns}) VALUES ({", ".join("?" for _ in row)})',
        tuple(row.values()),
    )
    return record_id


def insert_accounts(state: SandboxState, count: int, **fields: object) -> list[str]:
    """``count`` accounts whose SystemModstamp rises one second per record."""
    ids: list[str] = []
    with _batch(state.db):
        for index in range(count):
            stamp = ts(index)
            ids.append(
                insert_sf(
                    state,
                    "Account",
                    Name=f"Account {index:06d}",
                    CreatedDate=stamp,
                    LastModifiedDate=stamp,
                    SystemModstamp=stamp,
                    **fields,
                )
            )
    return ids


@contextmanager
def _batch(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


# -- HubSpot rows ---------------------------------------------------------------------


def insert_hs(state: SandboxState, obj: str, **properties: object) -> int:
    """Insert one HubSpot record (timestamps default to BASE_TIME); returns its id."""
    record_id = int(str(properties.pop("id", None) or 0)) or 70_000_000_000 + _next(obj)
    created = str(properties.pop("created_at", ts()))
    updated = str(properties.pop("updated_at", created))
    archived = int(bool(properties.pop("archived", False)))
    archived_at = properties.pop("archived_at", updated if archived else None)
    modified = HS_MODIFIED_PROPERTY.get(obj, "hs_lastmodifieddate")
    created_property = "hs_createdate" if obj == "tasks" else "createdate"
    row: dict[str, object] = {
        "id": record_id,
        "created_at": created,
        "updated_at": updated,
        "archived": archived,
        "archived_at": archived_at,
        created_property: created,
        modified: updated,
        **properties,
    }
    columns = ", ".join(f'"{c}"' for c in row)
    state.db.execute(
        f'INSERT INTO "hs_{obj}" ({columns}) VALUES ({", ".join("?" for _ in row)})',
        tuple(row.values()),
    )
    return record_id


def insert_companies(state: SandboxState, count: int, **properties: object) -> list[int]:
    ids: list[int] = []
    with _batch(state.db):
        for index in range(count):
            stamp = ts(index)
            ids.append(
                insert_hs(
                    state,
                    "companies",
                    name=f"Company {index:06d}",
                    created_at=stamp,
                    updated_at=stamp,
                    **properties,
                )
            )
    return ids


def associate(state: SandboxState, from_type: str, from_id: int, to_type: str, to_id: int) -> None:
    state.db.executemany(
        "INSERT INTO hs_association (from_type, from_id, to_type, to_id, type_id) VALUES (?, ?, ?, ?, ?)",
        [
            (from_type, from_id, to_type, to_id, ASSOCIATION_TYPES[(from_type, to_type)]),
            (to_type, to_id, from_type, from_id, ASSOCIATION_TYPES[(to_type, from_type)]),
        ],
    )


# -- clients ------------------------------------------------------------------------------


def sf_error(call: Callable[[], object]) -> tuple[int, list[dict[str, Any]]]:
    """Status and error array of a simple-salesforce call that must fail.

    Unlike pytest.raises, keeps no traceback alive: a traceback holds the
    response, whose socket would then outlive the client session and still
    be open when the test stops its sandbox.
    """
    try:
        call()
    except SalesforceError as error:
        return int(error.status), list(error.content)
    raise AssertionError("the call succeeded")


def https_session(server: SandboxServer) -> requests.Session:
    session = requests.Session()
    session.verify = str(server.ca_path)
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's
    # verify; the sandbox CA must win, and loopback needs no proxy settings.
    session.trust_env = False
    # One connection per request: a test that keeps an exception (and with it
    # a response and its socket) alive must not leave a TLS connection open
    # when its sandbox stops.
    session.headers["Connection"] = "close"
    return session


def sf_login(server: SandboxServer, session: requests.Session | None = None) -> str:
    """A session id from the OAuth password grant, as simple-salesforce performs it."""
    own = https_session(server)
    session_id, instance = token_login(
        f"{server.https_url}/services/oauth2/token",
        {
            "grant_type": "password",
            "client_id": SANDBOX_CONSUMER_KEY,
            "client_secret": SANDBOX_CONSUMER_SECRET,
            "username": SANDBOX_USERNAME,
            "password": SANDBOX_PASSWORD,
        },
        "login",
        SANDBOX_CONSUMER_KEY,
        None,
        None,
        session or own,
    )
    own.close()
    assert instance == server.https_url.removeprefix("https://")
    return str(session_id)


@contextmanager
def salesforce(server: SandboxServer, session_id: str | None = None) -> Iterator[Salesforce]:
    """simple-salesforce pointed at the sandbox over HTTPS (its connections closed after)."""
    session = https_session(server)
    try:
        yield Salesforce(
            session_id=session_id or sf_login(server, session),
            instance_url=server.https_url,
            version=VERSION,
            session=session,
        )
    finally:
        session.close()


ANY_TOKEN = "pat-na1-any-token"
"""A private-app token the sandbox adopts when strict auth is off."""


def hubspot(server: SandboxServer, token: str = ANY_TOKEN) -> HubSpot:
    """hubspot-api-client pointed at the sandbox over HTTP."""
    return HubSpot(access_token=token, host=server.http_url)


def http(server: SandboxServer, token: str = ANY_TOKEN) -> httpx.Client:
    return httpx.Client(
        base_url=server.http_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def control(server: SandboxServer, path: str, body: Mapping[str, object]) -> dict[str, Any]:
    response = httpx.post(f"{server.http_url}/_sandbox/{path}", json=dict(body), timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result
