"""State of what clghub has sent out: CRM field writes, Slack digests, alert deliveries.

Every output is recorded *before* it is sent (``pending``) and confirmed
*after* the receiving system said so. A process killed in between leaves a
pending row behind; the next run first finds out whether the send went
through (reading the CRM record, searching the channel's history for the
message's key, or the CRM for the task's key) instead of sending again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from clghub.store.models import utcnow
from clghub.store.types import UTCDateTime

__all__ = ["DigestPost", "PlayDelivery", "WritebackState"]


def _ts() -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=True)


def _stamp() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class WritebackState(SQLModel, table=True):
    """One CRM field of one CRM record: what the CRM last confirmed, what is in flight.

    Values are kept in their canonical text form (see
    :mod:`clghub.writeback.values`), so a change of formatting never reads as
    a change of value. ``confirmed_at`` empty means the CRM never confirmed
    a value here; ``confirmed_value`` empty with ``confirmed_at`` set means
    the CRM holds an empty value that clghub wrote.
    """

    __tablename__ = "writeback_state"
    __table_args__ = (Index("ix_writeback_state_account", "account_id"),)

    crm: str = Field(primary_key=True, max_length=16)
    """salesforce or hubspot."""
    record_id: str = Field(primary_key=True, max_length=64)
    """The CRM's id of the record (Salesforce Account id, HubSpot company id)."""
    field: str = Field(primary_key=True, max_length=128)
    """The CRM field's API name."""
    account_id: int | None = Field(default=None, foreign_key="account.id")
    confirmed_value: str | None = Field(default=None, sa_type=Text)
    confirmed_at: datetime | None = _ts()
    pending: bool = Field(default=False, nullable=False)
    """A write was sent and its outcome is not known (the process stopped in between)."""
    pending_value: str | None = Field(default=None, sa_type=Text)
    last_error: str | None = Field(default=None, sa_type=Text)
    """Why the CRM refused the last write of this record; cleared once it succeeds."""
    attempts: int = Field(default=0, nullable=False)
    """Failed writes since the last confirmed one."""
    last_attempt_at: datetime | None = _ts()


class DigestPost(SQLModel, table=True):
    """The leadership digest of one period in one channel: posted exactly once."""

    __tablename__ = "digest_post"

    period: str = Field(primary_key=True, max_length=16)
    """ISO week, e.g. 2026-W47."""
    channel: str = Field(primary_key=True, max_length=128)
    """The channel as configured (a name such as #leadership, or an id)."""
    channel_id: str | None = Field(default=None, max_length=32)
    digest_key: str = Field(max_length=64, nullable=False)
    """Carried in the message's metadata, so a post can be found after a crash."""
    state: str = Field(default="pending", max_length=16, nullable=False)
    """pending (about to be posted, or posted and not yet recorded) or posted."""
    payload_hash: str = Field(max_length=64, nullable=False)
    """sha256 of the Block Kit payload last prepared for this digest."""
    message_ts: str | None = Field(default=None, max_length=32)
    chart_state: str | None = Field(default=None, max_length=16)
    """Empty when there is no chart; pending, then posted."""
    chart_name: str | None = Field(default=None, max_length=128)
    """The chart's file name: unique per period, so its share can be found after a crash."""
    file_id: str | None = Field(default=None, max_length=32)
    nrr: float | None = None
    """The trailing-twelve-month NRR the digest showed (the next digest shows the change)."""
    grr: float | None = None
    attempt_started_at: datetime | None = _ts()
    """When the last attempt to post began: the history search starts a little before it."""
    posted_at: datetime | None = _ts()
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _stamp()
    updated_at: datetime = _stamp()


class PlayDelivery(SQLModel, table=True):
    """How one play was announced: the Slack message and the CRM task, each at most once.

    The play row itself gets ``notified_at``, ``notification_ref`` and
    ``crm_task_ref`` once a delivery is confirmed; this row holds what is
    needed in between (the keys, the attempts, the errors).
    """

    __tablename__ = "play_delivery"

    play_id: int = Field(foreign_key="play.id", primary_key=True)
    message_key: str = Field(max_length=128, nullable=False)
    """Carried in the Slack message's metadata."""
    channel: str | None = Field(default=None, max_length=128)
    """Where the message goes: the owner's direct-message channel or the alerts channel."""
    message_state: str = Field(default="pending", max_length=16, nullable=False)
    """pending, sent or failed (retried on the next run)."""
    message_started_at: datetime | None = _ts()
    message_ts: str | None = Field(default=None, max_length=32)
    task_key: str | None = Field(default=None, max_length=128)
    """Written into the CRM task's subject, so the task can be found after a crash."""
    task_crm: str | None = Field(default=None, max_length=16)
    task_record_id: str | None = Field(default=None, max_length=64)
    """The CRM record the task is attached to."""
    task_state: str | None = Field(default=None, max_length=16)
    """Empty when no task is wanted; pending, created or failed."""
    task_started_at: datetime | None = _ts()
    task_ref: str | None = Field(default=None, max_length=64)
    attempts: int = Field(default=0, nullable=False)
    last_error: str | None = Field(default=None, sa_type=Text)
    updated_at: datetime = _stamp()
