"""The Slack Web API, as much of it as clghub's digest and alerts use.

slack-sdk's ``WebClient(base_url="http://host:port/api/")`` works against it
unchanged: methods under ``/api/<method>`` take query, form or JSON
parameters and answer Slack's ``{"ok": ...}`` JSON with HTTP 200 (429 with
Retry-After when rate limited). Everything posted is kept (the
``slack_message`` table), so tests read it back through
``conversations.history``; ``GET /_sandbox/slack/messages`` dumps it all.

Limits kept: one message a second per channel (``slack_message_interval``),
Block Kit limits (clghub.sandbox.apis.slack_blocks), message metadata.
Files use the external upload flow: files.getUploadURLExternal, a POST of
the bytes to the returned URL, files.completeUploadExternal.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from clghub.sandbox.apis.slack_blocks import (
    MAX_MESSAGE_TEXT,
    BlockProblem,
    parse_blocks,
    validate_blocks,
)
from clghub.sandbox.people import slack_user_id
from clghub.sandbox.slack_directory import (
    BOT_ID,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    channel_id,
)
from clghub.sandbox.state import SandboxState
from clghub.sandbox.wire import bearer_token, json_response

__all__ = ["APP_ID", "routes"]

APP_ID = "A0CLGHUBAPP"
_HISTORY_LIMIT = 999
_LIST_LIMIT = 1000


class SlackError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


Params = dict[str, Any]
Handler = Callable[[Request, Params], Awaitable[Params]]


def _ok(**fields: Any) -> Params:
    return {"ok": True, **fields}


def _int_param(params: Params, name: str, default: int, *, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise SlackError(
            "invalid_arguments",
            response_metadata={"messages": [f"[ERROR] {name} must be an integer"]},
        ) from None
    return max(low, min(high, value))


def _bool_param(params: Params, name: str) -> bool:
    raw = params.get(name)
    if isinstance(raw, bool):
        return raw
    return str(raw).lower() in ("1", "true", "yes")


def _ts_value(ts: str) -> Decimal:
    return Decimal(ts)


def _cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _cursor_value(cursor: str, prefix: str) -> str:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None
    if not text.startswith(prefix):
        raise SlackError("invalid_cursor")
    return text[len(prefix) :]


class _Slack:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.last_post: dict[str, float] = {}
        self.last_ts: dict[str, Decimal] = {}

    def reset(self) -> None:
        self.last_post.clear()
        self.last_ts.clear()

    # -- plumbing ------------------------------------------------------------

    def method(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                params = await _params(request)
                token = bearer_token(request) or params.pop("token", None)
                if not token:
                    raise SlackError("not_authed")
                if not self.state.tokens.valid("slack", str(token)):
                    raise SlackError("invalid_auth")
                body = await handler(request, params)
            except _RateLimited as limited:
                return json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(limited.seconds)},
                )
            except SlackError as exc:
                body = {"ok": False, "error": exc.error, **exc.extra}
            return json_response(body)

        return endpoint

    # -- identity ------------------------------------------------------------

    async def auth_test(self, request: Request, params: Params) -> Params:
        return _ok(
            url=f"https://{TEAM_DOMAIN}.slack.com/",
            team=TEAM_NAME,
            user="clghub",
            team_id=TEAM_ID,
            user_id=BOT_USER_ID,
            bot_id=BOT_ID,
            is_enterprise_install=False,
        )

    async def users_lookup_by_email(self, request: Request, params: Params) -> Params:
        email = str(params.get("email") or "").strip()
        if not email:
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: email"]},
            )
        row = self.state.db.execute(
            "SELECT id, email, name, real_name, is_bot FROM slack_user WHERE lower(email) = lower(?)",
            (email,),
        ).fetchone()
        if row is None:
            row = self._user_from_crm(email)
        if row is None:
            raise SlackError("users_not_found")
        return _ok(user=_user_object(row))

    def _user_from_crm(self, email: str) -> Any:
        """Someone added to a CRM since generation gets their Slack user now."""
        db = self.state.db
        found = db.execute(
            'SELECT "Email", "FirstName", "LastName" FROM "sf_User" WHERE lower("Email") = lower(?) '
            'UNION ALL SELECT email, "firstName", "lastName" FROM hs_owners WHERE lower(email) = lower(?) LIMIT 1',
            (email, email),
        ).fetchone()
        if found is None:
            return None
        address = str(found[0])
        user_id = slack_user_id(address)
        real_name = " ".join(part for part in (found[1], found[2]) if part)
        db.execute(
            "INSERT OR IGNORE INTO slack_user(id, email, name, real_name, is_bot) VALUES (?, ?, ?, ?, 0)",
            (user_id, address, address.split("@")[0], real_name or address),
        )
        return db.execute(
            "SELECT id, email, name, real_name, is_bot FROM slack_user WHERE id = ?", (user_id,)
        ).fetchone()

    # -- conversations -------------------------------------------------------

    async def conversations_list(self, request: Request, params: Params) -> Params:
        types = {
            t.strip() for t in str(params.get("types") or "public_channel").split(",") if t.strip()
        }
        limit = _int_param(params, "limit", 100, low=1, high=_LIST_LIMIT)
        after = ""
        if params.get("cursor"):
            after = _cursor_value(str(params["cursor"]), "next_id:")
        wanted: list[str] = []
        if "public_channel" in types:
            wanted.append("is_im = 0")
        if "im" in types:
            wanted.append("is_im = 1")
        if not wanted:
            return _ok(channels=[], response_metadata={"next_cursor": ""})
        rows = self.state.db.execute(
            f"SELECT id, name, is_im, user, topic, created FROM slack_channel WHERE ({' OR '.join(wanted)}) "
            "AND id > ? ORDER BY id LIMIT ?",
            (after, limit + 1),
        ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = base64.b64encode(f"next_id:{rows[-1][0]}".encode()).decode() if more else ""
        return _ok(
            channels=[_channel_object(row) for row in rows],
            response_metadata={"next_cursor": next_cursor},
        )

    def _channel(self, reference: str) -> str:
        """The channel id for an id, a #name or a name, or a user id (their DM)."""
        reference = reference.strip()
        if not reference:
            raise SlackError("channel_not_found")
        db = self.state.db
        if reference.startswith("U"):
            if db.execute("SELECT 1 FROM slack_user WHERE id = ?", (reference,)).fetchone() is None:
                raise SlackError("channel_not_found")
            return self._open_im(reference)[0]
        row = db.execute(
            "SELECT id FROM slack_channel WHERE id = ? OR (is_im = 0 AND name = ?)",
            (reference, reference.removeprefix("#")),
        ).fetchone()
        if row is None:
            raise SlackError("channel_not_found")
        return str(row[0])

    def _open_im(self, user: str) -> tuple[str, bool]:
        db = self.state.db
        row = db.execute(
            "SELECT id FROM slack_channel WHERE is_im = 1 AND user = ?", (user,)
        ).fetchone()
        if row is not None:
            return str(row[0]), True
        im_id = channel_id(user, prefix="D")
        created = int(self.state.now().timestamp())
        db.execute(
            "INSERT INTO slack_channel(id, name, is_im, user, topic, created) VALUES (?, NULL, 1, ?, '', ?)",
            (im_id, user, created),
        )
        return im_id, False

    async def conversations_open(self, request: Request, params: Params) -> Params:
        users = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not users and params.get("channel"):
            return _ok(channel={"id": self._channel(str(params["channel"]))})
        if len(users) != 1:
            raise SlackError("not_enough_users" if not users else "too_many_users")
        user = users[0]
        if (
            self.state.db.execute("SELECT 1 FROM slack_user WHERE id = ?", (user,)).fetchone()
            is None
        ):
            raise SlackError("user_not_found")
        im_id, existed = self._open_im(user)
        body = _ok(channel={"id": im_id})
        if existed:
            body.update(no_op=True, already_open=True)
        if _bool_param(params, "return_im"):
            row = self.state.db.execute(
                "SELECT id, name, is_im, user, topic, created FROM slack_channel WHERE id = ?",
                (im_id,),
            ).fetchone()
            body["channel"] = _channel_object(row)
        return body

    async def conversations_history(self, request: Request, params: Params) -> Params:
        channel = str(params.get("channel") or "")
        db = self.state.db
        if db.execute("SELECT 1 FROM slack_channel WHERE id = ?", (channel,)).fetchone() is None:
            raise SlackError("channel_not_found")
        limit = _int_param(params, "limit", 100, low=1, high=_HISTORY_LIMIT)
        inclusive = _bool_param(params, "inclusive")
        include_metadata = _bool_param(params, "include_all_metadata")
        oldest = _ts_value(str(params.get("oldest") or "0"))
        latest_raw = params.get("latest")
        latest = _ts_value(str(latest_raw)) if latest_raw not in (None, "") else None
        if params.get("cursor"):
            latest = _ts_value(_cursor_value(str(params["cursor"]), "next_ts:"))
            inclusive_latest = False
        else:
            inclusive_latest = inclusive
        rows = db.execute(
            "SELECT ts, user, text, blocks, metadata, files, thread_ts FROM slack_message WHERE channel = ? "
            "AND (thread_ts IS NULL OR thread_ts = ts) ORDER BY seq DESC",
            (channel,),
        ).fetchall()
        messages: list[Params] = []
        more = False
        for row in rows:
            ts = _ts_value(row[0])
            if latest is not None and (ts > latest or (ts == latest and not inclusive_latest)):
                continue
            if ts < oldest or (ts == oldest and not inclusive):
                break
            if len(messages) == limit:
                more = True
                break
            messages.append(_message_object(row, include_metadata))
        next_cursor = _cursor(messages[-1]["ts"]) if more else ""
        body = _ok(
            messages=messages,
            has_more=more,
            pin_count=0,
            response_metadata={"next_cursor": next_cursor},
        )
        return body

    # -- posting -------------------------------------------------------------

    async def chat_post_message(self, request: Request, params: Params) -> Params:
        channel = self._channel(str(params.get("channel") or ""))
        text = params.get("text")
        text = "" if text is None else str(text)
        try:
            blocks = parse_blocks(params.get("blocks"))
            if blocks is not None:
                validate_blocks(blocks)
        except BlockProblem as problem:
            raise SlackError(
                problem.error,
                errors=problem.details,
                response_metadata={"messages": [f"[ERROR] {detail}" for detail in problem.details]},
            ) from None
        if not text and not blocks and not params.get("attachments"):
            raise SlackError("no_text")
        if len(text) > MAX_MESSAGE_TEXT:
            raise SlackError("msg_too_long")
        metadata = _metadata(params.get("metadata"))
        thread_ts = params.get("thread_ts") or None
        self._throttle(channel)
        ts = self._store(
            channel, text, blocks, metadata, None, str(thread_ts) if thread_ts else None
        )
        message: Params = {
            "type": "message",
            "text": text,
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "ts": ts,
        }
        if blocks is not None:
            message["blocks"] = blocks
        if metadata is not None:
            message["metadata"] = metadata
        return _ok(channel=channel, ts=ts, message=message)

    def _throttle(self, channel: str) -> None:
        interval = self.state.options.slack_message_interval
        now = self.state.now().timestamp()
        last = self.last_post.get(channel)
        if last is not None and now - last < interval:
            raise _RateLimited(max(1, math.ceil(interval - (now - last))))
        self.last_post[channel] = now

    def _store(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        metadata: Params | None,
        files: list[Params] | None,
        thread_ts: str | None,
    ) -> str:
        moment = Decimal(self.state.now().timestamp()).quantize(Decimal("0.000001"))
        last = self.last_ts.get(channel)
        if last is None:
            row = self.state.db.execute(
                "SELECT ts FROM slack_message WHERE channel = ? ORDER BY seq DESC LIMIT 1",
                (channel,),
            ).fetchone()
            last = Decimal(row[0]) if row else None
        if last is not None and moment <= last:
            moment = last + Decimal("0.000001")
        self.last_ts[channel] = moment
        ts = f"{moment:.6f}"
        self.state.db.execute(
            "INSERT INTO slack_message(channel, ts, user, text, blocks, metadata, files, thread_ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                channel,
                ts,
                BOT_USER_ID,
                text,
                orjson.dumps(blocks).decode() if blocks is not None else None,
                orjson.dumps(metadata).decode() if metadata is not None else None,
                orjson.dumps(files).decode() if files is not None else None,
                thread_ts,
            ),
        )
        return ts

    # -- files ---------------------------------------------------------------

    async def files_get_upload_url(self, request: Request, params: Params) -> Params:
        filename = str(params.get("filename") or "").strip()
        if not filename:
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: filename"]},
            )
        try:
            length = int(params.get("length") or 0)
        except (TypeError, ValueError):
            length = 0
        if length <= 0:
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] length must be a positive integer"]},
            )
        number = self.state.next_number("slack:file")
        file_id = channel_id(f"file-{number}", prefix="F")
        self.state.db.execute(
            "INSERT INTO slack_file(id, name, title, length, alt_txt, snippet_type, content, created) "
            "VALUES (?, ?, NULL, ?, ?, ?, NULL, ?)",
            (
                file_id,
                filename,
                length,
                params.get("alt_txt"),
                params.get("snippet_type"),
                int(self.state.now().timestamp()),
            ),
        )
        base = f"{request.url.scheme}://{request.url.netloc}"
        return _ok(upload_url=f"{base}/upload/v1/{file_id}", file_id=file_id)

    async def upload(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        content = await request.body()
        db = self.state.db
        row = db.execute(
            "SELECT length, completed FROM slack_file WHERE id = ?", (file_id,)
        ).fetchone()
        if row is None or row[1]:
            return Response("file not found", status_code=404, media_type="text/plain")
        db.execute("UPDATE slack_file SET content = ? WHERE id = ?", (content, file_id))
        return Response(f"OK - {len(content)}", media_type="text/plain")

    async def files_complete_upload(self, request: Request, params: Params) -> Params:
        raw = params.get("files")
        try:
            items = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
        except orjson.JSONDecodeError:
            items = None
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(i, dict) and i.get("id") for i in items)
        ):
            raise SlackError(
                "invalid_arguments",
                response_metadata={
                    "messages": ["[ERROR] files must be a JSON array of {id, title}"]
                },
            )
        channels = [str(params["channel_id"])] if params.get("channel_id") else []
        channels += [c.strip() for c in str(params.get("channels") or "").split(",") if c.strip()]
        channel_ids = [self._channel(c) for c in channels]
        db = self.state.db
        files: list[Params] = []
        for item in items:
            row = db.execute(
                "SELECT id, name, length, content, completed, created FROM slack_file WHERE id = ?",
                (str(item["id"]),),
            ).fetchone()
            if row is None or row[3] is None:
                raise SlackError("file_not_found")
            if row[4]:
                raise SlackError("file_upload_already_completed")
            if len(row[3]) != row[2]:
                raise SlackError("file_upload_size_mismatch")
            title = str(item.get("title") or row[1])
            db.execute(
                "UPDATE slack_file SET title = ?, completed = 1, channels = ? WHERE id = ?",
                (title, ",".join(channel_ids), row[0]),
            )
            files.append(_file_object(request, row[0], row[1], title, row[2], row[5], channel_ids))
        comment = params.get("initial_comment")
        blocks = None
        if not comment:
            try:
                blocks = parse_blocks(params.get("blocks"))
            except BlockProblem as problem:
                raise SlackError(problem.error, errors=problem.details) from None
        for channel in channel_ids:
            self._store(
                channel, str(comment or ""), blocks, None, files, params.get("thread_ts") or None
            )
        return _ok(files=files)

    async def file_content(self, request: Request) -> Response:
        row = self.state.db.execute(
            "SELECT content, name FROM slack_file WHERE id = ?", (request.path_params["file_id"],)
        ).fetchone()
        if row is None or row[0] is None:
            return Response("file not found", status_code=404, media_type="text/plain")
        return Response(bytes(row[0]), media_type=_mimetype(str(row[1])))

    async def messages_dump(self, request: Request) -> Response:
        """Every message kept, oldest first (optionally of one channel, by id or name)."""
        where = ""
        args: tuple[str, ...] = ()
        channel = request.query_params.get("channel")
        if channel:
            try:
                where, args = "WHERE m.channel = ?", (self._channel(channel),)
            except SlackError:
                return json_response({"error": "channel_not_found", "channel": channel}, status=404)
        rows = self.state.db.execute(
            "SELECT m.channel, c.name, m.ts, m.user, m.text, m.blocks, m.metadata, m.files, m.thread_ts "
            f"FROM slack_message m JOIN slack_channel c ON c.id = m.channel {where} ORDER BY m.seq",
            args,
        ).fetchall()
        messages = [
            {
                "channel": row[0],
                "channel_name": row[1],
                "ts": row[2],
                "user": row[3],
                "text": row[4],
                "blocks": orjson.loads(row[5]) if row[5] else None,
                "metadata": orjson.loads(row[6]) if row[6] else None,
                "files": orjson.loads(row[7]) if row[7] else None,
                "thread_ts": row[8],
            }
            for row in rows
        ]
        return json_response({"messages": messages})

    async def unknown_method(self, request: Request) -> Response:
        return json_response({"ok": False, "error": "unknown_method"}, status=404)


