"""The sandbox's state: options, the org data (SQLite), the clock, ids and tokens.

One :class:`SandboxState` backs every emulated API. Handlers run on the
server's event loop thread and use :attr:`SandboxState.db` directly (one
connection, no thread hops); changes made through the APIs persist for
later reads, and with ``state_dir`` across restarts.
"""

from __future__ import annotations

import secrets
import sqlite3
import string
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from clghub.sandbox.schema import HS_OBJECTS, SF_ID_PREFIX, SF_OBJECTS

__all__ = ["SandboxOptions", "SandboxState", "TokenRegistry", "format_ts", "parse_ts", "sf_id"]

_SQLITE_TYPES = {
    "boolean": "INTEGER",
    "int": "INTEGER",
    "double": "REAL",
    "currency": "REAL",
    "percent": "REAL",
    "number": "REAL",
    "bool": "INTEGER",
}


@dataclass
class SandboxOptions:
    seed: int = 42
    accounts: int = 200
    as_of: date | None = None
    """The day the generated history ends; None means today (UTC)."""
    usage_days: int = 120
    """Days of daily product usage before ``as_of``."""
    fault_rate: float = 0.0
    strict_auth: bool = False
    slow_seconds: float = 6.0
    """How long a "slow response" fault stalls (longer than a client's timeout)."""
    search_lag_seconds: float = 0.0
    """HubSpot search sees writes only after this long."""
    sf_daily_quota: int = 5_000_000
    sf_session_seconds: int = 7_200
    hs_requests_per_10s: int = 190
    hs_daily_limit: int = 1_000_000
    hs_search_per_second: int = 5
    hs_token_seconds: int = 1_800
    slack_message_interval: float = 1.0
    """Seconds between two messages to one channel before Slack answers 429."""
    state_dir: Path | None = None

    @property
    def anchor(self) -> date:
        return self.as_of or datetime.now(UTC).date()


