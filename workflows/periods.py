"""Months, fiscal quarters and years as integer indexes.

A *month index* is ``year * 12 + month - 1`` (see :mod:`clghub.store.sqlfuncs`).
Quarters and years follow ``reporting.fiscal_year_start_month``: a period of
``length`` months has index ``(month_index - offset) // length``, where the
offset is the fiscal year's first month (zero for calendar months). A fiscal
year is named after the calendar year it ends in (a year that starts in
February 2026 is FY2027), the usual convention in CRMs; calendar-aligned
quarters and years are named plainly ("2026-Q3", "2026"), others carry "FY"
("FY2027-Q1", "FY2027").

The month ``as_of`` falls in is *open*: the ledger values it on ``as_of``.
The *last closed month* is the last month whose final day is on or before
``as_of``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

__all__ = [
    "PERIOD_MONTHS",
    "Period",
    "PeriodKind",
    "last_closed_month",
    "month_date",
    "month_index",
    "month_label",
    "period_of",
]

PeriodKind = Literal["month", "quarter", "year"]
PERIOD_MONTHS: dict[PeriodKind, int] = {"month": 1, "quarter": 3, "year": 12}


def month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def month_date(index: int) -> date:
    """The first day of a month index."""
    return date(index // 12, index % 12 + 1, 1)


def month_end(index: int) -> date:
    return month_date(index + 1) - timedelta(days=1)


def month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def last_closed_month(as_of: date) -> int:
    """The last month whose final day is on or before ``as_of``."""
    return month_index(as_of + timedelta(days=1)) - 1


@dataclass(frozen=True)
class Period:
    """One month, fiscal quarter or fiscal year."""

    kind: PeriodKind
    index: int
    fiscal_year_start_month: int

    @property
    def length(self) -> int:
        return PERIOD_MONTHS[self.kind]

    @property
    def offset(self) -> int:
        return 0 if self.kind == "month" else self.fiscal_year_start_month - 1

    @property
    def first_month(self) -> int:
        return self.index * self.length + self.offset

    @property
    def last_month(self) -> int:
        return self.first_month + self.length - 1

    @property
    def start(self) -> date:
        return month_date(self.first_month)

    @property
    def end(self) -> date:
        return month_end(self.last_month)

    @property
    def label(self) -> str:
        if self.kind == "month":
            return month_label(self.first_month)
        year_offset = self.fiscal_year_start_month - 1
        fiscal_year_first = (self.first_month - year_offset) // 12 * 12 + year_offset
        fiscal_year = month_date(fiscal_year_first + 11).year
        prefix = "" if year_offset == 0 else "FY"
        if self.kind == "year":
            return f"{prefix}{fiscal_year}"
        quarter = (self.first_month - fiscal_year_first) // 3 + 1
        return f"{prefix}{fiscal_year}-Q{quarter}"

    def shifted(self, periods: int) -> Period:
        return Period(self.kind, self.index + periods, self.fiscal_year_start_month)


def period_of(kind: PeriodKind, month: int, fiscal_year_start_month: int) -> Period:
    """The period a month index falls in."""
    offset = 0 if kind == "month" else fiscal_year_start_month - 1
    return Period(kind, (month - offset) // PERIOD_MONTHS[kind], fiscal_year_start_month)
