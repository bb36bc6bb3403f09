"""The normalized store: SQLModel tables shared by every source and workflow.

Conventions:
- Every record that comes from a source has ``(source, source_id)`` unique,
  ``source_modified_at`` (the source's own clock) and ``is_deleted`` (deletes
  in the source become soft deletes here, so history stays explainable).
- References to other source records are kept raw (``account_ref``) and
  resolved to store ids (``account_id``) by the sync's link step; a record
  whose account has not arrived yet waits with ``account_id`` empty.
- ``created_at`` / ``updated_at`` are clghub's clock; ``row_version`` counts
  the changes the upsert actually made. Unchanged rows are never rewritten.
- Timestamps are timezone-aware UTC (:class:`UTCDateTime`); money is exact
  (:class:`Money`) with its currency in a sibling column.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Float, Index, LargeBinary, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from clghub.store.types import Money, UTCDateTime

__all__ = [
    "Account",
    "Activity",
    "Contact",
    "IdentityConflict",
    "JobRun",
    "Opportunity",
    "Person",
    "Quarantine",
    "RunLock",
    "ScheduledJob",
    "SourceLink",
    "SyncRun",
    "SyncState",
    "Ticket",
    "UsageDaily",
    "table_of",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a model (for set-based SQL)."""
    return SQLModel.metadata.tables[str(model.__tablename__)]


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _stamp() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def _money() -> Any:
    return Field(default=None, sa_type=Money, nullable=True)


class _Tracked(SQLModel):
    """Bookkeeping columns every upserted table carries."""

    created_at: datetime = _stamp()
    updated_at: datetime = _stamp()
    row_version: int = Field(default=1, nullable=False)


class _SourceRecord(_Tracked):
    source: str = Field(max_length=32, nullable=False)
    source_id: str = Field(max_length=64, nullable=False)
    source_modified_at: datetime | None = _ts()
    is_deleted: bool = Field(default=False, nullable=False)


class _AccountRecord(_SourceRecord):
    """A source record that belongs to an account, resolved from ``account_ref``."""

    id: int | None = Field(default=None, primary_key=True)
    account_ref: str | None = Field(default=None, max_length=64)
    """The account's id in the same source."""
    account_id: int | None = Field(default=None, foreign_key="account.id")


def _account_record_args(table: str, *account_index: str) -> tuple[Any, ...]:
    return (
        UniqueConstraint("source", "source_id", name=f"uq_{table}_source"),
        Index(f"ix_{table}_account", "account_id", *account_index),
        Index(f"ix_{table}_unlinked", "source", "account_ref", "account_id"),
    )


# --------------------------------------------------------------------------- customers


