"""Alerts: each open play announced once, to its owner or the alerts channel, and as a CRM task.

Every play (one per account and condition until it clears) that has not
been announced (``notified_at`` empty) gets:

- a Slack message: a direct message to the account owner (found by email)
  when ``plays.deliver_to = "owner"``, else, or when the owner is not in
  Slack, a message in ``slack.alerts_channel``;
- with ``plays.crm_tasks``, a task on the account's record in its CRM (the
  first of ``identity.source_priority`` the account is in).

Never twice, also when a run stops between sending and recording: the
``play_delivery`` row is written before the message is posted, with a key
the message carries in its metadata; a later run that finds the row pending
looks for the key in the channel's history before posting. Tasks carry a
key at the end of their subject that every creation looks up first. The
play gets ``notified_at``, ``notification_ref`` and ``crm_task_ref`` once
everything it needs was delivered; a failure is recorded and tried again on
the next run, and never holds back the other plays.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock
from sqlalchemy import Engine, Row, select, update

from clghub.config.models import ClghubConfig
from clghub.connectors.slack.mrkdwn import bold, clip, escape, plain
from clghub.errors import ClghubError
from clghub.http import ApiError, QuotaExhausted, TransientError
from clghub.store.models import Account, Person, SourceLink, table_of, utcnow
from clghub.store.outputs import PlayDelivery
from clghub.store.value import Play
from clghub.workflows.delivery import Messenger, TaskCreator
from clghub.workflows.digest import LinkBuilder
from clghub.workflows.digest_data import AccountLine

__all__ = [
    "CONDITION_TITLES",
    "EVENT_TYPE",
    "AlertsReport",
    "PendingPlay",
    "alert_message",
    "deliver_alerts",
    "pending_plays",
]

log = logging.getLogger(__name__)

EVENT_TYPE = "clghub_play"
HISTORY_MARGIN_SECONDS = 300.0
TASK_DUE_DAYS = 3
CONDITION_TITLES: Mapping[str, str] = {
    "score_drop": "Value score dropped",
    "red_renewal": "Red account renewing soon",
    "no_exec_meeting": "No executive meeting",
    "ttv_overdue": "First value overdue",
}
_ERRORS_KEPT = 10

PLAY = table_of(Play)
DELIVERY = table_of(PlayDelivery)
ACCOUNT = table_of(Account)
PERSON = table_of(Person)
LINK = table_of(SourceLink)


@dataclass(frozen=True)
class PendingPlay:
    play_id: int
    account_id: int
    account_key: str
    """The account's origin record (source:id): the same in every store."""
    account_name: str
    condition: str
    opened_as_of: date
    detail: str | None
    owner_name: str | None
    owner_email: str | None
    links: tuple[tuple[str, str, str | None], ...]
    """(crm, record id, owner ref) of each live CRM record of the account."""

    @property
    def title(self) -> str:
        return CONDITION_TITLES.get(self.condition, self.condition.replace("_", " ").capitalize())

    @property
    def message_key(self) -> str:
        # Natural, not the store's ids: a rebuilt store still finds what was posted.
        return f"play-{self.account_key}-{self.condition}-{self.opened_as_of.isoformat()}"

    @property
    def task_key(self) -> str:
        return f"[clghub {self.condition.replace('_', '-')} {self.opened_as_of.isoformat()}]"


@dataclass
class AlertsReport:
    plays: int = 0
    messages: int = 0
    """Slack messages posted this run."""
    found: int = 0
    """Messages an interrupted run had posted, found in the channel instead of posted again."""
    tasks: int = 0
    notified: int = 0
    failed: int = 0
    to_owner: int = 0
    to_channel: int = 0
    errors: list[str] = field(default_factory=list)
    preview: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "plays": self.plays,
            "messages": self.messages,
            "found": self.found,
            "tasks": self.tasks,
            "notified": self.notified,
            "failed": self.failed,
        }

    def error(self, text: str) -> None:
        self.failed += 1
        if len(self.errors) < _ERRORS_KEPT:
            self.errors.append(text)


