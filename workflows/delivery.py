"""What the digest and the alerts need from Slack and from a CRM, as protocols.

The pipeline hands in :class:`clghub.connectors.slack.SlackMessenger` and
the CRM task creators of ``clghub.connectors.<crm>.writer``; tests may hand
in anything that keeps the same promises.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Protocol

__all__ = ["Messenger", "TaskCreator"]


class Messenger(Protocol):
    posts: int

    def channel_id(self, channel: str) -> str:
        """The id of a channel given by id, #name or name."""
        ...

    def dm_channel(self, email: str) -> str | None:
        """The direct-message channel with the user of ``email``; None if there is none."""
        ...

    def find_message(
        self, channel_id: str, *, event_type: str, key: str, oldest: float
    ) -> str | None:
        """The ts of a message carrying ``key`` in its metadata, posted since ``oldest``."""
        ...

    def find_file(self, channel_id: str, *, filename: str, oldest: float) -> tuple[str, str] | None:
        """(ts, file id) of a share of ``filename`` since ``oldest``."""
        ...

    def post(
        self,
        channel_id: str,
        *,
        text: str,
        blocks: Sequence[dict[str, Any]] | None,
        event_type: str,
        key: str,
        since: float,
        payload: dict[str, Any] | None = None,
    ) -> str:
        """Post once (looking in the channel before any repost); the message's ts."""
        ...

    def share_file(
        self,
        channel_id: str,
        *,
        content: bytes,
        filename: str,
        title: str,
        alt_text: str,
        comment: str,
        since: float,
    ) -> tuple[str | None, str]:
        """Share a file once; (ts if known, file id)."""
        ...


class TaskCreator(Protocol):
    crm: str

    def create_task(
        self,
        *,
        record_id: str,
        key: str,
        subject: str,
        body: str,
        owner_ref: str | None,
        due: date,
    ) -> str:
        """The id of the record's task whose subject ends with ``key``, created if there is none."""
        ...