class _RateLimited(Exception):
    def __init__(self, seconds: int) -> None:
        super().__init__(f"rate limited for {seconds}s")
        self.seconds = seconds


async def _params(request: Request) -> Params:
    params: Params = dict(request.query_params)
    if request.method != "POST":
        return params
    body = await request.body()
    if not body:
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise SlackError("invalid_json") from None
        if not isinstance(data, dict):
            raise SlackError("json_not_object")
        params.update(data)
    elif content_type in ("application/x-www-form-urlencoded", ""):
        try:
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise SlackError("invalid_form_data") from None
    else:
        raise SlackError("invalid_form_data")
    return params


def _metadata(raw: Any) -> Params | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, str | bytes):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise SlackError("invalid_metadata_format") from None
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("event_type"), str)
        or not raw["event_type"]
        or not isinstance(raw.get("event_payload"), dict)
    ):
        raise SlackError("invalid_metadata_format")
    return {"event_type": raw["event_type"], "event_payload": raw["event_payload"]}


def _user_object(row: Any) -> Params:
    user_id, email, name, real_name, is_bot = row
    profile: Params = {"real_name": real_name, "display_name": name}
    if email:
        profile["email"] = email
    return {
        "id": user_id,
        "team_id": TEAM_ID,
        "name": name,
        "real_name": real_name,
        "deleted": False,
        "is_bot": bool(is_bot),
        "profile": profile,
    }


