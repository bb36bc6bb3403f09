"""The sandbox Slack workspace: its team, bot, channels and one user per person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clghub.sandbox.people import Staff, slack_user_id
from clghub.sandbox.rng import mix
from clghub.sandbox.state import SandboxState

__all__ = [
    "BOT_ID",
    "BOT_USER_ID",
    "CHANNELS",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "TEAM_NAME",
    "channel_id",
    "seed_slack",
]

TEAM_ID = "T0SANDBOX01"
TEAM_NAME = "Northwind Cloud"
TEAM_DOMAIN = "northwind-cloud"
BOT_USER_ID = "U0CLGHUBBOT"
BOT_ID = "B0CLGHUBBOT"
BOT_NAME = "clghub"

CHANNELS: tuple[tuple[str, str], ...] = (
    ("general", "Company-wide announcements and work-based matters"),
    ("leadership", "Weekly numbers and decisions"),
    ("cs-alerts", "Accounts that need attention"),
    ("sales", "Deals and pipeline"),
    ("customer-success", "Customer success team"),
    ("marketing", "Campaigns and launches"),
    ("product", "Product discussions"),
    ("support", "Escalations"),
    ("engineering", "Engineering"),
    ("finance", "Billing and finance"),
    ("random", "Non-work banter"),
    ("announcements", "Read-only announcements"),
)

_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def channel_id(name: str, prefix: str = "C") -> str:
    """A stable id for a channel name (or, with prefix D, a direct-message user id)."""
    number = mix(*name.encode("utf-8"), 0xC4A7)
    digits = ""
    for _ in range(10):
        number, rem = divmod(number, 36)
        digits += _B36[rem]
    return prefix + digits


def seed_slack(state: SandboxState, staff: Staff) -> None:
    """Channels, the bot and one Slack user per person of either CRM (same email)."""
    anchor = state.options.anchor
    created = int(
        (
            datetime(anchor.year, anchor.month, anchor.day, tzinfo=UTC) - timedelta(days=1500)
        ).timestamp()
    )
    db = state.db
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO slack_channel(id, name, is_im, user, topic, created) VALUES (?, ?, 0, NULL, ?, ?)",
        [(channel_id(name), name, topic, created) for name, topic in CHANNELS],
    )
    db.execute(
        "INSERT INTO slack_user(id, email, name, real_name, is_bot) VALUES (?, NULL, ?, ?, 1)",
        (BOT_USER_ID, BOT_NAME, "clghub"),
    )
    db.executemany(
        "INSERT INTO slack_user(id, email, name, real_name, is_bot) VALUES (?, ?, ?, ?, 0)",
        [
            (slack_user_id(person.email), person.email, person.email.split("@")[0], person.name)
            for person in staff.people
        ],
    )
    db.execute("COMMIT")
