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
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from clghub.sandbox.schema import HS_OBJECTS, SF_ID_PREFIX, SF_OBJECTS

__all__ = [
    "CREDENTIALS",
    "FAULT_KINDS",
    "FaultSettings",
    "RequestLog",
    "SandboxCredentials",
    "SandboxOptions",
    "SandboxState",
    "TokenRegistry",
    "format_ts",
    "log_writes",
    "parse_ts",
    "sf_id",
]

_SQLITE_TYPES = {
    "boolean": "INTEGER",
    "int": "INTEGER",
    "double": "REAL",
    "currency": "REAL",
    "percent": "REAL",
    "number": "REAL",
    "bool": "INTEGER",
}


# What the fault middleware can inject; see clghub.sandbox.faults.
FAULT_KINDS: tuple[str, ...] = (
    "rate_limit",
    "rate_limit_no_retry_after",
    "server_error",
    "unavailable",
    "drop_connection",
    "slow",
    "truncated_body",
)


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
    fault_kinds: tuple[str, ...] | None = None
    """Which faults ``fault_rate`` injects (see FAULT_KINDS); None means all."""
    retry_after_seconds: int = 1
    """The Retry-After of injected 429 and 503 answers (short, so tests stay fast)."""
    hs_bulk_import: int = 0
    """Make this many HubSpot records share one exact last-modified moment, as a
    bulk import does (companies first, then deals, tickets and contacts)."""

    def __post_init__(self) -> None:
        problems = []
        if self.accounts < 1:
            problems.append(f"accounts must be at least 1, not {self.accounts}")
        if self.usage_days < 1:
            problems.append(f"usage_days must be at least 1, not {self.usage_days}")
        if not 0.0 <= self.fault_rate <= 1.0:
            problems.append(f"fault_rate must be from 0 to 1, not {self.fault_rate}")
        unknown = [kind for kind in self.fault_kinds or () if kind not in FAULT_KINDS]
        if unknown:
            problems.append(f"unknown fault kind(s) {unknown}; known: {list(FAULT_KINDS)}")
        if self.hs_bulk_import < 0:
            problems.append("hs_bulk_import must not be negative")
        if problems:
            raise ValueError("; ".join(problems))

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


# Upper-case letters count in the checksum; str.translate finds them in C.
_CASE_FLAGS = str.maketrans({ch: ("1" if ch.isupper() else "0") for ch in _B62})


def log_writes(
    db: sqlite3.Connection, system: str, obj: str, record_id: str, values: Mapping[str, object]
) -> None:
    """Journal the fields of one write (``GET /_sandbox/writes`` reads the journal)."""
    db.executemany(
        "INSERT INTO write_log (system, object, record_id, field, value) VALUES (?, ?, ?, ?, ?)",
        [
            (system, obj, record_id, name, None if value is None else str(value))
            for name, value in values.items()
        ],
    )