def pending_plays(engine: Engine) -> list[PendingPlay]:
    """Open plays not announced yet, oldest first."""
    owner = PERSON.alias("alert_owner")
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                PLAY.c.id,
                PLAY.c.account_id,
                ACCOUNT.c.origin_source,
                ACCOUNT.c.origin_source_id,
                ACCOUNT.c.name,
                PLAY.c.condition,
                PLAY.c.opened_as_of,
                PLAY.c.detail,
                owner.c.name.label("owner_name"),
                owner.c.email.label("owner_email"),
            )
            .select_from(
                PLAY.join(ACCOUNT, ACCOUNT.c.id == PLAY.c.account_id).outerjoin(
                    owner, owner.c.id == ACCOUNT.c.owner_id
                )
            )
            .where(
                PLAY.c.cleared_at.is_(None),
                PLAY.c.notified_at.is_(None),
                ACCOUNT.c.is_deleted.is_(False),
            )
            # Oldest first, then by natural keys: the same plays group the same way
            # in any store, whatever order they were computed in.
            .order_by(
                PLAY.c.opened_as_of,
                ACCOUNT.c.origin_source,
                ACCOUNT.c.origin_source_id,
                PLAY.c.condition,
            )
        ).all()
        account_ids = sorted({row.account_id for row in rows})
        links: dict[int, list[tuple[str, str, str | None]]] = {}
        for start in range(0, len(account_ids), 500):
            chunk = account_ids[start : start + 500]
            for account_id, source, source_id, owner_ref in connection.execute(
                select(LINK.c.account_id, LINK.c.source, LINK.c.source_id, LINK.c.owner_ref)
                .where(
                    LINK.c.account_id.in_(chunk),
                    LINK.c.object == "account",
                    LINK.c.is_deleted.is_(False),
                    LINK.c.source.in_(("salesforce", "hubspot")),
                )
                .order_by(LINK.c.account_id, LINK.c.source, LINK.c.source_id)
            ):
                links.setdefault(account_id, []).append((source, source_id, owner_ref))
    return [
        PendingPlay(
            play_id=row.id,
            account_id=row.account_id,
            account_key=f"{row.origin_source}:{row.origin_source_id}",
            account_name=row.name,
            condition=row.condition,
            opened_as_of=row.opened_as_of,
            detail=row.detail,
            owner_name=row.owner_name,
            owner_email=row.owner_email,
            links=tuple(links.get(row.account_id, ())),
        )
        for row in rows
    ]


def alert_message(
    play: PendingPlay, links: LinkBuilder, *, note: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of a play's Slack message; CRM text is escaped."""
    line = AccountLine(
        play.account_id, play.account_name, tuple((crm, rid) for crm, rid, _ in play.links)
    )
    detail = escape(plain(play.detail or "", 2500))
    body = f"{bold(escape(play.title))}: {links.account(line)}" + (f"\n{detail}" if detail else "")
    facts = [f"opened {play.opened_as_of.isoformat()}"]
    if play.owner_name:
        facts.insert(0, f"owner {escape(plain(play.owner_name, 200))}")
    if note:
        facts.append(escape(note))
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=clip(body, 3000), verbatim=True)).to_dict(),
        ContextBlock(
            elements=[MarkdownTextObject(text=clip(" · ".join(facts), 3000), verbatim=True)]
        ).to_dict(),
    ]
    text = clip(
        escape(plain(f"{play.title}: {play.account_name}. {play.detail or ''}", 2900)), 3000
    )
    return text, blocks


def _task_target(
    play: PendingPlay, config: ClghubConfig, tasks: Mapping[str, TaskCreator]
) -> tuple[str, str, str | None] | None:
    for crm in config.identity.source_priority:
        if crm not in tasks:
            continue
        for link_crm, record_id, owner_ref in play.links:
            if link_crm == crm:
                return crm, record_id, owner_ref
    return None


class _Delivery:
    """One play's ``play_delivery`` row."""

    def __init__(self, engine: Engine, play: PendingPlay) -> None:
        self.engine = engine
        self.play = play
        self.row: Row[Any] | None = None
        self.reload()

    def reload(self) -> None:
        with self.engine.connect() as connection:
            self.row = connection.execute(
                select(DELIVERY).where(DELIVERY.c.play_id == self.play.play_id)
            ).first()

    def value(self, column: str) -> Any:
        return None if self.row is None else self.row._mapping[column]

    def save(self, **values: Any) -> None:
        values["updated_at"] = utcnow()
        with self.engine.begin() as connection:
            if self.row is None:
                connection.execute(
                    DELIVERY.insert().values(
                        {"play_id": self.play.play_id, "message_key": self.play.message_key, **values}
                    )
                )
            else:
                connection.execute(
                    update(DELIVERY).where(DELIVERY.c.play_id == self.play.play_id).values(**values)
                )
        self.reload()

    def failed(self, error: str, **values: Any) -> None:
        self.save(last_error=error[:2000], attempts=(self.value("attempts") or 0) + 1, **values)


def _destination(
    play: PendingPlay, config: ClghubConfig, messenger: Messenger, report: AlertsReport
) -> tuple[str, str | None]:
    """(channel id, a note for the message) for a play not yet tried."""
    if config.plays.deliver_to == "owner":
        if play.owner_email:
            dm = messenger.dm_channel(play.owner_email)
            if dm is not None:
                report.to_owner += 1
                return dm, None
            note = f"the owner ({play.owner_email}) was not found in Slack"
        else:
            note = "the account has no owner with an email"
        report.to_channel += 1
        return messenger.channel_id(config.slack.alerts_channel), note
    report.to_channel += 1
    return messenger.channel_id(config.slack.alerts_channel), None


