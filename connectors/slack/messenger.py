"""Posting to Slack at most once: a key in every message, a look before every repost.

Each message carries a key in its metadata (``event_type`` + ``event_payload.key``),
each shared file a file name unique to it. When a post's answer is lost (a
dropped connection, a timeout, a 5xx), or a run stopped between posting and
recording, the channel's recent history says whether it arrived; only if
it did not is it posted again. Messages to one channel are paced at one a
second (Slack's limit) with a :class:`~clghub.http.Pacer` per channel.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from clghub.config.models import SlackConfig
from clghub.config.secrets import REDACTOR
from clghub.connectors.slack.client import TRANSIENT_ERRORS, web_client
from clghub.errors import ClghubError
from clghub.http import Pacer, TransientError

__all__ = ["MESSAGE_INTERVAL", "ChannelPacer", "SlackMessenger", "SlackRefused"]

log = logging.getLogger(__name__)

MESSAGE_INTERVAL = 1.0  # Slack: about one message a second per channel
_ID_PREFIXES = ("C", "G", "D")
_HISTORY_PAGE = 200
_HISTORY_PAGES = 25  # at most 5,000 recent messages are searched for a key
_LIST_PAGE = 1000


class ChannelPacer(Pacer):
    """One message a second to a channel, counted from when Slack *answered* the last one.

    Slack times a message when it handles it, which can be a little after it was
    sent; counting from the answer keeps the gap it sees at a second or more.
    """

    def answered(self) -> None:
        with self._lock:
            if self._sent:
                self._sent[-1] = max(self._sent[-1], self._clock())


class SlackRefused(ClghubError):
    """Slack refused a call for a reason a retry will not fix (``error`` says which)."""

    def __init__(self, method: str, error: str, detail: str = "") -> None:
        hint = _HINTS.get(error, "")
        text = f"Slack {method} failed: {error}" + (f" ({detail})" if detail else "")
        super().__init__(REDACTOR.redact(text + (f"; {hint}" if hint else "")))
        self.error = error


_HINTS = {
    "not_in_channel": "invite the clghub bot to the channel (/invite @clghub)",
    "channel_not_found": "check the channel name, and invite the bot if the channel is private",
    "missing_scope": "add the missing bot scope to the Slack app and reinstall it",
    "invalid_auth": "check slack.token (a bot token, xoxb-...)",
    "not_authed": "check slack.token (a bot token, xoxb-...)",
    "account_inactive": "the bot token was revoked; reinstall the Slack app",
}


def _looks_like_id(channel: str) -> bool:
    return (
        len(channel) >= 9
        and channel[0] in _ID_PREFIXES
        and channel[1:].isalnum()
        and channel.isupper()
    )


class SlackMessenger:
    """Channels, direct messages, and posting each message and file exactly once."""

    def __init__(
        self,
        config: SlackConfig,
        *,
        reader: WebClient | None = None,
        poster: WebClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.reader = reader or web_client(config, idempotent=True)
        self.poster = poster or web_client(config, idempotent=False)
        self._sleep = sleep
        self._clock = clock
        self._pacers: dict[str, ChannelPacer] = {}
        self._lock = threading.Lock()
        self._channels: dict[str, str] = {}
        self._dms: dict[str, str | None] = {}
        self.posts = 0

    # -- calls ---------------------------------------------------------------------------

    def _read(self, method: str, fn: Callable[[WebClient], Any]) -> Any:
        try:
            return fn(self.reader)
        except SlackApiError as exc:
            response = exc.response
            if response.status_code >= 500 or response.status_code == 429:
                raise TransientError(
                    f"Slack {method} answered {response.status_code}",
                    kind=str(response.status_code),
                ) from None
            raise SlackRefused(
                method, str(response.get("error") or response.status_code), _detail(response)
            ) from None
        except TRANSIENT_ERRORS as exc:
            raise TransientError(
                f"Slack {method}: {type(exc).__name__}", kind="connection"
            ) from None

    def pacer(self, channel_id: str) -> ChannelPacer:
        with self._lock:
            pacer = self._pacers.get(channel_id)
            if pacer is None:
                pacer = ChannelPacer(1, MESSAGE_INTERVAL, margin=1.0, sleep=self._sleep)
                self._pacers[channel_id] = pacer
            return pacer

    # -- channels ------------------------------------------------------------------------

    def check(self) -> str:
        """Who the token is (auth.test), for ``clghub check``."""
        body = self._read("auth.test", lambda c: c.auth_test())
        return f"{body.get('user')} in {body.get('team')}"

    def channel_id(self, channel: str) -> str:
        """The id of a channel given by id, ``#name`` or name."""
        channel = channel.strip()
        if _looks_like_id(channel):
            return channel
        name = channel.removeprefix("#")
        with self._lock:
            known = self._channels.get(name)
        if known is not None:
            return known
        cursor: str | None = None
        while True:
            page = self._read("conversations.list", _list_page(cursor))
            for item in page.get("channels") or []:
                if item.get("name") == name:
                    with self._lock:
                        self._channels[name] = str(item["id"])
                    return str(item["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        raise SlackRefused(
            "conversations.list", "channel_not_found", f"no channel named #{name} the bot can see"
        )

    def dm_channel(self, email: str) -> str | None:
        """The direct-message channel with the Slack user of ``email`` (None: no such user)."""
        key = email.strip().lower()
        with self._lock:
            if key in self._dms:
                return self._dms[key]
        try:
            user = self._read("users.lookupByEmail", lambda c: c.users_lookupByEmail(email=key))
        except SlackRefused as exc:
            if exc.error != "users_not_found":
                raise
            found: str | None = None
        else:
            user_id = str(user["user"]["id"])
            opened = self._read("conversations.open", lambda c: c.conversations_open(users=user_id))
            found = str(opened["channel"]["id"])
        with self._lock:
            self._dms[key] = found
        return found

    # -- finding what was posted ------------------------------------------------------------

    def _history(self, channel_id: str, oldest: float) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        for _ in range(_HISTORY_PAGES):
            page = self._read("conversations.history", _history_page(channel_id, oldest, cursor))
            yield from page.get("messages") or []
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or not cursor:
                return

    def find_message(
        self, channel_id: str, *, event_type: str, key: str, oldest: float
    ) -> str | None:
        """The ts of the message carrying ``key`` posted since ``oldest`` (epoch seconds)."""
        for message in self._history(channel_id, oldest):
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == event_type and payload.get("key") == key:
                return str(message["ts"])
        return None

    def find_file(self, channel_id: str, *, filename: str, oldest: float) -> tuple[str, str] | None:
        """``(message ts, file id)`` of the share of ``filename`` since ``oldest``."""
        for message in self._history(channel_id, oldest):
            for shared in message.get("files") or []:
                if shared.get("name") == filename:
                    return str(message["ts"]), str(shared["id"])
        return None

    # -- posting -------------------------------------------------------------------------------

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
        """Post once; the ts of the message. ``since``: when this post was first attempted."""
        metadata = {"event_type": event_type, "event_payload": {"key": key, **(payload or {})}}
        attempts = self.config.max_retries + 1
        for attempt in range(1, attempts + 1):
            pacer = self.pacer(channel_id)
            pacer.acquire()
            try:
                self.posts += 1
                response = self.poster.chat_postMessage(
                    channel=channel_id,
                    text=text,
                    blocks=list(blocks) if blocks is not None else None,
                    metadata=metadata,
                    unfurl_links=False,
                    unfurl_media=False,
                    link_names=False,
                    parse="none",
                )
                pacer.answered()
                return str(response["ts"])
            except SlackApiError as exc:
                pacer.answered()
                status = exc.response.status_code
                if status < 500:
                    raise SlackRefused(
                        "chat.postMessage",
                        str(exc.response.get("error") or status),
                        _detail(exc.response),
                    ) from None
                problem = f"answered {status}"
            except TRANSIENT_ERRORS as exc:
                pacer.answered()
                problem = type(exc).__name__
            log.info(
                "Slack post to %s: %s (attempt %d of %d); checking whether it arrived",
                channel_id,
                problem,
                attempt,
                attempts,
            )
            self._sleep(min(self.config.max_retry_wait_seconds, 0.5 * 2 ** (attempt - 1)))
            ts = self.find_message(channel_id, event_type=event_type, key=key, oldest=since - 60)
            if ts is not None:
                return ts
        raise TransientError(
            f"Slack chat.postMessage to {channel_id} kept failing; the next run tries again",
            kind="connection",
        )

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
        """Share a file in the channel once (the external upload flow); ``(ts, file id)``."""
        attempts = self.config.max_retries + 1
        for attempt in range(1, attempts + 1):
            pacer = self.pacer(channel_id)
            pacer.acquire()
            try:
                self.posts += 1
                response = self.poster.files_upload_v2(
                    channel=channel_id,
                    content=content,
                    filename=filename,
                    title=title,
                    alt_txt=alt_text,
                    initial_comment=comment,
                )
                pacer.answered()
                file = response.get("file") or {}
                return None, str(file.get("id"))
            except SlackApiError as exc:
                pacer.answered()
                status = exc.response.status_code
                error = str(exc.response.get("error") or status)
                if status < 500 and error != "file_upload_already_completed":
                    raise SlackRefused(
                        "files.completeUploadExternal", error, _detail(exc.response)
                    ) from None
                problem = error
            except _SHARE_ERRORS as exc:
                pacer.answered()
                problem = type(exc).__name__
            log.info(
                "Slack file share in %s: %s (attempt %d of %d); checking whether it arrived",
                channel_id,
                problem,
                attempt,
                attempts,
            )
            self._sleep(min(self.config.max_retry_wait_seconds, 0.5 * 2 ** (attempt - 1)))
            found = self.find_file(channel_id, filename=filename, oldest=since - 60)
            if found is not None:
                return found
        raise TransientError(
            f"Slack file share to {channel_id} kept failing; the next run tries again",
            kind="connection",
        )


_SHARE_ERRORS: tuple[type[Exception], ...] = (SlackRequestError, *TRANSIENT_ERRORS)


def _list_page(cursor: str | None) -> Callable[[WebClient], Any]:
    def call(client: WebClient) -> Any:
        return client.conversations_list(
            types="public_channel,private_channel",
            exclude_archived=True,
            limit=_LIST_PAGE,
            cursor=cursor,
        )

    return call


def _history_page(channel_id: str, oldest: float, cursor: str | None) -> Callable[[WebClient], Any]:
    def call(client: WebClient) -> Any:
        return client.conversations_history(
            channel=channel_id,
            oldest=f"{max(0.0, oldest):.6f}",
            limit=_HISTORY_PAGE,
            include_all_metadata=True,
            cursor=cursor,
        )

    return call


def _detail(response: Any) -> str:
    try:
        messages = (
            (response.get("response_metadata") or {}).get("messages")
            or response.get("errors")
            or []
        )
    except AttributeError:
        return ""
    return "; ".join(str(m) for m in messages)[:500]
