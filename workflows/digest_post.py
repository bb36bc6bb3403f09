"""Posting the digest once per period and channel, whatever stops a run halfway.

1. A ``digest_post`` row is written *pending*, with the payload's hash and
   the digest key, before anything is sent.
2. A pending row found by a later run means an earlier run may have posted:
   the channel's history (with metadata) is searched for the key first;
   only if the message is not there is it posted.
3. The row is marked *posted* with the message's ts.
4. The chart is shared after the message, under a file name unique to the
   period; a share that was started but not recorded is looked for in the
   history the same way before sharing again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Row, desc, select, update
from sqlalchemy.exc import IntegrityError

from clghub.errors import ClghubError
from clghub.http import TransientError
from clghub.store.models import table_of, utcnow
from clghub.store.outputs import DigestPost
from clghub.workflows.delivery import Messenger
from clghub.workflows.digest import EVENT_TYPE, DigestMessage, PreviousDigest

__all__ = ["HISTORY_MARGIN_SECONDS", "DigestPostReport", "previous_digest", "publish_digest"]

POST = table_of(DigestPost)
HISTORY_MARGIN_SECONDS = 300.0
"""The history search starts this long before the attempt began (clock skew)."""


@dataclass
class DigestPostReport:
    period: str
    channel: str
    status: str
    """posted, found (an interrupted run had posted it) or already posted."""
    message_ts: str | None = None
    chart: str = "none"
    """none, shared, found or already shared."""
    file_id: str | None = None


def previous_digest(engine: Engine, channel: str, period: str) -> PreviousDigest | None:
    """The last digest posted to ``channel`` before ``period``."""
    with engine.connect() as connection:
        row = connection.execute(
            select(POST.c.period, POST.c.nrr, POST.c.grr)
            .where(POST.c.channel == channel, POST.c.state == "posted", POST.c.period < period)
            .order_by(desc(POST.c.period))
            .limit(1)
        ).first()
    return None if row is None else PreviousDigest(row.period, row.nrr, row.grr)


def _epoch(moment: datetime | None, fallback: float) -> float:
    return moment.astimezone(UTC).timestamp() if moment is not None else fallback


class _Publisher:
    def __init__(
        self,
        engine: Engine,
        messenger: Messenger,
        message: DigestMessage,
        channel: str,
        clock: Callable[[], float],
    ) -> None:
        self.engine = engine
        self.messenger = messenger
        self.message = message
        self.channel = channel
        self.clock = clock
        self.key = (POST.c.period == message.period) & (POST.c.channel == channel)

    def load(self) -> Row[Any] | None:
        with self.engine.connect() as connection:
            return connection.execute(select(POST).where(self.key)).first()

    def set(self, **values: object) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(POST).where(self.key).values(updated_at=utcnow(), **values))

    def post(self, channel_id: str, since: float) -> str:
        """Post the message; a refusal is noted on the row (still pending) and raised."""
        message = self.message
        try:
            return self.messenger.post(
                channel_id,
                text=message.text,
                blocks=message.blocks,
                event_type=EVENT_TYPE,
                key=message.key,
                since=since,
            )
        except (ClghubError, TransientError) as exc:
            self.set(last_error=str(exc)[:2000])
            raise

    def begin(self, channel_id: str) -> float:
        """Write the pending row before anything is sent; the attempt's start (epoch)."""
        now = utcnow()
        message = self.message
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    POST.insert().values(
                        period=message.period,
                        channel=self.channel,
                        channel_id=channel_id,
                        digest_key=message.key,
                        state="pending",
                        payload_hash=message.payload_hash,
                        chart_state="pending" if message.chart_png is not None else None,
                        chart_name=message.chart_name,
                        nrr=message.nrr,
                        grr=message.grr,
                        attempt_started_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise ClghubError(
                f"the digest {message.period} for {self.channel} was started by another run just now; "
                "run clghub digest again to finish it"
            ) from None
        return now.timestamp()


def publish_digest(
    engine: Engine,
    messenger: Messenger,
    message: DigestMessage,
    channel: str,
    *,
    clock: Callable[[], float] = time.time,
) -> DigestPostReport:
    """Post ``message`` to ``channel`` unless it was posted already (see the module doc)."""
    publisher = _Publisher(engine, messenger, message, channel, clock)
    report = DigestPostReport(message.period, channel, "posted")
    row = publisher.load()
    if row is None:
        channel_id = messenger.channel_id(channel)
        since = publisher.begin(channel_id)
        ts = publisher.post(channel_id, since)
        publisher.set(state="posted", message_ts=ts, posted_at=utcnow(), last_error=None)
        row = publisher.load()
        report.message_ts = ts
    else:
        channel_id = str(
            (row.channel_id if row is not None else None) or messenger.channel_id(channel)
        )
        if row.state == "posted":
            report.status = "already posted"
            report.message_ts = row.message_ts
        else:
            started = _epoch(row.attempt_started_at, clock())
            found = messenger.find_message(
                channel_id,
                event_type=EVENT_TYPE,
                key=str(row.digest_key),
                oldest=started - HISTORY_MARGIN_SECONDS,
            )
            if found is not None:
                report.status = "found"
                ts = found
            else:
                now = utcnow()
                publisher.set(
                    attempt_started_at=now,
                    payload_hash=message.payload_hash,
                    nrr=message.nrr,
                    grr=message.grr,
                    channel_id=channel_id,
                )
                ts = publisher.post(channel_id, now.timestamp())
            publisher.set(state="posted", message_ts=ts, posted_at=utcnow(), last_error=None)
            report.message_ts = ts
        row = publisher.load()
    _share_chart(publisher, channel_id, row, report)
    return report


def _share_chart(
    publisher: _Publisher, channel_id: str, row: Row[Any] | None, report: DigestPostReport
) -> None:
    message = publisher.message
    if row is None:
        return
    state = row.chart_state
    name = row.chart_name or message.chart_name
    if state is None or name is None:
        return
    if state == "posted":
        report.chart = "already shared"
        report.file_id = row.file_id
        return
    since = _epoch(row.attempt_started_at, publisher.clock())
    if state == "sharing":
        found = publisher.messenger.find_file(
            channel_id, filename=name, oldest=since - HISTORY_MARGIN_SECONDS
        )
        if found is not None:
            publisher.set(chart_state="posted", file_id=found[1])
            report.chart, report.file_id = "found", found[1]
            return
    if message.chart_png is None:
        # This run drew no chart (chart switched off, or no bridge yet): nothing to share.
        publisher.set(chart_state=None)
        return
    publisher.set(chart_state="sharing")
    _, file_id = publisher.messenger.share_file(
        channel_id,
        content=message.chart_png,
        filename=name,
        title=message.chart_title,
        alt_text=message.chart_alt,
        comment=f"ARR bridge for the {message.period} digest",
        since=since,
    )
    publisher.set(chart_state="posted", file_id=file_id)
    report.chart, report.file_id = "shared", file_id