def _send_message(
    play: PendingPlay,
    delivery: _Delivery,
    config: ClghubConfig,
    messenger: Messenger,
    links: LinkBuilder,
    report: AlertsReport,
    clock: Callable[[], float],
    destination: tuple[str, str | None] | None = None,
) -> bool:
    """Post the play's message unless it was posted; True once it is in Slack."""
    state = delivery.value("message_state")
    if state == "sent":
        return True
    channel = delivery.value("channel")
    if delivery.row is not None and channel:
        started = delivery.value("message_started_at")
        oldest = (
            started.astimezone(UTC).timestamp() if started else clock()
        ) - HISTORY_MARGIN_SECONDS
        # A grouped message carries its group's key (stored in the delivery row).
        key = delivery.value("message_key") or play.message_key
        found = messenger.find_message(channel, event_type=EVENT_TYPE, key=key, oldest=oldest)
        if found is not None:
            delivery.save(message_state="sent", message_ts=found, last_error=None)
            report.found += 1
            return True
        note = None
    else:
        channel, note = destination or _destination(play, config, messenger, report)
    now = utcnow()
    delivery.save(channel=channel, message_state="pending", message_started_at=now)
    text, blocks = alert_message(play, links, note=note)
    try:
        ts = messenger.post(
            channel,
            text=text,
            blocks=blocks,
            event_type=EVENT_TYPE,
            key=play.message_key,
            since=now.timestamp(),
            payload={"play_id": play.play_id, "condition": play.condition},
        )
    except ClghubError as exc:  # Slack refused (SlackRefused): try again next run
        delivery.failed(str(exc), message_state="failed")
        report.error(f"play {play.play_id} ({play.account_name}): {exc}")
        return False
    delivery.save(message_state="sent", message_ts=ts, last_error=None)
    report.messages += 1
    return True


GROUP_SIZE = 20


def group_message(
    plays: list[PendingPlay], links: LinkBuilder, *, note: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """One message announcing several plays (a backlog); CRM text is escaped."""
    blocks: list[dict[str, Any]] = [
        SectionBlock(
            text=MarkdownTextObject(text=bold(f"{len(plays)} new plays"), verbatim=True)
        ).to_dict()
    ]
    for play in plays:
        line = AccountLine(
            play.account_id, play.account_name, tuple((crm, rid) for crm, rid, _ in play.links)
        )
        detail = escape(plain(play.detail or "", 400))
        body = f"{bold(escape(play.title))}: {links.account(line)}" + (
            f"\n{detail}" if detail else ""
        )
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=clip(body, 3000), verbatim=True)).to_dict()
        )
    if note:
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=clip(escape(note), 3000), verbatim=True)]
            ).to_dict()
        )
    text = clip(
        escape(
            plain(
                f"{len(plays)} new plays: "
                + "; ".join(f"{p.title}: {p.account_name}" for p in plays),
                2900,
            )
        ),
        3000,
    )
    return text, blocks


def _group_key(plays: list[PendingPlay]) -> str:
    keys = sorted(p.message_key for p in plays)
    digest = hashlib.sha256(",".join(keys).encode()).hexdigest()[:24]
    return f"plays-{digest}"


def _send_groups(
    plays: list[PendingPlay],
    deliveries: dict[int, _Delivery],
    config: ClghubConfig,
    messenger: Messenger,
    links: LinkBuilder,
    report: AlertsReport,
) -> tuple[set[int], dict[int, tuple[str, str | None]]]:
    """Announce a backlog: recipients with many new plays get grouped messages.

    Returns the ids of the plays this handled (sent or failed) and the
    destination found for each of the others, which go out one message each. Each play's delivery row records the group's key
    before the post, so a crash between posting and recording is found in
    the channel's history on the next run, exactly as for single messages.
    """
    fresh: dict[str, list[tuple[PendingPlay, str | None]]] = {}
    destinations: dict[int, tuple[str, str | None]] = {}
    for play in plays:
        delivery = deliveries[play.play_id]
        if delivery.row is not None and delivery.value("channel"):
            continue  # tried before: the single-message path knows how to recover it
        channel, note = _destination(play, config, messenger, report)
        fresh.setdefault(channel, []).append((play, note))
    handled: set[int] = set()
    for channel, entries in fresh.items():
        if len(entries) <= config.plays.group_above:
            for play, note in entries:
                destinations[play.play_id] = (channel, note)
            continue
        for start in range(0, len(entries), GROUP_SIZE):
            group = [play for play, _ in entries[start : start + GROUP_SIZE]]
            notes = {note for _, note in entries[start : start + GROUP_SIZE] if note}
            key = _group_key(group)
            now = utcnow()
            for play in group:
                deliveries[play.play_id].save(
                    channel=channel,
                    message_state="pending",
                    message_started_at=now,
                    message_key=key,
                )
            text, blocks = group_message(group, links, note="; ".join(sorted(notes)) or None)
            try:
                ts = messenger.post(
                    channel,
                    text=text,
                    blocks=blocks,
                    event_type=EVENT_TYPE,
                    key=key,
                    since=now.timestamp(),
                    payload={"plays": [p.play_id for p in group]},
                )
            except ClghubError as exc:
                for play in group:
                    deliveries[play.play_id].failed(str(exc), message_state="failed")
                    report.error(f"play {play.play_id} ({play.account_name}): {exc}")
                handled.update(p.play_id for p in group)
                continue
            for play in group:
                deliveries[play.play_id].save(message_state="sent", message_ts=ts, last_error=None)
            report.messages += 1
            handled.update(p.play_id for p in group)
    return handled, destinations