def format_ts(moment: datetime) -> str:
    """Storage format: UTC with milliseconds and a Z (sorts as text)."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def sf_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce Id (15 case-sensitive + 3 checksum characters)."""
    digits = ""
    while number:
        number, rem = divmod(number, 62)
        digits = _B62[rem] + digits
    body = prefix + digits.rjust(12, "0")
    suffix = ""
    for chunk in (body[0:5], body[5:10], body[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if ch.isupper())
        suffix += _SUFFIX[bits]
    return body + suffix


@dataclass
class _Token:
    kind: str
    subject: str
    expires_at: float


@dataclass
class TokenRegistry:
    """Access tokens handed out by the token endpoints.

    Without ``strict`` any non-empty bearer token is accepted (the sandbox is
    then usable with whatever a config holds); with it, only unexpired tokens
    issued here are.
    """

    strict: bool = False
    _tokens: dict[str, _Token] = field(default_factory=dict)

    def issue(self, kind: str, subject: str, ttl_seconds: float) -> str:
        token = f"{kind}-{secrets.token_urlsafe(24)}"
        self._tokens[token] = _Token(kind, subject, time.monotonic() + ttl_seconds)
        return token

    def valid(self, kind: str, token: str | None) -> bool:
        if not token:
            return False
        if not self.strict:
            return True
        entry = self._tokens.get(token)
        return entry is not None and entry.kind == kind and entry.expires_at > time.monotonic()

    def expire_all(self, kind: str | None = None) -> int:
        """Expire every token (of one kind): the next call answers 401."""
        count = 0
        for entry in self._tokens.values():
            if kind is None or entry.kind == kind:
                entry.expires_at = 0.0
                count += 1
        return count


class SandboxState:
    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.tokens = TokenRegistry(strict=options.strict_auth)
        self._clock_offset = timedelta(0)
        self.db = self._open_db()
        self._create_tables()

    # -- clock -------------------------------------------------------------

    def now(self) -> datetime:
        """The sandbox's current time (UTC); tests may move it forward."""
        return datetime.now(UTC) + self._clock_offset

    def advance(self, seconds: float) -> None:
        self._clock_offset += timedelta(seconds=seconds)

    def timestamp(self) -> str:
        return format_ts(self.now())

    # -- ids ---------------------------------------------------------------

    def next_number(self, sequence: str) -> int:
        """The next value of a persistent counter (for new record ids)."""
        self.db.execute(
            "INSERT INTO _sequence(name, value) VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1",
            (sequence,),
        )
        (value,) = self.db.execute(
            "SELECT value FROM _sequence WHERE name = ?", (sequence,)
        ).fetchone()
        return int(value)

    def new_sf_id(self, sobject: str) -> str:
        return sf_id(SF_ID_PREFIX[sobject], self.next_number(f"sf:{sobject}"))

    def new_hs_id(self, obj: str) -> int:
        # HubSpot ids are large integers; start well above generated data.
        return 90_000_000_000 + self.next_number(f"hs:{obj}")

    # -- storage -----------------------------------------------------------

    def _open_db(self) -> sqlite3.Connection:
        if self.options.state_dir is not None:
            self.options.state_dir.mkdir(parents=True, exist_ok=True)
            path = str(self.options.state_dir / "sandbox.db")
        else:
            # A private temporary file rather than :memory: keeps large orgs
            # out of the process's resident memory (the page cache holds it).
            path = ""
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-65536")
        db.row_factory = sqlite3.Row
        return db

    def _create_tables(self) -> None:
        db = self.db
        db.execute(
            "CREATE TABLE IF NOT EXISTS _sequence (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
        )
        db.execute("CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY, value TEXT)")
        for sobject, fields in SF_OBJECTS.items():
            columns = ", ".join(
                f'"{f.name}" {_SQLITE_TYPES.get(f.type, "TEXT")}'
                + (" PRIMARY KEY" if f.name == "Id" else "")
                for f in fields
            )
            db.execute(
                f'CREATE TABLE IF NOT EXISTS "sf_{sobject}" ({columns}, "_locked" INTEGER NOT NULL DEFAULT 0)'
            )
            if any(f.name == "SystemModstamp" for f in fields):
                db.execute(
                    f'CREATE INDEX IF NOT EXISTS "ix_sf_{sobject}_modstamp" ON "sf_{sobject}" ("SystemModstamp", "Id")'
                )
        for obj, properties in HS_OBJECTS.items():
            columns = ", ".join(
                f'"{p.name}" {_SQLITE_TYPES.get(p.type, "TEXT")}'
                for p in properties
                if p.name != "hs_object_id"
            )
            db.execute(
                f'CREATE TABLE IF NOT EXISTS "hs_{obj}" (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, '
                f"updated_at TEXT NOT NULL, archived INTEGER NOT NULL DEFAULT 0, archived_at TEXT, {columns})"
            )
            db.execute(
                f'CREATE INDEX IF NOT EXISTS "ix_hs_{obj}_updated" ON "hs_{obj}" (updated_at, id)'
            )
        db.execute(
            "CREATE TABLE IF NOT EXISTS hs_owners (id INTEGER PRIMARY KEY, email TEXT, firstName TEXT, "
            "lastName TEXT, userId INTEGER, teams TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
            "archived INTEGER NOT NULL DEFAULT 0)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS hs_association (from_type TEXT NOT NULL, from_id INTEGER NOT NULL, "
            "to_type TEXT NOT NULL, to_id INTEGER NOT NULL, type_id INTEGER NOT NULL, "
            "PRIMARY KEY (from_type, from_id, to_type, to_id, type_id))"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS hs_property_def (object TEXT NOT NULL, name TEXT NOT NULL, "
            "definition TEXT NOT NULL, PRIMARY KEY (object, name))"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS hs_property_group (object TEXT NOT NULL, name TEXT NOT NULL, "
            "definition TEXT NOT NULL, PRIMARY KEY (object, name))"
        )