def sf_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce Id (15 case-sensitive + 3 checksum characters)."""
    digits = []
    while number:
        number, rem = divmod(number, 62)
        digits.append(_B62[rem])
    body = prefix + "".join(reversed(digits)).rjust(12, "0")
    flags = body.translate(_CASE_FLAGS)
    # Each 5-character chunk gives one checksum character: bit i set when
    # character i of the chunk is upper case.
    return (
        body
        + _SUFFIX[int(flags[4::-1], 2)]
        + _SUFFIX[int(flags[9:4:-1], 2)]
        + _SUFFIX[int(flags[14:9:-1], 2)]
    )


@dataclass
class _Token:
    kind: str
    subject: str
    expires_at: float
    issued: bool = True
    """Issued here with a lifetime (not adopted, not a fixed credential)."""


def _monotonic() -> float:
    return time.monotonic()


@dataclass
class TokenRegistry:
    """Access tokens handed out by the token endpoints.

    Without ``strict`` any non-empty bearer token is accepted until it is
    expired: a token seen for the first time is adopted, so
    :meth:`expire_all` makes the next call with it answer 401 whether it was
    issued here or came from a config. With ``strict``, only unexpired tokens
    issued (or registered) here are, and only for their own kind.
    """

    strict: bool = False
    clock: Callable[[], float] = _monotonic
    """Seconds on the clock that token lifetimes are measured in."""
    _tokens: dict[str, _Token] = field(default_factory=dict)

    def issue(self, kind: str, subject: str, ttl_seconds: float) -> str:
        token = f"{kind}-{secrets.token_urlsafe(24)}"
        self._tokens[token] = _Token(kind, subject, self.clock() + ttl_seconds)
        return token

    def register(self, kind: str, token: str, subject: str) -> None:
        """Accept a fixed token (a sandbox credential) until it is expired."""
        self._tokens[token] = _Token(kind, subject, float("inf"), issued=False)

    def seconds_left(self, kind: str, token: str | None) -> float | None:
        """Lifetime left of a token issued here for ``kind`` (negative once expired);
        None for any other token (fixed credentials, tokens from elsewhere)."""
        entry = self._tokens.get(token) if token else None
        if entry is None or not entry.issued or entry.kind != kind:
            return None
        return entry.expires_at - self.clock()

    def valid(self, kind: str, token: str | None) -> bool:
        if not token:
            return False
        entry = self._tokens.get(token)
        if not self.strict:
            if entry is None:
                self._tokens[token] = _Token(kind, "adopted", float("inf"), issued=False)
                return True
            return entry.expires_at > self.clock()
        return entry is not None and entry.kind == kind and entry.expires_at > self.clock()

    def expire_all(self, kind: str | None = None) -> int:
        """Expire every token (of one kind): the next call answers 401."""
        count = 0
        now = self.clock()
        for entry in self._tokens.values():
            if kind is None or entry.kind == kind:
                entry.expires_at = min(entry.expires_at, now)
                count += 1
        return count

    def clear(self) -> None:
        self._tokens.clear()

    def known(self) -> list[str]:
        """Every token the sandbox issued or accepted (tests look for them in clghub's output)."""
        return list(self._tokens)


@dataclass(frozen=True)
class SandboxCredentials:
    """Fixed credentials of the sandbox's Slack workspace and usage API.

    They guard nothing but a local emulator, and are public on purpose. (The
    Salesforce and HubSpot ones live with their emulators, apis/sf_auth.py
    and apis/hs_auth.py.)
    """

    slack_token: str = "xoxb-clghub-sandbox-bot-token"  # noqa: S105
    usage_token: str = "clghub-sandbox-usage-token"  # noqa: S105


CREDENTIALS = SandboxCredentials()


@dataclass
class FaultSettings:
    """Fault injection as it is now (changed at run time through /_sandbox/faults)."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    counters: Counter[str] = field(default_factory=Counter)
    """Requests seen per method and path: the deterministic input of each decision."""

    def reset_counts(self) -> None:
        self.injected.clear()
        self.counters.clear()


@dataclass
class RequestLog:
    """Requests served, per method, path template, status and injected fault."""

    counts: Counter[tuple[str, str, int, str | None]] = field(default_factory=Counter)

    def record(self, method: str, template: str, status: int, fault: str | None) -> None:
        self.counts[(method, template, status, fault)] += 1

    def clear(self) -> None:
        self.counts.clear()


class SandboxState:
    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.credentials = CREDENTIALS
        self._clock_offset = timedelta(0)
        self.tokens = TokenRegistry(strict=options.strict_auth, clock=self._token_clock)
        self._register_fixed_tokens()
        self.faults = FaultSettings(
            rate=options.fault_rate,
            kinds=tuple(options.fault_kinds) if options.fault_kinds is not None else FAULT_KINDS,
            seed=options.seed,
        )
        self.requests = RequestLog()
        self._reset_hooks: list[Callable[[], None]] = []
        self.db = self._open_db()
        self._create_tables()

    def _token_clock(self) -> float:
        # Token lifetimes follow the sandbox clock, so advance() expires them.
        return time.monotonic() + self._clock_offset.total_seconds()

    def _register_fixed_tokens(self) -> None:
        self.tokens.register("slack", self.credentials.slack_token, "bot")
        self.tokens.register("usage", self.credentials.usage_token, "usage")

    # -- reset ---------------------------------------------------------------

    def add_reset_hook(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` after every reset (API modules drop their derived state)."""
        self._reset_hooks.append(hook)

    def clear(self) -> None:
        """Empty the org: every table recreated, tokens, counters and faults reset.

        The caller regenerates the data (clghub.sandbox.generator); reset
        hooks run afterwards through :meth:`after_reset`.
        """
        rows = self.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        for (name,) in rows:
            if name in self._own_tables():
                self.db.execute(f'DROP TABLE "{name}"')
        self._create_tables()
        self.tokens.clear()
        self._register_fixed_tokens()
        self.requests.clear()
        self.faults.reset_counts()
        self._clock_offset = timedelta(0)

    def after_reset(self) -> None:
        for hook in self._reset_hooks:
            hook()

    def _own_tables(self) -> set[str]:
        tables = {"_sequence", "_meta", *_EXTRA_TABLES}
        tables.update(f"sf_{name}" for name in SF_OBJECTS)
        tables.update(f"hs_{name}" for name in HS_OBJECTS)
        tables.update(("hs_owners", "hs_association", "hs_property_def", "hs_property_group"))
        return tables

    # -- metadata ------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM _meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO _meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def set_sequence(self, sequence: str, value: int) -> None:
        """Make :meth:`next_number` continue after ``value``."""
        self.db.execute(
            "INSERT INTO _sequence(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = MAX(value, excluded.value)",
            (sequence, value),
        )

    def close(self) -> None:
        self.db.close()

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
        for statement in _EXTRA_TABLES.values():
            db.execute(statement)


# Tables of the usage and Slack emulators (the CRM tables follow the schema).
_EXTRA_TABLES: dict[str, str] = {
    # What each product account's daily usage is computed from (never the rows).
    "usage_profile": (
        "CREATE TABLE IF NOT EXISTS usage_profile (key TEXT PRIMARY KEY, entity INTEGER NOT NULL, "
        "active_from INTEGER NOT NULL, active_to INTEGER NOT NULL, value_from INTEGER NOT NULL, "
        "seats REAL NOT NULL, health_start REAL NOT NULL, health_end REAL NOT NULL, "
        "adoption REAL NOT NULL, outcome REAL NOT NULL, outcome_target REAL NOT NULL, "
        "nps_rate REAL NOT NULL, nps_base REAL NOT NULL)"
    ),
    # Every field value written through the CRM APIs, in order: lets a test
    # tell a field written twice with different values from one written once.
    "write_log": (
        "CREATE TABLE IF NOT EXISTS write_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "system TEXT NOT NULL, object TEXT NOT NULL, record_id TEXT NOT NULL, "
        "field TEXT NOT NULL, value TEXT)"
    ),
    "slack_user": (
        "CREATE TABLE IF NOT EXISTS slack_user (id TEXT PRIMARY KEY, email TEXT UNIQUE, "
        "name TEXT NOT NULL, real_name TEXT NOT NULL, is_bot INTEGER NOT NULL DEFAULT 0)"
    ),
    "slack_channel": (
        "CREATE TABLE IF NOT EXISTS slack_channel (id TEXT PRIMARY KEY, name TEXT UNIQUE, "
        "is_im INTEGER NOT NULL DEFAULT 0, user TEXT, topic TEXT NOT NULL DEFAULT '', "
        "created INTEGER NOT NULL)"
    ),
    "slack_message": (
        "CREATE TABLE IF NOT EXISTS slack_message (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "channel TEXT NOT NULL, ts TEXT NOT NULL, user TEXT NOT NULL, text TEXT NOT NULL, "
        "blocks TEXT, metadata TEXT, files TEXT, thread_ts TEXT, UNIQUE (channel, ts))"
    ),
    "slack_file": (
        "CREATE TABLE IF NOT EXISTS slack_file (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
        "title TEXT, length INTEGER NOT NULL, alt_txt TEXT, snippet_type TEXT, content BLOB, "
        "created INTEGER NOT NULL, completed INTEGER NOT NULL DEFAULT 0, channels TEXT)"
    ),
}