def _create_task(
    play: PendingPlay,
    delivery: _Delivery,
    config: ClghubConfig,
    tasks: Mapping[str, TaskCreator],
    report: AlertsReport,
    today: date,
) -> bool:
    """Create the play's CRM task unless it exists; True once it does (or none is possible)."""
    if delivery.value("task_state") == "created":
        return True
    target = _task_target(play, config, tasks)
    if target is None:
        return True  # the account is in no CRM that takes tasks: nothing to create
    crm, record_id, owner_ref = target
    delivery.save(
        task_key=play.task_key,
        task_crm=crm,
        task_record_id=record_id,
        task_state="pending",
        task_started_at=utcnow(),
    )
    body = (play.detail or play.title) + f"\n\nOpened by clghub on {play.opened_as_of.isoformat()}."
    try:
        task_id = tasks[crm].create_task(
            record_id=record_id,
            key=play.task_key,
            subject=f"{play.title}: {play.account_name}",
            body=body,
            owner_ref=owner_ref,
            due=today + timedelta(days=TASK_DUE_DAYS),
        )
    except (ApiError, ClghubError, TransientError) as exc:
        if isinstance(exc, QuotaExhausted):
            raise
        delivery.failed(str(exc), task_state="failed")
        report.error(f"play {play.play_id} ({play.account_name}) task in {crm}: {exc}")
        return False
    delivery.save(task_state="created", task_ref=task_id, last_error=None)
    report.tasks += 1
    return True


def deliver_alerts(
    engine: Engine,
    config: ClghubConfig,
    *,
    messenger: Messenger | None,
    tasks: Mapping[str, TaskCreator],
    links: LinkBuilder,
    clock: Callable[[], float] = time.time,
) -> AlertsReport:
    """Announce every open play not announced yet (see the module doc)."""
    report = AlertsReport()
    plays = pending_plays(engine)
    report.plays = len(plays)
    today = datetime.fromtimestamp(clock(), UTC).date()
    deliveries = {play.play_id: _Delivery(engine, play) for play in plays}
    grouped: set[int] = set()
    destinations: dict[int, tuple[str, str | None]] = {}
    if messenger is not None:
        grouped, destinations = _send_groups(plays, deliveries, config, messenger, links, report)
    for play in plays:
        delivery = deliveries[play.play_id]
        try:
            if play.play_id in grouped and delivery.value("message_state") != "sent":
                continue  # the grouped post failed: recorded, tried again next run
            sent = messenger is None or _send_message(
                play,
                delivery,
                config,
                messenger,
                links,
                report,
                clock,
                destinations.get(play.play_id),
            )
            tasked = not config.plays.crm_tasks or _create_task(
                play, delivery, config, tasks, report, today
            )
        except TransientError as exc:
            # Slack or the CRM kept failing: stop here; every delivery so far is recorded.
            report.error(f"play {play.play_id} ({play.account_name}): {exc}")
            raise
        if not (sent and tasked):
            continue
        values: dict[str, Any] = {"notified_at": utcnow()}
        if messenger is not None:
            values["notification_ref"] = (
                f"slack:{delivery.value('channel')}/{delivery.value('message_ts')}"[:128]
            )
        if delivery.value("task_ref"):
            values["crm_task_ref"] = f"{delivery.value('task_crm')}:{delivery.value('task_ref')}"[
                :128
            ]
        with engine.begin() as connection:
            connection.execute(update(PLAY).where(PLAY.c.id == play.play_id).values(**values))
        report.notified += 1
    return report
