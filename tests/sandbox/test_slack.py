"""The Slack emulator, driven by the real slack-sdk WebClient over a socket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from clghub.sandbox.server import SandboxServer

TOKEN = "xoxb-test-token"


@pytest.fixture
def slack(sandbox: SandboxServer) -> WebClient:
    return WebClient(token=TOKEN, base_url=f"{sandbox.http_url}/api/", timeout=10)


@pytest.fixture
def throttled(sandbox: SandboxServer) -> Iterator[None]:
    options = sandbox.state.options
    previous = options.slack_message_interval
    options.slack_message_interval = 1.0
    yield
    options.slack_message_interval = previous


def _channel(slack: WebClient, name: str) -> str:
    cursor = None
    while True:
        page = slack.conversations_list(limit=4, cursor=cursor)
        for channel in page["channels"]:
            if channel["name"] == name:
                return str(channel["id"])
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            raise AssertionError(f"no channel {name}")


def _error(call: Any) -> str:
    with pytest.raises(SlackApiError) as caught:
        call()
    return str(caught.value.response["error"])


def test_auth(sandbox: SandboxServer, slack: WebClient) -> None:
    identity = slack.auth_test()
    assert identity["ok"]
    assert identity["user_id"].startswith("U")
    assert identity["bot_id"].startswith("B")
    anonymous = httpx.post(f"{sandbox.http_url}/api/auth.test")
    assert anonymous.status_code == 200
    assert anonymous.json() == {"ok": False, "error": "not_authed"}
    form = httpx.post(f"{sandbox.http_url}/api/auth.test", data={"token": "xoxb-in-the-form"})
    assert form.json()["ok"] is True


def test_channels_list_pages_with_a_cursor(slack: WebClient) -> None:
    names: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = slack.conversations_list(limit=5, cursor=cursor)
        pages += 1
        names += [c["name"] for c in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert pages >= 3
    assert {"leadership", "cs-alerts", "general"} <= set(names)
    assert len(names) == len(set(names))


def test_post_with_blocks_and_metadata_reads_back_newest_first(slack: WebClient) -> None:
    channel = _channel(slack, "leadership")
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Weekly value digest"}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*NRR* {n}%"} for n in range(10)],
        },
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "&lt;!channel&gt; Corp"}]},
    ]
    metadata = {"event_type": "clghub_digest", "event_payload": {"period": "2025-W26", "nrr": 1.07}}
    posted = slack.chat_postMessage(
        channel="#leadership", text="Weekly digest", blocks=blocks, metadata=metadata
    )
    assert posted["channel"] == channel
    second = slack.chat_postMessage(channel=channel, text="second")
    assert float(second["ts"]) > float(posted["ts"])

    history = slack.conversations_history(channel=channel, include_all_metadata=True, limit=10)
    newest, older = history["messages"][0], history["messages"][1]
    assert newest["text"] == "second"
    assert older["ts"] == posted["ts"]
    assert older["blocks"] == blocks
    assert older["metadata"] == metadata
    plain = slack.conversations_history(channel=channel, limit=10)
    assert "metadata" not in plain["messages"][1]
    only_new = slack.conversations_history(channel=channel, oldest=posted["ts"])
    assert [m["ts"] for m in only_new["messages"]] == [second["ts"]]


def test_history_pages_with_a_cursor(slack: WebClient) -> None:
    channel = _channel(slack, "random")
    sent = [slack.chat_postMessage(channel=channel, text=f"message {n}")["ts"] for n in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        page = slack.conversations_history(channel=channel, limit=3, cursor=cursor)
        seen += [m["ts"] for m in page["messages"]]
        if not page["has_more"]:
            break
        cursor = page["response_metadata"]["next_cursor"]
    assert seen[:7] == list(reversed(sent))


def test_block_kit_limits(slack: WebClient) -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    cases: list[tuple[Any, str]] = [
        ([section] * 51, "invalid_blocks"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}], "invalid_blocks"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}], "invalid_blocks"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "bold"}}], "invalid_blocks"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], "invalid_blocks"),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
            "invalid_blocks",
        ),
        ([{"type": "no_such_block"}], "invalid_blocks"),
        (
            [section, {"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}],
            "invalid_blocks",
        ),
        ([[section]], "invalid_blocks_format"),
        (
            [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 2999}}] * 14,
            "msg_too_long",
        ),
    ]
    for blocks, error in cases:
        assert (
            _error(lambda b=blocks: slack.chat_postMessage(channel="#general", text="t", blocks=b))
            == error
        )
    assert (
        _error(lambda: slack.chat_postMessage(channel="#general", text="x" * 40_001))
        == "msg_too_long"
    )
    assert (
        _error(lambda: slack.chat_postMessage(channel="#nowhere", text="t")) == "channel_not_found"
    )
    bad_metadata = {"event_type": "x"}
    assert (
        _error(lambda: slack.chat_postMessage(channel="#general", text="t", metadata=bad_metadata))
        == "invalid_metadata_format"
    )
    # Exactly at the limits is fine.
    ok = [{"type": "section", "text": {"type": "mrkdwn", "text": "z" * 3000}}] + [section] * 49
    assert slack.chat_postMessage(channel="#general", text="t", blocks=ok)["ok"]


def test_form_encoded_blocks_are_validated_too(sandbox: SandboxServer) -> None:
    url = f"{sandbox.http_url}/api/chat.postMessage"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    broken = httpx.post(url, data={"channel": "#general", "blocks": "[{not json"}, headers=headers)
    assert broken.json()["error"] == "invalid_blocks_format"
    empty = httpx.post(url, data={"channel": "#general", "text": ""}, headers=headers)
    assert empty.json()["error"] == "no_text"
    good = httpx.post(
        url,
        data={"channel": "#general", "blocks": '[{"type": "divider"}]', "text": "form"},
        headers=headers,
    )
    assert good.json()["ok"] is True


@pytest.mark.usefixtures("throttled")
def test_one_message_a_second_per_channel(slack: WebClient) -> None:
    slack.chat_postMessage(channel="#sales", text="first")
    with pytest.raises(SlackApiError) as caught:
        slack.chat_postMessage(channel="#sales", text="too soon")
    response = caught.value.response
    assert response.status_code == 429
    assert response["error"] == "ratelimited"
    assert int(response.headers["Retry-After"]) >= 1
    # Another channel is not affected.
    assert slack.chat_postMessage(channel="#marketing", text="elsewhere")["ok"]


def test_direct_message_to_an_account_owner(sandbox: SandboxServer, slack: WebClient) -> None:
    email = sandbox.state.db.execute(
        'SELECT "Email" FROM "sf_User" ORDER BY "Id" LIMIT 1'
    ).fetchone()[0]
    user = slack.users_lookupByEmail(email=email.upper())["user"]
    assert user["profile"]["email"] == email
    opened = slack.conversations_open(users=user["id"])
    assert opened["channel"]["id"].startswith("D")
    assert slack.conversations_open(users=user["id"])["channel"]["id"] == opened["channel"]["id"]
    slack.chat_postMessage(channel=opened["channel"]["id"], text="Heads-up: account at risk")
    history = slack.conversations_history(channel=opened["channel"]["id"])
    assert history["messages"][0]["text"] == "Heads-up: account at risk"
    assert (
        _error(lambda: slack.users_lookupByEmail(email="nobody@nowhere.example"))
        == "users_not_found"
    )
    # A person added to a CRM after generation gets a Slack user too.
    sandbox.state.db.execute(
        "INSERT INTO hs_owners (id, email, firstName, lastName, userId, teams, created_at, updated_at) "
        "VALUES (99, 'late.joiner@northwindcloud.example', 'Late', 'Joiner', 1, '[]', '2025-01-01', '2025-01-01')"
    )
    assert (
        slack.users_lookupByEmail(email="late.joiner@northwindcloud.example")["user"]["real_name"]
        == "Late Joiner"
    )


def test_file_upload_v2(sandbox: SandboxServer, slack: WebClient) -> None:
    channel = _channel(slack, "leadership")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10
    result = slack.files_upload_v2(
        channel=channel,
        content=png,
        filename="arr_bridge.png",
        title="ARR bridge",
        initial_comment="The bridge",
    )
    file_id = result["file"]["id"]
    assert result["file"]["title"] == "ARR bridge"
    latest = slack.conversations_history(channel=channel, limit=1)["messages"][0]
    assert latest["text"] == "The bridge"
    assert latest["files"][0]["id"] == file_id
    content = httpx.get(f"{sandbox.http_url}/_sandbox/slack/files/{file_id}")
    assert content.content == png
    assert content.headers["content-type"] == "image/png"
    dump = httpx.get(
        f"{sandbox.http_url}/_sandbox/slack/messages", params={"channel": "#leadership"}
    ).json()
    assert dump["messages"][-1]["files"][0]["id"] == file_id


def test_unknown_method(sandbox: SandboxServer) -> None:
    response = httpx.post(
        f"{sandbox.http_url}/api/chat.notAThing", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_method"
