"""Daily product usage, computed on demand: never stored, never held whole.

A row's value is a pure function of (seed, product account, metric, day):
the account's profile (seats, health at the start and end of the window,
its adoption and outcome twists, its first day of value) comes from the
``usage_profile`` table, and the day-to-day noise from a stateless hash.
So 100,000 accounts x 8 metrics x 120 days are served page by page
without ever existing at once.

Order of the stream (what every pagination style pages through): by
``updated_at`` (a day's figures are final the next day at 02:00 UTC), then
``account_key``, then ``metric``. Every metric but ``nps`` has a row on each
day an account is active; ``nps`` only on the days someone answered the
survey.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import numpy.typing as npt

from clghub.sandbox.rng import unit_array
from clghub.sandbox.schema import USAGE_METRICS

__all__ = [
    "METRICS",
    "Position",
    "UsageModel",
    "UsageRow",
    "day_text",
    "updated_at_of",
]

METRICS: tuple[str, ...] = tuple(sorted(USAGE_METRICS))
"""Metric names in stream order (alphabetical)."""
_CODE = {name: code for code, name in enumerate(METRICS)}
_AU = _CODE["active_users"]
_AUTOMATIONS = _CODE["automations_run"]
_DASHBOARDS = _CODE["dashboards_viewed"]
_INTEGRATIONS = _CODE["integrations_synced"]
_LOGINS = _CODE["logins"]
_NPS = _CODE["nps"]
_OUTCOME = _CODE["outcome_kpi"]
_REPORTS = _CODE["reports_built"]
_DENSE = len(METRICS) - 1
"""Rows an active account has every day (all metrics but nps)."""

# Extra noise streams, apart from the per-metric ones (codes 0-7).
_NOISE_HEALTH = 101
_NOISE_NPS_SPREAD = 105
_NOISE_NPS_ANSWER = 200

_FINAL_AFTER = timedelta(days=1, hours=2)
"""A day's figure is final (its updated_at) at 02:00 UTC the next day."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

UsageRow = tuple[str, str, int, float | int]
"""(account_key, metric, day ordinal, value)."""


@dataclass(frozen=True, order=True)
class Position:
    """Where a row is in the stream: its day, account (index in key order), metric code."""

    day: int
    account: int
    metric: int


def day_text(day: int) -> str:
    return date.fromordinal(day).isoformat()


def updated_at_of(day: int) -> datetime:
    return datetime.combine(date.fromordinal(day), time(0, 0), tzinfo=UTC) + _FINAL_AFTER


def _sigmoid(values: FloatArray) -> FloatArray:
    result: FloatArray = 1.0 / (1.0 + np.exp(-values))
    return result