class Account(_Tracked, table=True):
    """One customer, however many sources know it."""

    __tablename__ = "account"
    __table_args__ = (
        UniqueConstraint("origin_source", "origin_source_id", name="uq_account_origin"),
        Index("ix_account_domain", "domain"),
        Index("ix_account_external_key", "external_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(nullable=False, sa_type=Text)
    domain: str | None = Field(default=None, max_length=255)
    external_key: str | None = Field(default=None, max_length=128)
    """The product account key that usage data carries."""
    industry: str | None = Field(default=None, max_length=128)
    region: str | None = Field(default=None, max_length=64)
    country: str | None = Field(default=None, max_length=64)
    segment: str | None = Field(default=None, max_length=64)
    employees: int | None = None
    seats: int | None = None
    outcome_target: float | None = None
    """The customer's own KPI target (outcome progress = KPI / target)."""
    owner_id: int | None = Field(default=None, foreign_key="person.id")
    csm_id: int | None = Field(default=None, foreign_key="person.id")
    lead_source: str | None = Field(default=None, max_length=128)
    source_created_at: datetime | None = _ts()
    is_deleted: bool = Field(default=False, nullable=False)
    origin_source: str = Field(max_length=32, nullable=False)
    origin_source_id: str = Field(max_length=128, nullable=False)
    """The source record that first created this account (stable identity)."""


class SourceLink(_Tracked, table=True):
    """An identifier of a customer in one source, linked to its account.

    For CRM accounts (``object = 'account'``) the row also carries that
    source's copy of the attributes, so the account can be rebuilt from its
    sources by priority. Usage keys (``object = 'usage_key'``) carry none.
    """

    __tablename__ = "source_link"
    __table_args__ = (
        UniqueConstraint("source", "object", "source_id", name="uq_source_link"),
        Index("ix_source_link_account", "account_id"),
        Index("ix_source_link_domain", "domain"),
        Index("ix_source_link_external_key", "external_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32, nullable=False)
    object: str = Field(max_length=32, nullable=False)
    source_id: str = Field(max_length=128, nullable=False)
    account_id: int | None = Field(default=None, foreign_key="account.id")
    match_rule: str | None = Field(default=None, max_length=32)
    """How the link was made: origin, external_key or domain."""
    name: str | None = Field(default=None, sa_type=Text)
    domain: str | None = Field(default=None, max_length=255)
    external_key: str | None = Field(default=None, max_length=128)
    industry: str | None = Field(default=None, max_length=128)
    region: str | None = Field(default=None, max_length=64)
    country: str | None = Field(default=None, max_length=64)
    segment: str | None = Field(default=None, max_length=64)
    employees: int | None = None
    seats: int | None = None
    outcome_target: float | None = None
    owner_ref: str | None = Field(default=None, max_length=64)
    csm_ref: str | None = Field(default=None, max_length=64)
    lead_source: str | None = Field(default=None, max_length=128)
    source_created_at: datetime | None = _ts()
    source_modified_at: datetime | None = _ts()
    is_deleted: bool = Field(default=False, nullable=False)
    extra: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    """Mapped custom fields that have no column of their own."""


class Person(_SourceRecord, table=True):
    """A CRM user: account owners, CSMs, the people incentives are paid to."""

    __tablename__ = "person"
    __table_args__ = (UniqueConstraint("source", "source_id", name="uq_person_source"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str | None = Field(default=None, sa_type=Text)
    email: str | None = Field(default=None, max_length=255)
    team: str | None = Field(default=None, max_length=32)
    """sales, cs, marketing or other."""
    title: str | None = Field(default=None, max_length=255)
    is_active: bool = Field(default=True, nullable=False)


class Contact(_AccountRecord, table=True):
    __tablename__ = "contact"
    __table_args__ = _account_record_args("contact")
    name: str | None = Field(default=None, sa_type=Text)
    email: str | None = Field(default=None, max_length=255)
    title: str | None = Field(default=None, max_length=255)
    role: str | None = Field(default=None, max_length=32)
    """economic_buyer, champion, user or other."""


class Opportunity(_AccountRecord, table=True):
    """A deal: new business, renewal, expansion or contraction."""

    __tablename__ = "opportunity"
    __table_args__ = _account_record_args("opportunity")
    name: str | None = Field(default=None, sa_type=Text)
    type: str | None = Field(default=None, max_length=32)
    """new, renewal, expansion or contraction."""
    stage: str | None = Field(default=None, max_length=128)
    status: str = Field(default="open", max_length=16, nullable=False)
    """open, won or lost."""
    amount: Decimal | None = _money()
    arr: Decimal | None = _money()
    """Annual recurring revenue of the contract, in ``currency``."""
    currency: str | None = Field(default=None, max_length=3)
    close_date: date | None = None
    contract_start: date | None = None
    contract_end: date | None = None
    owner_ref: str | None = Field(default=None, max_length=64)
    lead_source: str | None = Field(default=None, max_length=128)


class Ticket(_AccountRecord, table=True):
    __tablename__ = "ticket"
    __table_args__ = _account_record_args("ticket")
    subject: str | None = Field(default=None, sa_type=Text)
    priority: str | None = Field(default=None, max_length=16)
    """low, medium, high or urgent."""
    status: str | None = Field(default=None, max_length=32)
    opened_at: datetime | None = _ts()
    closed_at: datetime | None = _ts()
    csat: float | None = None


class Activity(_AccountRecord, table=True):
    """Meetings, calls and emails: executive engagement is read from here."""

    __tablename__ = "activity"
    __table_args__ = _account_record_args("activity", "occurred_at")
    contact_ref: str | None = Field(default=None, max_length=64)
    kind: str | None = Field(default=None, max_length=32)
    """meeting, call, email, task or other."""
    subject: str | None = Field(default=None, sa_type=Text)
    occurred_at: datetime | None = _ts()


class UsageDaily(_Tracked, table=True):
    """One account's use of one metric on one day."""

    __tablename__ = "usage_daily"
    __table_args__ = (
        UniqueConstraint("source", "account_key", "metric", "day", name="uq_usage_daily"),
        Index("ix_usage_account_metric_day", "account_id", "metric", "day"),
        Index("ix_usage_unlinked", "account_key", "account_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32, nullable=False)
    account_key: str = Field(max_length=128, nullable=False)
    account_id: int | None = Field(default=None, foreign_key="account.id")
    metric: str = Field(max_length=64, nullable=False)
    day: date = Field(nullable=False)
    value: float = Field(nullable=False)


# --------------------------------------------------------------------------- operations


class SyncState(SQLModel, table=True):
    """The checkpoint of one stream; advanced in the same transaction as its page."""

    __tablename__ = "sync_state"
    __table_args__ = (UniqueConstraint("source", "stream", name="uq_sync_state"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32, nullable=False)
    stream: str = Field(max_length=64, nullable=False)
    cursor: str | None = Field(default=None, sa_type=Text)
    state: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    updated_at: datetime = _stamp()


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_run"
    __table_args__ = (Index("ix_sync_run_stream", "source", "stream", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=36, nullable=False, index=True)
    source: str = Field(max_length=32, nullable=False)
    stream: str = Field(max_length=64, nullable=False)
    mode: str = Field(default="incremental", max_length=16, nullable=False)
    status: str = Field(default="running", max_length=16, nullable=False)
    """running, ok, stopped (quota; resumes next run) or failed."""
    started_at: datetime = _stamp()
    finished_at: datetime | None = _ts()
    read: int = Field(default=0, nullable=False)
    inserted: int = Field(default=0, nullable=False)
    updated: int = Field(default=0, nullable=False)
    unchanged: int = Field(default=0, nullable=False)
    deleted: int = Field(default=0, nullable=False)
    quarantined: int = Field(default=0, nullable=False)
    error: str | None = Field(default=None, sa_type=Text)


class JobRun(SQLModel, table=True):
    __tablename__ = "job_run"
    __table_args__ = (Index("ix_job_run_job", "job", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=36, nullable=False, index=True)
    job: str = Field(max_length=32, nullable=False)
    trigger: str = Field(default="cli", max_length=16, nullable=False)
    status: str = Field(default="running", max_length=16, nullable=False)
    started_at: datetime = _stamp()
    finished_at: datetime | None = _ts()
    duration_seconds: float | None = None
    counts: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    error: str | None = Field(default=None, sa_type=Text)
    host: str | None = Field(default=None, max_length=255)
    pid: int | None = None


class Quarantine(SQLModel, table=True):
    """A record a sync rejected, with the reason; the sync went on without it."""

    __tablename__ = "quarantine"
    __table_args__ = (
        UniqueConstraint("source", "stream", "source_id", "reason", name="uq_quarantine"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32, nullable=False)
    stream: str = Field(max_length=64, nullable=False)
    source_id: str = Field(max_length=128, nullable=False)
    reason: str = Field(sa_type=Text, nullable=False)
    payload: str | None = Field(default=None, sa_type=Text)
    first_seen_at: datetime = _stamp()
    last_seen_at: datetime = _stamp()
    seen_count: int = Field(default=1, nullable=False)
    resolved_at: datetime | None = _ts()


class IdentityConflict(SQLModel, table=True):
    """Two accounts that claim one domain: reported, never merged silently."""

    __tablename__ = "identity_conflict"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_identity_conflict"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32, nullable=False)
    value: str = Field(max_length=255, nullable=False)
    account_ids: list[int] = Field(default_factory=list, sa_type=JSON)
    detail: str | None = Field(default=None, sa_type=Text)
    first_seen_at: datetime = _stamp()
    last_seen_at: datetime = _stamp()


class ScheduledJob(SQLModel, table=True):
    """APScheduler's job store (its own layout), created by clghub's migrations."""

    __tablename__ = "apscheduler_jobs"

    id: str = Field(primary_key=True, max_length=191)
    next_run_time: float | None = Field(default=None, index=True, sa_type=Float(precision=25))
    job_state: bytes = Field(sa_type=LargeBinary, nullable=False)


class RunLock(SQLModel, table=True):
    """One holder at a time per lock name (SQLite; PostgreSQL uses advisory locks)."""

    __tablename__ = "run_lock"

    name: str = Field(primary_key=True, max_length=64)
    owner: str = Field(max_length=128, nullable=False)
    acquired_at: datetime = _stamp()
    heartbeat_at: datetime = _stamp()