def _channel_object(row: Any) -> Params:
    channel, name, is_im, user, topic, created = row
    if is_im:
        return {
            "id": channel,
            "created": created,
            "is_im": True,
            "is_org_shared": False,
            "user": user,
            "is_user_deleted": False,
        }
    return {
        "id": channel,
        "name": name,
        "name_normalized": name,
        "is_channel": True,
        "is_group": False,
        "is_im": False,
        "is_private": False,
        "is_archived": False,
        "is_general": name == "general",
        "is_member": True,
        "created": created,
        "topic": {"value": topic, "creator": "", "last_set": 0},
        "purpose": {"value": topic, "creator": "", "last_set": 0},
    }


def _message_object(row: Any, include_metadata: bool) -> Params:
    ts, user, text, blocks, metadata, files, thread_ts = row
    message: Params = {"type": "message", "user": user, "text": text, "ts": ts, "team": TEAM_ID}
    if user == BOT_USER_ID:
        message.update(bot_id=BOT_ID, app_id=APP_ID)
    if blocks:
        message["blocks"] = orjson.loads(blocks)
    if files:
        message["files"] = orjson.loads(files)
        message["upload"] = False
    if thread_ts:
        message["thread_ts"] = thread_ts
    if include_metadata and metadata:
        message["metadata"] = orjson.loads(metadata)
    return message


_MIMETYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "pdf": "application/pdf",
    "csv": "text/csv",
    "json": "application/json",
    "txt": "text/plain",
}


def _mimetype(name: str) -> str:
    return _MIMETYPES.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def _file_object(
    request: Request,
    file_id: str,
    name: str,
    title: str,
    size: int,
    created: int,
    channels: list[str],
) -> Params:
    base = f"{request.url.scheme}://{request.url.netloc}"
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else "binary"
    return {
        "id": file_id,
        "created": created,
        "timestamp": created,
        "name": name,
        "title": title,
        "mimetype": _mimetype(name),
        "filetype": extension,
        "pretty_type": extension.upper(),
        "user": BOT_USER_ID,
        "size": size,
        "is_external": False,
        "is_public": bool(channels),
        "url_private": f"{base}/_sandbox/slack/files/{file_id}",
        "url_private_download": f"{base}/_sandbox/slack/files/{file_id}",
        "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{BOT_USER_ID}/{file_id}/{name}",
        "channels": channels,
    }


def routes(state: SandboxState) -> list[BaseRoute]:
    slack = _Slack(state)
    state.add_reset_hook(slack.reset)
    methods: dict[str, Handler] = {
        "auth.test": slack.auth_test,
        "chat.postMessage": slack.chat_post_message,
        "conversations.list": slack.conversations_list,
        "conversations.history": slack.conversations_history,
        "conversations.open": slack.conversations_open,
        "users.lookupByEmail": slack.users_lookup_by_email,
        "files.getUploadURLExternal": slack.files_get_upload_url,
        "files.completeUploadExternal": slack.files_complete_upload,
    }
    table: list[BaseRoute] = [
        Route(f"/api/{name}", slack.method(handler), methods=["GET", "POST"])
        for name, handler in methods.items()
    ]
    table += [
        Route("/upload/v1/{file_id}", slack.upload, methods=["POST"]),
        Route("/_sandbox/slack/files/{file_id}", slack.file_content, methods=["GET"]),
        Route("/_sandbox/slack/messages", slack.messages_dump, methods=["GET"]),
        Route("/api/{method}", slack.unknown_method, methods=["GET", "POST"]),
    ]
    return table