class UsageModel:
    """The usage of every product account in a window of days before the anchor."""

    def __init__(self, db: sqlite3.Connection, *, seed: int, anchor: date, usage_days: int) -> None:
        self.seed = seed
        self.first_day = anchor.toordinal() - usage_days
        self.last_day = anchor.toordinal() - 1
        rows = db.execute(
            "SELECT key, entity, active_from, active_to, value_from, seats, health_start, "
            "health_end, adoption, outcome, outcome_target, nps_rate, nps_base "
            "FROM usage_profile ORDER BY key"
        ).fetchall()
        self.keys: list[str] = [str(row[0]) for row in rows]
        columns = list(zip(*rows, strict=True)) if rows else [()] * 13
        self.entity = np.array(columns[1], dtype=np.uint64)
        self.active_from = np.array(columns[2], dtype=np.int64)
        self.active_to = np.array(columns[3], dtype=np.int64)
        self.value_from = np.array(columns[4], dtype=np.int64)
        self.seats = np.array(columns[5], dtype=np.float64)
        self.health_start = np.array(columns[6], dtype=np.float64)
        self.health_end = np.array(columns[7], dtype=np.float64)
        self.adoption = np.array(columns[8], dtype=np.float64)
        self.outcome = np.array(columns[9], dtype=np.float64)
        self.outcome_target = np.array(columns[10], dtype=np.float64)
        self.nps_rate = np.array(columns[11], dtype=np.float64)
        self.nps_base = np.array(columns[12], dtype=np.float64)
        self._day_totals: dict[int, int] = {}

    @property
    def accounts(self) -> int:
        return len(self.keys)

    # -- which rows exist ----------------------------------------------------

    def visible_through(self, now: datetime) -> int:
        """The last day whose figures are final at ``now`` (may precede the window)."""
        final = (now - timedelta(hours=2)).astimezone(UTC).date().toordinal() - 1
        return min(self.last_day, final)

    def first_day_since(self, since: datetime | None) -> int:
        """The first day whose ``updated_at`` is at or after ``since`` (inclusive)."""
        if since is None:
            return self.first_day
        shifted = since.astimezone(UTC) - timedelta(hours=2)
        midnight = datetime.combine(shifted.date(), time(0, 0), tzinfo=UTC)
        next_day = shifted.date().toordinal() + (0 if shifted == midnight else 1)
        return max(self.first_day, next_day - 1)

    def _active(self, day: int) -> IntArray:
        mask = (self.active_from <= day) & (self.active_to >= day)
        return np.flatnonzero(mask).astype(np.int64)

    def _answered(self, accounts: IntArray, day: int) -> npt.NDArray[np.bool_]:
        draws = unit_array(self.seed, self.entity[accounts], day, _NOISE_NPS_ANSWER)
        answered: npt.NDArray[np.bool_] = draws < self.nps_rate[accounts]
        return answered

    def day_total(self, day: int) -> int:
        """Rows on ``day``."""
        if day < self.first_day or day > self.last_day:
            return 0
        total = self._day_totals.get(day)
        if total is None:
            active = self._active(day)
            total = len(active) * _DENSE + int(np.count_nonzero(self._answered(active, day)))
            self._day_totals[day] = total
        return total

    def total(self, first_day: int, last_day: int) -> int:
        return sum(self.day_total(day) for day in range(first_day, last_day + 1))

    def locate(self, first_day: int, last_day: int, offset: int) -> Position | None:
        """The position of the ``offset``-th row (0-based) from ``first_day``; None past the end."""
        day = first_day
        while day <= last_day:
            count = self.day_total(day)
            if offset < count:
                active = self._active(day)
                per_account = np.where(self._answered(active, day), _DENSE + 1, _DENSE)
                ends = np.cumsum(per_account)
                slot = int(np.searchsorted(ends, offset, side="right"))
                ordinal = offset - (int(ends[slot - 1]) if slot else 0)
                has_nps = bool(per_account[slot] == _DENSE + 1)
                metric = ordinal if has_nps or ordinal < _NPS else ordinal + 1
                return Position(day, int(active[slot]), metric)
            offset -= count
            day += 1
        return None

    # -- the rows themselves -------------------------------------------------

    def rows_from(
        self, start: Position, last_day: int, limit: int
    ) -> tuple[list[UsageRow], Position | None]:
        """Up to ``limit`` rows from ``start`` (inclusive), and where the next page starts
        (None when the stream ends at ``last_day``)."""
        rows: list[UsageRow] = []
        account, metric = start.account, start.metric
        day = start.day
        if day < self.first_day:
            day, account, metric = self.first_day, 0, 0
        while day <= last_day:
            active = self._active(day)
            begin = int(np.searchsorted(active, account, side="left"))
            while begin < len(active):
                need = limit - len(rows)
                # 7 or 8 rows per account and day: enough accounts to fill the page.
                chosen = active[begin : begin + need // _DENSE + 2]
                accounts, codes = self._expand(chosen, day)
                if metric and chosen[0] == account:
                    keep = (accounts != account) | (codes >= metric)
                    accounts, codes = accounts[keep], codes[keep]
                if len(accounts) > need:
                    accounts, codes = accounts[: need + 1], codes[: need + 1]
                    values = self.values(accounts[:need], codes[:need], day)
                    rows.extend(self._render(accounts[:need], codes[:need], values, day))
                    return rows, Position(day, int(accounts[need]), int(codes[need]))
                rows.extend(self._render(accounts, codes, self.values(accounts, codes, day), day))
                begin += len(chosen)
                metric = 0
                if len(rows) == limit:
                    if begin < len(active):
                        return rows, Position(day, int(active[begin]), 0)
                    return rows, (Position(day + 1, 0, 0) if day < last_day else None)
            day, account, metric = day + 1, 0, 0
        return rows, None

    def _expand(self, accounts: IntArray, day: int) -> tuple[IntArray, IntArray]:
        """Every (account, metric) row of ``accounts`` on ``day``, in stream order."""
        answered = self._answered(accounts, day)
        codes = np.tile(np.arange(len(METRICS), dtype=np.int64), len(accounts))
        owners = np.repeat(accounts, len(METRICS))
        keep = (codes != _NPS) | np.repeat(answered, len(METRICS))
        return owners[keep], codes[keep]

    def _render(
        self, accounts: IntArray, codes: IntArray, values: FloatArray, day: int
    ) -> list[UsageRow]:
        keys = self.keys
        integral = codes != _OUTCOME
        numbers: list[float | int] = [
            int(v) if whole else float(v)
            for v, whole in zip(values.tolist(), integral.tolist(), strict=True)
        ]
        return [
            (keys[a], METRICS[c], day, n)
            for a, c, n in zip(accounts.tolist(), codes.tolist(), numbers, strict=True)
        ]

    def values(self, accounts: IntArray, codes: IntArray, day: int) -> FloatArray:
        """The value of each (account, metric) pair on ``day``."""
        seed = self.seed
        entity = self.entity[accounts]
        seats = self.seats[accounts]
        span = np.maximum(1, self.active_to[accounts] - self.active_from[accounts])
        frac = (day - self.active_from[accounts]) / span
        wobble = unit_array(seed, entity, day, _NOISE_HEALTH) - 0.5
        health = (
            self.health_start[accounts]
            + (self.health_end[accounts] - self.health_start[accounts]) * frac
            + 0.2 * wobble
        )
        adoption = _sigmoid(health + self.adoption[accounts])
        weekend = date.fromordinal(day).weekday() >= 5
        workload = 0.3 if weekend else 1.0
        since_value = day - self.value_from[accounts]
        valued = since_value >= 0
        ramp = np.where(valued, 0.35 + 0.65 * np.clip(since_value / 45.0, 0.0, 1.0), 0.0)
        noise = unit_array(seed, entity, day, codes.astype(np.uint64))
        users_noise = unit_array(seed, entity, day, _AU)
        users = np.maximum(
            1.0,
            np.minimum(
                np.ceil(seats * 1.1),
                np.round(seats * (0.25 + 0.65 * adoption) * workload * (0.9 + 0.2 * users_noise)),
            ),
        )
        # High-ROI use per active user grows with adoption squared: deep users
        # automate, shallow ones only look. Next to none before the first value.
        depth = users * adoption * adoption * ramp
        out = np.zeros(len(accounts), dtype=np.float64)

        def put(code: int, values: FloatArray) -> None:
            mask = codes == code
            out[mask] = values[mask]

        put(_AU, users)
        put(
            _AUTOMATIONS,
            np.where(valued, np.round(depth * 5.0 * (0.6 + 0.8 * noise)), np.floor(noise * 4.0)),
        )
        put(
            _DASHBOARDS,
            np.round(users * (0.5 + noise) * (0.8 + 0.4 * _sigmoid(health))),
        )
        put(
            _INTEGRATIONS,
            np.where(valued, np.round(depth * 1.2 * (0.6 + 0.8 * noise)), np.floor(noise * 2.0)),
        )
        put(_LOGINS, np.round(users * (1.2 + 1.3 * noise)))
        spread = unit_array(seed, entity, day, _NOISE_NPS_SPREAD)
        put(
            _NPS,
            np.clip(
                np.round(self.nps_base[accounts] + 0.25 * health + 3.0 * (noise + spread - 1.0)),
                0.0,
                10.0,
            ),
        )
        progress = np.where(valued, 0.3 + 0.7 * np.clip(since_value / 60.0, 0.0, 1.0), 0.08)
        attainment = np.clip(
            progress * 1.25 * _sigmoid(1.5 * (health + self.outcome[accounts]) + 0.4)
            + 0.06 * (noise - 0.5),
            0.0,
            1.6,
        )
        put(_OUTCOME, np.round(self.outcome_target[accounts] * attainment, 2))
        put(
            _REPORTS,
            np.where(valued, np.round(ramp * users * adoption * 0.35 * (0.5 + noise)), 0.0),
        )
        return out
