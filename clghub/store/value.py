"""Snapshot tables of the value workflows: value scores and drivers, time-to-value, plays.

``account_id`` is an ``account.id`` everywhere. The tables every run rebuilds
(``value_score``, ``value_driver``, ``time_to_value``) carry no foreign key:
their rows are computed from the account rows in the same transaction, so
the reference holds by construction, and PostgreSQL's row-by-row reference
check cost as much as computing a snapshot. ``play`` keeps its foreign key:
its rows are few and outlive the runs that open them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Index, Text, text
from sqlmodel import Field, SQLModel

from clghub.store.models import utcnow
from clghub.store.types import UTCDateTime

__all__ = ["Play", "TimeToValue", "ValueDriver", "ValueScore"]


def _computed() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class ValueScore(SQLModel, table=True):
    """An account's value score on one day (dated snapshots make trends)."""

    __tablename__ = "value_score"
    __table_args__ = (Index("ix_value_score_as_of", "as_of"),)

    account_id: int = Field(primary_key=True)
    as_of: date = Field(primary_key=True)
    segment: str | None = Field(default=None, max_length=64)
    score: float = Field(nullable=False)
    band: str = Field(max_length=8, nullable=False)
    """green, yellow or red."""
    trend_30d: float | None = None
    trend_90d: float | None = None
    explanation: str | None = Field(default=None, sa_type=Text)
    """The top drivers in words a CSM understands."""
    drivers: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    computed_at: datetime = _computed()


class ValueDriver(SQLModel, table=True):
    """One driver of one account's score on one day: raw value, 0-100 score, weight."""

    __tablename__ = "value_driver"
    __table_args__ = (Index("ix_value_driver_as_of", "as_of"),)

    account_id: int = Field(primary_key=True)
    as_of: date = Field(primary_key=True)
    driver: str = Field(primary_key=True, max_length=32)
    raw: float | None = None
    score: float | None = None
    weight: float = Field(default=0.0, nullable=False)
    effective_weight: float = Field(default=0.0, nullable=False)
    """The weight after redistribution over the drivers the account has data for."""


class TimeToValue(SQLModel, table=True):
    """Time from contract start to the first day of real value."""

    __tablename__ = "time_to_value"

    account_id: int = Field(primary_key=True)
    as_of: date = Field(nullable=False)
    """The day this was computed for (later usage cannot count)."""
    segment: str | None = Field(default=None, max_length=64)
    contract_start: date = Field(nullable=False)
    """Start of the account's first contract."""
    first_value_day: date | None = None
    days: int | None = None
    """Days to first value; empty while not reached."""
    activated: bool = Field(default=False, nullable=False)
    overdue: bool = Field(default=False, nullable=False)
    computed_at: datetime = _computed()


class Play(SQLModel, table=True):
    """An alert: one per account and condition until the condition clears."""

    __tablename__ = "play"
    __table_args__ = (
        Index(
            "uq_play_open",
            "account_id",
            "condition",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", nullable=False)
    condition: str = Field(max_length=32, nullable=False)
    """score_drop, red_renewal, no_exec_meeting or ttv_overdue."""
    opened_as_of: date = Field(nullable=False)
    opened_at: datetime = _computed()
    cleared_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    value: float | None = None
    detail: str | None = Field(default=None, sa_type=Text)
    notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    notification_ref: str | None = Field(default=None, max_length=128)
    """Where the alert went (Slack channel and message ts)."""
    crm_task_ref: str | None = Field(default=None, max_length=128)
