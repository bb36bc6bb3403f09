"""The leadership digest: its content, escaping, Block Kit limits, and posting exactly once."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select

from clghub import pipeline
from clghub.config import ClghubConfig
from clghub.connectors.slack import SlackMessenger
from clghub.connectors.slack.mrkdwn import escape, link
from clghub.sandbox.server import SandboxServer
from clghub.store.models import table_of
from clghub.store.outputs import DigestPost
from clghub.store.revenue import Incentive, Retention
from clghub.workflows.digest import EVENT_TYPE, LinkBuilder, build_digest
from clghub.workflows.digest_data import DigestPeriod, load_digest_data
from clghub.workflows.digest_post import publish_digest
from tests.outputs.builders import LINK, requests_made, reset_requests, slack_messages
from tests.outputs.conftest import AS_OF
from tests.workflows.builders import World
from tests.workflows.builders import config as make_config

POST = table_of(DigestPost)
RETENTION = table_of(Retention)
INCENTIVE = table_of(Incentive)
CHAT_POST = ("POST", "/api/chat.postMessage")
EVIL = [
    "<!channel>",
    "<https://evil.example|click here>",
    "Fish & Chips *Ltd*",
    "_x_ ~y~ `z` <@U123>",
]
_OUR_LINK = re.compile(
    r"<(https://(?:acme\.lightning\.force\.com|app\.hubspot\.com)/[^|<>\s]+)\|[^<>|]*>"
)


def _texts(value: Any) -> list[str]:
    """Every mrkdwn / plain text string in a block tree."""
    if isinstance(value, dict):
        own = value.get("text")
        found = [own] if isinstance(own, str) else []
        return found + [t for v in value.values() if not isinstance(v, str) for t in _texts(v)]
    if isinstance(value, list):
        return [t for item in value for t in _texts(item)]
    return []


def _assert_inert(texts: Sequence[str]) -> None:
    """No text can mention, link or restyle beyond what the digest itself writes."""
    for text in texts:
        without_links = _OUR_LINK.sub("", text)
        assert "<" not in without_links, text
        assert ">" not in without_links, text
        assert "<!channel>" not in text
        assert "<https://evil" not in text
        for ours in ("&amp;", "&lt;", "&gt;"):
            without_links = without_links.replace(ours, "")
        assert "&" not in without_links, text


def _assert_within_limits(blocks: list[dict[str, Any]]) -> None:
    assert len(blocks) <= 50
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
            assert block["text"]["type"] == "plain_text"
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= 3000
            fields = block.get("fields", [])
            assert len(fields) <= 10
            assert all(len(f["text"]) <= 2000 for f in fields)


def _world(
    engine: Engine, count: int, *, as_of: date = AS_OF, long_names: bool = False
) -> list[int]:
    """Customers renewing within 90 days, red, never met by an executive, with CRM links."""
    ids = []
    with engine.begin() as connection:
        world = World(connection)
        for n in range(count):
            name = EVIL[n % len(EVIL)] + f" {n}"
            if long_names:
                name = (name + " Holdings International ") * 8
            account = world.customer(name, start=as_of - timedelta(days=300), arr=str(10_000 + n))
            world.snapshot(
                account,
                as_of,
                20.0 + n % 15,
                band="red",
                trend_30d=float(n % 41) - 20.0,
                explanation="adoption depth 12; " + EVIL[n % 4] * 3,
            )
            connection.execute(
                LINK.insert().values(
                    source="salesforce",
                    object="account",
                    source_id=f"001{n:015d}",
                    account_id=account,
                )
            )
            ids.append(account)
    return ids


def _bridge(
    engine: Engine,
    as_of: date = AS_OF,
    *,
    nrr: float = 1.042,
    grr: float = 0.913,
    incentives: bool = True,
) -> None:
    with engine.begin() as connection:
        connection.execute(
            RETENTION.insert().values(
                period_kind="ttm",
                period_start=as_of.replace(year=as_of.year - 1) + timedelta(days=1),
                period_end=as_of,
                cohort_dim="all",
                cohort_value="all",
                start_arr=Decimal("1000000"),
                new_arr=Decimal("250000"),
                expansion_arr=Decimal("120000"),
                contraction_arr=Decimal("30000"),
                churn_arr=Decimal("48000"),
                reactivation_arr=Decimal("5000"),
                end_arr=Decimal("1297000"),
                start_logos=80,
                end_logos=95,
                nrr=nrr,
                grr=grr,
            )
        )
        for team, key, amount in (
            ("pool", "(pool)", "5000"),
            ("marketing", "(team)", "1000"),
            ("sales", "(team)", "2500"),
            ("cs", "(team)", "1500"),
        )[: 4 if incentives else 0]:
            connection.execute(
                INCENTIVE.insert().values(
                    period="2026-Q4",
                    period_start=date(2026, 10, 1),
                    period_end=date(2026, 12, 31),
                    team=team,
                    person_key=key,
                    amount=Decimal(amount),
                )
            )


def _config(**slack: Any) -> ClghubConfig:
    return make_config(
        reporting={"as_of": AS_OF.isoformat()},
        slack={
            "salesforce_ui_url": "https://acme.lightning.force.com",
            "hubspot_portal_id": "4242",
            **slack,
        },
    )


LINKS = LinkBuilder("https://acme.lightning.force.com", "4242")


def test_escaping_keeps_crm_text_inert() -> None:
    text = escape("<!channel> & <https://x|click> *bold* _it_ ~st~ `code`\x07")
    assert "<" not in text
    assert ">" not in text
    assert text.startswith("&lt;!channel&gt; &amp; &lt;https://x|click&gt;")
    assert not set("*_~`") & set(text)
    assert "\x07" not in text
    assert (
        link("https://app.hubspot.com/a|b", "<!here>")
        == "<https://app.hubspot.com/a%7Cb|&lt;!here&gt;>"
    )


def test_digest_content_escapes_every_crm_string(engine: Engine) -> None:
    _world(engine, 12)
    _bridge(engine)
    config = _config()
    with engine.connect() as connection:
        data = load_digest_data(connection, config, DigestPeriod.of(AS_OF), AS_OF)
    message = build_digest(data, config, links=LINKS)
    texts = _texts(message.blocks)
    _assert_inert([*texts, message.text])
    joined = "\n".join(texts)
    assert "&lt;!channel&gt; 0" in joined
    assert "Fish &amp; Chips ∗Ltd∗" in joined
    assert (
        "<https://acme.lightning.force.com/lightning/r/Account/001000000000000000/view|" in joined
    )
    assert "104.2%" in joined
    assert "91.3%" in joined
    assert "$1.30M" in joined  # ARR at the end of the bridge
    assert "Pool 2026-Q4" in joined
    assert "$2.50K" in joined  # sales' share
    assert "At-risk ARR: $120K" in joined  # twelve red accounts renewing on 2027-01-23
    assert "No executive engagement for 90+ days: 12 customers" in joined


def test_risers_and_fallers_with_their_drivers_and_expansion_arr(engine: Engine) -> None:
    _world(engine, 41)  # 30-day trends from -20 to +20
    _bridge(engine)
    config = _config()
    with engine.connect() as connection:
        data = load_digest_data(connection, config, DigestPeriod.of(AS_OF), AS_OF)
    sections = _texts(build_digest(data, config, links=LINKS).blocks)
    risers = next(t for t in sections if "Top risers" in t).splitlines()
    fallers = next(t for t in sections if "Top fallers" in t).splitlines()
    # The five largest moves each way, biggest first, each with its drivers.
    assert [line.split(", ")[-1].split(" —")[0] for line in risers[1:6]] == [
        f"+{n}.0 in 30 days" for n in (20, 19, 18, 17, 16)
    ]
    assert [line.split(", ")[-1].split(" —")[0] for line in fallers[1:6]] == [
        f"-{n}.0 in 30 days" for n in (20, 19, 18, 17, 16)
    ]
    assert "&lt;!channel&gt; 40" in risers[1]  # n = 40 rose by 20, named escaped
    assert all("— adoption depth 12" in line for line in risers[1:6] + fallers[1:6])
    assert risers[-1] == "_…and 15 more rising_"
    assert fallers[-1] == "_…and 15 more falling_"
    joined = "\n".join(sections)
    assert "Expansion ARR: $120K over 12 months" in joined


def test_an_empty_store_gives_a_digest_that_says_so(engine: Engine) -> None:
    config = _config()
    with engine.connect() as connection:
        data = load_digest_data(connection, config, DigestPeriod.parse("2026-W47"), AS_OF)
    message = build_digest(data, config, links=LINKS)
    joined = "\n".join(_texts(message.blocks))
    assert "No ARR history yet" in joined
    assert "No value scores yet" in joined
    assert "No incentives computed yet" in joined
    _assert_within_limits(message.blocks)


def test_five_thousand_accounts_stay_within_block_kit_limits(sqlite_engine: Engine) -> None:
    _world(sqlite_engine, 5000, long_names=True)
    _bridge(sqlite_engine)
    config = _config()
    with sqlite_engine.connect() as connection:
        data = load_digest_data(connection, config, DigestPeriod.of(AS_OF), AS_OF)
    message = build_digest(data, config, links=LINKS)
    _assert_within_limits(message.blocks)
    texts = _texts(message.blocks)
    _assert_inert([*texts, message.text])
    joined = "\n".join(texts)
    assert data.at_risk.total == 5000
    assert re.search(r"_…and (\d+) more accounts_", joined)
    assert re.search(r"_…and (\d+) more customers_", joined)
    assert re.search(r"_…and (\d+) more falling_", joined)
    assert len(orjson.dumps(message.blocks)) < 40_000


def _posted(sandbox: SandboxServer, channel: str, key: str) -> list[dict[str, Any]]:
    return [
        m
        for m in slack_messages(sandbox, channel)
        if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE
        and m["metadata"]["event_payload"]["key"] == key
    ]


def test_digest_is_posted_once_with_its_chart(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine
) -> None:
    _world(sqlite_engine, 6)
    _bridge(sqlite_engine)
    first = pipeline.digest(sqlite_engine, config)
    assert (first.period, first.status, first.chart) == ("2026-W47", "posted", "shared")
    messages = slack_messages(sandbox, "leadership")
    assert len(_posted(sandbox, "leadership", "digest-2026-W47")) == 1
    charts = [m for m in messages if m.get("files")]
    assert [f["name"] for m in charts for f in m["files"]] == ["clghub-arr-bridge-2026-W47.png"]

    reset_requests(sandbox)
    again = pipeline.digest(sqlite_engine, config)
    assert (again.status, again.chart) == ("already posted", "already shared")
    assert requests_made(sandbox)[CHAT_POST] == 0
    assert len(slack_messages(sandbox, "leadership")) == len(messages)


class _DiesAfter:
    """A messenger that does the real thing, then the process dies before recording it."""

    def __init__(self, inner: SlackMessenger, method: str) -> None:
        self.inner = inner
        self.method = method
        self.posts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def post(self, channel_id: str, **kwargs: Any) -> str:
        ts = self.inner.post(channel_id, **kwargs)
        if self.method == "post":
            raise KeyboardInterrupt
        return ts

    def share_file(self, channel_id: str, **kwargs: Any) -> tuple[str | None, str]:
        shared = self.inner.share_file(channel_id, **kwargs)
        if self.method == "share_file":
            raise KeyboardInterrupt
        return shared


@pytest.mark.parametrize("dies_in", ["post", "share_file"])
def test_a_run_killed_right_after_posting_never_posts_twice(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine, dies_in: str
) -> None:
    _world(sqlite_engine, 4)
    _bridge(sqlite_engine)
    period = DigestPeriod.of(AS_OF)
    with sqlite_engine.connect() as connection:
        data = load_digest_data(connection, config, period, AS_OF)
    from clghub.workflows.digest_chart import bridge_chart

    assert data.bridge is not None
    message = build_digest(
        data, config, links=LINKS, chart_png=bridge_chart(data.bridge, "USD", title="ARR bridge")
    )
    dying = _DiesAfter(SlackMessenger(config.slack), dies_in)
    with pytest.raises(KeyboardInterrupt):
        publish_digest(sqlite_engine, dying, message, "#leadership")
    with sqlite_engine.connect() as connection:
        row = connection.execute(select(POST)).one()
    assert (row.state, row.chart_state) == (
        ("pending", "pending") if dies_in == "post" else ("posted", "sharing")
    )
    assert row.payload_hash == message.payload_hash

    rerun = pipeline.digest(sqlite_engine, config)
    assert rerun.status == ("found" if dies_in == "post" else "already posted")
    assert rerun.chart == ("shared" if dies_in == "post" else "found")
    assert len(_posted(sandbox, "leadership", "digest-2026-W47")) == 1
    files = [f["name"] for m in slack_messages(sandbox, "leadership") for f in m.get("files") or []]
    assert files == ["clghub-arr-bridge-2026-W47.png"]
    with sqlite_engine.connect() as connection:
        row = connection.execute(select(POST)).one()
    assert (row.state, row.chart_state) == ("posted", "posted")
    assert row.message_ts == _posted(sandbox, "leadership", "digest-2026-W47")[0]["ts"]


def test_dry_run_writes_files_and_sends_nothing(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine, tmp_path: Path
) -> None:
    _world(sqlite_engine, 3)
    _bridge(sqlite_engine)
    reset_requests(sandbox)
    report = pipeline.digest(
        sqlite_engine, config, dry_run=True, period="2026-W47", out_dir=tmp_path / "out"
    )
    assert sum(requests_made(sandbox).values()) == 0
    assert [Path(f).name for f in report.files] == ["digest-2026-W47.json", "digest-2026-W47.png"]
    payload = orjson.loads((tmp_path / "out" / "digest-2026-W47.json").read_bytes())
    assert payload["channel"] == "#leadership"
    assert payload["metadata"]["event_payload"]["key"] == "digest-2026-W47"
    assert (tmp_path / "out" / "digest-2026-W47.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Weekly value digest · 2026-W47" in report.preview
    assert "<" not in report.preview.split("Top fallers")[0].split("NRR")[0]
    with sqlite_engine.connect() as connection:
        assert connection.execute(select(POST)).all() == []


def test_each_digest_shows_the_change_since_the_last_one(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine
) -> None:
    _bridge(sqlite_engine, AS_OF - timedelta(days=7), nrr=1.030, grr=0.920)
    config.slack.digest.chart = False
    week46 = pipeline.digest(sqlite_engine, config, period="2026-W46")
    assert week46.status == "posted"
    _bridge(sqlite_engine, AS_OF, nrr=1.042, grr=0.913, incentives=False)
    pipeline.digest(sqlite_engine, config)
    latest = _posted(sandbox, "leadership", "digest-2026-W47")[0]
    text = "\n".join(_texts(latest["blocks"]))
    assert "▲ +1.2 pts since 2026-W46" in text
    assert "▼ -0.7 pts since 2026-W46" in text


def test_a_bad_period_is_a_usage_error(config: ClghubConfig, sqlite_engine: Engine) -> None:
    from clghub.errors import UsageError

    with pytest.raises(UsageError, match="2026-W60"):
        pipeline.digest(sqlite_engine, config, period="2026-W60", dry_run=True)


def test_clipping_never_leaves_half_an_entity_or_a_link() -> None:
    from clghub.connectors.slack.mrkdwn import clip

    text = escape("a & b") + " " + link("https://app.hubspot.com/x", "label") + " tail"
    for limit in range(1, len(text) + 2):
        clipped = clip(text, limit)
        assert len(clipped) <= max(limit, 1)
        rest = _OUR_LINK.sub("", clipped)
        assert "<" not in rest
        for entity in ("&amp;",):
            rest = rest.replace(entity, "")
        assert "&" not in rest


def test_an_unknown_channel_is_a_clear_error_and_records_nothing(
    sandbox: SandboxServer, config: ClghubConfig, sqlite_engine: Engine
) -> None:
    from clghub.connectors.slack import SlackRefused

    config.slack.digest_channel = "#no-such-channel"
    with pytest.raises(SlackRefused, match=r"channel_not_found.*check the channel name"):
        pipeline.digest(sqlite_engine, config)
    with sqlite_engine.connect() as connection:
        assert connection.execute(select(POST)).all() == []
    config.slack.digest_channel = "#leadership"
    assert pipeline.digest(sqlite_engine, config).status == "posted"
