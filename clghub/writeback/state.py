"""``writeback_state``: what each CRM confirmed, field by field, and what is in flight."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select, tuple_, update

from clghub.store.models import table_of, utcnow
from clghub.store.outputs import WritebackState

__all__ = [
    "FieldState",
    "StateStore",
]

STATE = table_of(WritebackState)
# Hand-written upserts: executemany of plain rows, one shape per purpose, on both
# backends. The generic upsert compares every column to count changes, which a
# state row that always changes does not need.
_PENDING_SQL = (
    "INSERT INTO writeback_state (crm, record_id, field, account_id, pending, pending_value, attempts, last_attempt_at) "
    "VALUES ({p}, {p}, {p}, {p}, TRUE, {p}, 0, {p}) "
    "ON CONFLICT (crm, record_id, field) DO UPDATE SET account_id = excluded.account_id, "
    "pending = excluded.pending, pending_value = excluded.pending_value, last_attempt_at = excluded.last_attempt_at"
)
_CONFIRM_SQL = (
    "INSERT INTO writeback_state (crm, record_id, field, confirmed_value, confirmed_at, pending, attempts) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, FALSE, 0) "
    "ON CONFLICT (crm, record_id, field) DO UPDATE SET confirmed_value = excluded.confirmed_value, "
    "confirmed_at = excluded.confirmed_at, pending = FALSE, pending_value = NULL, last_error = NULL, attempts = 0"
)


def _driver_sql(template: str, connection: Connection) -> str:
    """The statement in the driver's own placeholder style (sqlite3 ``?``, psycopg ``%s``)."""
    return template.format(p="?" if connection.dialect.paramstyle == "qmark" else "%s")


# Keeps IN lists and executemany pages well under every backend's limits.
_CHUNK = 500


@dataclass(frozen=True)
class FieldState:
    confirmed: bool
    value: str | None
    pending: bool
    pending_value: str | None
    last_error: str | None
    attempts: int


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class StateStore:
    """Reads and advances ``writeback_state`` for one CRM."""

    def __init__(self, engine: Engine, crm: str) -> None:
        self.engine = engine
        self.crm = crm

    def load(self, record_ids: Sequence[str]) -> dict[str, dict[str, FieldState]]:
        """record id -> CRM field -> its state, for the records that have any."""
        states: dict[str, dict[str, FieldState]] = defaultdict(dict)
        with self.engine.connect() as connection:
            for chunk in _chunks(record_ids):
                rows = connection.execute(
                    select(
                        STATE.c.record_id,
                        STATE.c.field,
                        STATE.c.confirmed_at.is_not(None).label("confirmed"),
                        STATE.c.confirmed_value,
                        STATE.c.pending,
                        STATE.c.pending_value,
                        STATE.c.last_error,
                        STATE.c.attempts,
                    ).where(STATE.c.crm == self.crm, STATE.c.record_id.in_(chunk))
                )
                for row in rows:
                    states[row.record_id][row.field] = FieldState(
                        confirmed=bool(row.confirmed),
                        value=row.confirmed_value,
                        pending=row.pending,
                        pending_value=row.pending_value,
                        last_error=row.last_error,
                        attempts=row.attempts,
                    )
        return states

    def _stamp(self, connection: Connection) -> Any:
        """``now`` as the driver stores a ``writeback_state`` timestamp."""
        process = STATE.c.confirmed_at.type.bind_processor(connection.dialect)
        now = utcnow()
        return process(now) if process is not None else now

    def mark_pending(self, writes: Sequence[tuple[str, int, Mapping[str, str | None]]]) -> None:
        """Before sending: each (record, account, values) is in flight."""
        with self.engine.begin() as connection:
            now = self._stamp(connection)
            rows = [
                (self.crm, record_id, field, account_id, value, now)
                for record_id, account_id, values in writes
                for field, value in values.items()
            ]
            sql = _driver_sql(_PENDING_SQL, connection)
            for chunk in _chunks(rows, 5000):
                connection.exec_driver_sql(sql, list(chunk))

    def confirm(
        self, connection: Connection, record_fields: Mapping[str, Mapping[str, str | None]]
    ) -> None:
        """The CRM holds these values now (it said so, or a read showed it)."""
        now = self._stamp(connection)
        rows = [
            (self.crm, record_id, field, value, now)
            for record_id, values in record_fields.items()
            for field, value in values.items()
        ]
        sql = _driver_sql(_CONFIRM_SQL, connection)
        for chunk in _chunks(rows, 5000):
            connection.exec_driver_sql(sql, list(chunk))

    def refuse(
        self, connection: Connection, failures: Mapping[str, tuple[Sequence[str], str]]
    ) -> None:
        """The CRM did not apply these fields: record why, count the attempt."""
        now = utcnow()
        by_error: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for record_id, (fields, error) in failures.items():
            by_error[error[:2000]].extend((record_id, field) for field in fields)
        for error, keys in by_error.items():
            for chunk in _chunks(keys):
                connection.execute(
                    update(STATE)
                    .where(
                        STATE.c.crm == self.crm, tuple_(STATE.c.record_id, STATE.c.field).in_(chunk)
                    )
                    .values(
                        pending=False,
                        pending_value=None,
                        last_error=error,
                        attempts=STATE.c.attempts + 1,
                        last_attempt_at=now,
                    )
                )

    def settle(
        self,
        confirmed: Mapping[str, Mapping[str, str | None]],
        failed: Mapping[str, tuple[Sequence[str], str]],
    ) -> None:
        """Record one batch's outcome in one transaction."""
        with self.engine.begin() as connection:
            if confirmed:
                self.confirm(connection, confirmed)
            if failed:
                self.refuse(connection, failed)

    def pending(self, *, limit: int = 5000) -> dict[str, dict[str, str | None]]:
        """Fields written by a run that stopped before it heard back: record -> field -> value."""
        found: dict[str, dict[str, str | None]] = defaultdict(dict)
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(STATE.c.record_id, STATE.c.field, STATE.c.pending_value)
                .where(STATE.c.crm == self.crm, STATE.c.pending.is_(True))
                .order_by(STATE.c.record_id)
                .limit(limit)
            )
            for row in rows:
                found[row.record_id][row.field] = row.pending_value
        return dict(found)

    def failing(self, *, limit: int = 10) -> tuple[int, list[tuple[str, str]]]:
        """How many records the CRM refused last time, and a few of them with the reason."""
        with self.engine.connect() as connection:
            count = connection.execute(
                select(func.count(func.distinct(STATE.c.record_id))).where(
                    STATE.c.crm == self.crm, STATE.c.last_error.is_not(None)
                )
            ).scalar_one()
            sample = connection.execute(
                select(STATE.c.record_id, func.max(STATE.c.last_error))
                .where(and_(STATE.c.crm == self.crm, STATE.c.last_error.is_not(None)))
                .group_by(STATE.c.record_id)
                .order_by(STATE.c.record_id)
                .limit(limit)
            ).all()
        return int(count), [(str(r[0]), str(r[1])) for r in sample]

    def touched_at(self) -> datetime | None:
        with self.engine.connect() as connection:
            value: datetime | None = connection.execute(
                select(func.max(STATE.c.confirmed_at)).where(STATE.c.crm == self.crm)
            ).scalar()
        return value
