"""Snapshot tables of the revenue workflows: ARR ledger, retention, CLV, incentives.

Money is in the reporting currency (``reporting.currency``) unless a row
carries its own ``currency``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from clghub.store.models import utcnow
from clghub.store.types import Money, UTCDateTime

__all__ = ["ArrMonth", "ArrMovement", "Clv", "ClvModel", "Incentive", "IncentiveDetail", "Retention"]


def _money(nullable: bool = False) -> Any:
    return Field(default=None if nullable else Decimal(0), sa_type=Money, nullable=nullable)


def _computed() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class ArrMonth(SQLModel, table=True):
    """ARR per account at the end of each month (the ledger).

    Only months with ARR above zero have a row; a missing month is zero. The
    month ``as_of`` falls in is valued on ``as_of`` (the month is not over).

    ``account_id`` has no foreign key on purpose: the table is rebuilt from
    the deals of existing accounts on every run (millions of rows on a large
    store), and a per-row key check would double the cost of writing it.
    """

    __tablename__ = "arr_month"
    __table_args__ = (Index("ix_arr_month_month", "month"),)

    account_id: int = Field(primary_key=True)
    month: date = Field(primary_key=True)
    """First day of the month; ARR is the figure on its last day."""
    arr: Decimal = _money()
    computed_at: datetime = _computed()


class ArrMovement(SQLModel, table=True):
    """One account's ARR bridge movement in one period."""

    __tablename__ = "arr_movement"
    __table_args__ = (Index("ix_arr_movement_account", "account_id"),)

    period_kind: str = Field(primary_key=True, max_length=8)
    """month or quarter."""
    period_start: date = Field(primary_key=True)
    account_id: int = Field(primary_key=True)
    """No foreign key, as in :class:`ArrMonth` (rebuilt on every run)."""
    kind: str = Field(max_length=16, nullable=False)
    """new, expansion, contraction, churn or reactivation."""
    start_arr: Decimal = _money()
    end_arr: Decimal = _money()
    amount: Decimal = _money()
    """The size of the movement (always positive; ``kind`` gives its sign)."""
    computed_at: datetime = _computed()


class Retention(SQLModel, table=True):
    """The ARR bridge and retention rates of one period and cohort."""

    __tablename__ = "retention"
    __table_args__ = (
        UniqueConstraint("period_kind", "period_start", "cohort_dim", "cohort_value", name="uq_retention"),
    )

    id: int | None = Field(default=None, primary_key=True)
    period_kind: str = Field(max_length=8, nullable=False)
    """month, quarter or ttm (trailing twelve months ending with the period)."""
    period_start: date = Field(nullable=False)
    period_end: date = Field(nullable=False)
    cohort_dim: str = Field(max_length=32, nullable=False)
    """all, segment, industry, region, acquisition_year or owner."""
    cohort_value: str = Field(max_length=255, nullable=False)
    start_arr: Decimal = _money()
    new_arr: Decimal = _money()
    expansion_arr: Decimal = _money()
    contraction_arr: Decimal = _money()
    churn_arr: Decimal = _money()
    reactivation_arr: Decimal = _money()
    end_arr: Decimal = _money()
    start_logos: int = Field(default=0, nullable=False)
    new_logos: int = Field(default=0, nullable=False)
    reactivated_logos: int = Field(default=0, nullable=False)
    churned_logos: int = Field(default=0, nullable=False)
    end_logos: int = Field(default=0, nullable=False)
    """start + new + reactivated - churned."""
    nrr: float | None = None
    grr: float | None = None
    logo_retention: float | None = None
    computed_at: datetime = _computed()


class ClvModel(SQLModel, table=True):
    """A fitted shifted-beta-geometric model and its diagnostics."""

    __tablename__ = "clv_model"
    __table_args__ = (UniqueConstraint("as_of", "segment", name="uq_clv_model"),)

    id: int | None = Field(default=None, primary_key=True)
    as_of: date = Field(nullable=False)
    segment: str = Field(max_length=64, nullable=False)
    """A segment name, or "all" for the overall fit."""
    alpha: float = Field(nullable=False)
    beta: float = Field(nullable=False)
    cohorts: int = Field(default=0, nullable=False)
    accounts: int = Field(default=0, nullable=False)
    log_likelihood: float | None = None
    borrowed_from: str | None = Field(default=None, max_length=64)
    """Set when the segment had too little data and uses this fit instead."""
    diagnostics: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    computed_at: datetime = _computed()


class Clv(SQLModel, table=True):
    """Customer lifetime value per account, as of a day."""

    __tablename__ = "clv"
    __table_args__ = (Index("ix_clv_as_of", "as_of"),)

    account_id: int = Field(primary_key=True)
    """No foreign key, as in :class:`ArrMonth` (a run rewrites its day's rows)."""
    as_of: date = Field(primary_key=True)
    segment: str | None = Field(default=None, max_length=64)
    model_segment: str | None = Field(default=None, max_length=64)
    arr: Decimal = _money()
    margin: Decimal = _money()
    """One period's margin (ARR x gross margin, scaled to the period)."""
    renewals: int = Field(default=0, nullable=False)
    derl: float = Field(default=0.0, nullable=False)
    clv: Decimal = _money()
    clv_previous: Decimal | None = _money(nullable=True)
    clv_growth: Decimal | None = _money(nullable=True)
    clv_growth_pct: float | None = None
    computed_at: datetime = _computed()


class Incentive(SQLModel, table=True):
    """A team's or a person's share of the CLV-based incentive pool in one period."""

    __tablename__ = "incentive"
    __table_args__ = (UniqueConstraint("period", "team", "person_key", name="uq_incentive"),)

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=16, nullable=False)
    """e.g. 2026-Q3, 2026-07 or 2026."""
    period_start: date = Field(nullable=False)
    period_end: date = Field(nullable=False)
    team: str = Field(max_length=16, nullable=False)
    """marketing, sales or cs; "pool" for the period's whole pool."""
    person_key: str = Field(max_length=128, nullable=False)
    """A person id, a lead source (marketing), "(unassigned)", "(team)" for the
    team total, or "(pool)" on the pool row."""
    person_name: str | None = Field(default=None, sa_type=Text)
    amount: Decimal = _money()
    accounts: int = Field(default=0, nullable=False)
    computed_at: datetime = _computed()


class IncentiveDetail(SQLModel, table=True):
    """The accounts behind every incentive figure (clghub export incentives --detail)."""

    __tablename__ = "incentive_detail"
    __table_args__ = (Index("ix_incentive_detail_period", "period", "account_id"),)

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=16, nullable=False)
    account_id: int = Field(nullable=False)
    """No foreign key, as in :class:`ArrMonth` (a run rewrites its periods' rows)."""
    kind: str = Field(max_length=16, nullable=False)
    """new_logo, clv_growth, contraction or clawback."""
    clv_start: Decimal | None = _money(nullable=True)
    """CLV at the start of the period (empty for a new logo and a clawback)."""
    clv_end: Decimal | None = _money(nullable=True)
    """CLV at the end of the period (empty for a clawback)."""
    clv_delta: Decimal = _money()
    pool_delta: Decimal = _money()
    """rate x clv_delta: this account's contribution to the pool (negative for clawbacks)."""
    team: str = Field(max_length=16, nullable=False)
    person_key: str = Field(max_length=128, nullable=False)
    amount: Decimal = _money()
    """pool_delta x the team's share."""
    note: str | None = Field(default=None, sa_type=Text)
    computed_at: datetime = _computed()
