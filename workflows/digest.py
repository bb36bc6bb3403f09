"""The weekly leadership digest as a Slack message (Block Kit, built with slack-sdk's models).

Sections: retention (NRR and GRR over the trailing twelve months, with the
change since the last digest), the ARR bridge (its chart is shared right
after the message), expansion, the value-score risers and fallers with
their drivers, at-risk ARR, accounts without executive engagement, and the
incentive pool by team. Names link to the CRM records.

The message always fits Slack's limits: at most 50 blocks, 3,000
characters a section, 150 a header, 10 fields of 2,000. Lists are cut to
what fits and say "and N more". Every string that comes from CRM data is
escaped (:mod:`clghub.connectors.slack.mrkdwn`): a customer called
``<!channel>`` pings nobody. The plain-text ``text`` is the notification
and the fallback.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from clghub.config.models import ClghubConfig
from clghub.connectors.slack.mrkdwn import bold, clip, escape, link, plain
from clghub.workflows.digest_data import AccountLine, DigestData, Ranked
from clghub.workflows.digest_text import format_money, percent, points

__all__ = [
    "EVENT_TYPE",
    "DigestMessage",
    "LinkBuilder",
    "PreviousDigest",
    "build_digest",
    "preview_text",
]

EVENT_TYPE = "clghub_digest"
MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_FALLBACK = 3000
_DRIVERS_CHARS = 280


@dataclass(frozen=True)
class PreviousDigest:
    """The last digest posted to the channel: what the changes are measured against."""

    period: str
    nrr: float | None
    grr: float | None


@dataclass(frozen=True)
class LinkBuilder:
    """Where an account's CRM records open in a browser."""

    salesforce_base: str | None = None
    """e.g. https://acme.lightning.force.com (slack.salesforce_ui_url or the instance URL)."""
    hubspot_portal: str | None = None
    priority: tuple[str, ...] = ("salesforce", "hubspot")

    def url(self, crm: str, record_id: str) -> str | None:
        if crm == "salesforce" and self.salesforce_base:
            return f"{self.salesforce_base.rstrip('/')}/lightning/r/Account/{record_id}/view"
        if crm == "hubspot" and self.hubspot_portal:
            return f"https://app.hubspot.com/contacts/{self.hubspot_portal}/company/{record_id}"
        return None

    def account(self, line: AccountLine) -> str:
        """The account's name, linked to its first CRM record (and the other CRM's, if any)."""
        ranked = sorted(
            line.links,
            key=lambda lk: (
                self.priority.index(lk[0]) if lk[0] in self.priority else len(self.priority)
            ),
        )
        name = line.name.strip() or "(unnamed account)"
        urls = [(crm, url) for crm, record_id in ranked if (url := self.url(crm, record_id))]
        if not urls:
            return bold(escape(name))
        first_crm, first_url = urls[0]
        text = bold(link(first_url, name))
        others = [
            link(url, "HubSpot" if crm == "hubspot" else "Salesforce")
            for crm, url in urls[1:]
            if crm != first_crm
        ]
        return text + (f" ({', '.join(others)})" if others else "")


@dataclass
class DigestMessage:
    period: str
    key: str
    text: str
    blocks: list[dict[str, Any]]
    chart_png: bytes | None = None
    chart_name: str | None = None
    chart_title: str = ""
    chart_alt: str = ""
    nrr: float | None = None
    grr: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def payload(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "blocks": self.blocks,
            "metadata": {"event_type": EVENT_TYPE, "event_payload": {"key": self.key}},
        }

    @property
    def payload_hash(self) -> str:
        return hashlib.sha256(orjson.dumps(self.payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, MAX_SECTION), verbatim=True))


def _fields(pairs: Sequence[tuple[str, str]]) -> SectionBlock:
    fields = [
        MarkdownTextObject(text=clip(f"{bold(label)}\n{value}", MAX_FIELD), verbatim=True)
        for label, value in pairs[:MAX_FIELDS]
    ]
    return SectionBlock(fields=fields)


def _more(count: int, noun: tuple[str, str]) -> str:
    return f"\n_…and {count} more {noun[0] if count == 1 else noun[1]}_"


def _listing(
    title: str, lines: Sequence[str], total: int, noun: tuple[str, str], empty: str
) -> str:
    """A titled list that fits a section, ending with "and N more" when cut."""
    if not lines:
        return f"{title}\n{empty}"
    text = title
    shown = 0
    for line in lines:
        rest = total - shown - 1
        reserve = len(_more(rest, noun)) if rest > 0 else 0
        if len(text) + 1 + len(line) + reserve > MAX_SECTION:
            break
        text += "\n" + line
        shown += 1
    if total > shown:
        text += _more(total - shown, noun)
    return text


def _drivers(explanation: str | None) -> str:
    if not explanation:
        return ""
    short = plain(explanation, _DRIVERS_CHARS)
    return f" — {escape(short)}"


def _mover(line: AccountLine, links: LinkBuilder) -> str:
    score = "n/a" if line.score is None else f"{line.score:.0f}"
    trend = "" if line.trend_30d is None else f", {line.trend_30d:+.1f} in 30 days"
    band = f" ({escape(line.band)})" if line.band else ""
    return f"• {links.account(line)}: {score}{band}{trend}{_drivers(line.explanation)}"


def _risk_line(line: AccountLine, links: LinkBuilder, currency: str) -> str:
    renews = f", renews {line.term_end.isoformat()}" if line.term_end else ""
    score = "" if line.score is None else f", score {line.score:.0f}"
    return f"• {links.account(line)}: {format_money(line.arr, currency)}{renews}{score}{_drivers(line.explanation)}"


def _no_exec_line(line: AccountLine, links: LinkBuilder, currency: str) -> str:
    since = (
        "never met"
        if line.days_since_exec is None
        else f"{line.days_since_exec} days since the last meeting"
    )
    return f"• {links.account(line)}: {format_money(line.arr, currency)}, {since}"


def _retention_blocks(data: DigestData, previous: PreviousDigest | None) -> list[Block]:
    bridge = data.bridge
    if bridge is None:
        return [
            _section(f"{bold('Retention')}\nNo ARR history yet: run `clghub score` after a sync.")
        ]
    before_nrr = previous.nrr if previous else None
    before_grr = previous.grr if previous else None
    since = f" since {previous.period}" if previous else ""
    nrr_change = points(bridge.nrr, before_nrr)
    grr_change = points(bridge.grr, before_grr)
    return [
        _fields(
            [
                (
                    "NRR (trailing 12 months)",
                    percent(bridge.nrr) + (f"\n{nrr_change}{since}" if nrr_change else ""),
                ),
                (
                    "GRR (trailing 12 months)",
                    percent(bridge.grr) + (f"\n{grr_change}{since}" if grr_change else ""),
                ),
                ("ARR", format_money(bridge.end, data.currency)),
                (
                    "Customers",
                    f"{bridge.end_logos} ({bridge.end_logos - bridge.start_logos:+d} in 12 months)",
                ),
            ]
        )
    ]


def _bridge_block(data: DigestData) -> list[Block]:
    bridge = data.bridge
    if bridge is None:
        return []
    c = data.currency
    rows = [
        ("Start", format_money(bridge.start, c)),
        ("+ New", format_money(bridge.new, c)),
        ("+ Expansion", format_money(bridge.expansion, c)),
        ("+ Reactivation", format_money(bridge.reactivation, c)),
        ("− Contraction", format_money(bridge.contraction, c)),
        ("− Churn", format_money(bridge.churn, c)),
        ("End", format_money(bridge.end, c)),
    ]
    table = "\n".join(f"{label}: {value}" for label, value in rows)
    title = bold(
        f"ARR bridge, {bridge.period_start.isoformat()} to {bridge.period_end.isoformat()}"
    )
    expansion = f"Expansion ARR: {format_money(bridge.expansion, c)} over 12 months"
    if data.quarter_expansion is not None and data.quarter_label:
        expansion += (
            f", {format_money(data.quarter_expansion, c)} this quarter ({data.quarter_label})"
        )
    return [_section(f"{title}\n{table}\n{expansion}")]


def _movers_blocks(data: DigestData, links: LinkBuilder, top_n: int) -> list[Block]:
    if data.score_as_of is None:
        return [_section(f"{bold('Value scores')}\nNo value scores yet: run `clghub score`.")]
    blocks: list[Block] = []
    for title, ranked, noun in (
        (
            f"Top risers (value score, 30 days to {data.score_as_of.isoformat()})",
            data.risers,
            ("rising", "rising"),
        ),
        (
            f"Top fallers (value score, 30 days to {data.score_as_of.isoformat()})",
            data.fallers,
            ("falling", "falling"),
        ),
    ):
        lines = [_mover(line, links) for line in ranked.lines[:top_n]]
        empty = "No account moved this way."
        blocks.append(_section(_listing(bold(title), lines, ranked.total, noun, empty)))
    return blocks


def _risk_blocks(data: DigestData, config: ClghubConfig, links: LinkBuilder) -> list[Block]:
    c = data.currency
    days = config.slack.digest.at_risk_days
    blocks: list[Block] = []
    if data.score_as_of is None:
        blocks.append(_section(f"{bold('At-risk ARR')}\nNo value scores yet: run `clghub score`."))
    else:
        risk: Ranked = data.at_risk
        title = (
            bold(f"At-risk ARR: {format_money(risk.arr, c)}")
            + f" in {risk.total} red account{'s' if risk.total != 1 else ''} renewing within {days} days"
        )
        lines = [_risk_line(line, links, c) for line in risk.lines]
        blocks.append(
            _section(
                _listing(
                    title,
                    lines,
                    risk.total,
                    ("account", "accounts"),
                    "None: no red account renews in that time.",
                )
            )
        )
    quiet = data.no_exec
    no_exec_days = config.slack.digest.no_exec_days
    title = (
        bold(
            f"No executive engagement for {no_exec_days}+ days: {quiet.total} customer{'s' if quiet.total != 1 else ''}"
        )
        + f" ({format_money(quiet.arr, c)} ARR)"
    )
    lines = [_no_exec_line(line, links, c) for line in quiet.lines]
    blocks.append(
        _section(
            _listing(
                title,
                lines,
                quiet.total,
                ("customer", "customers"),
                "Every customer met an economic buyer recently.",
            )
        )
    )
    return blocks


def _incentive_blocks(data: DigestData) -> list[Block]:
    if data.incentive_period is None or data.pool is None:
        return [
            _section(f"{bold('Incentive pool')}\nNo incentives computed yet: run `clghub score`.")
        ]
    c = data.currency
    pairs = [(f"Pool {data.incentive_period}", format_money(data.pool, c))]
    pairs += [
        (team.upper() if team == "cs" else team.capitalize(), format_money(amount, c))
        for team, amount in data.teams.items()
    ]
    return [_fields(pairs)]


def _fallback(data: DigestData) -> str:
    parts = [f"clghub weekly digest {data.period.label}"]
    if data.bridge is not None:
        parts.append(
            f"NRR {percent(data.bridge.nrr)}, GRR {percent(data.bridge.grr)}, ARR {format_money(data.bridge.end, data.currency)}"
        )
    if data.score_as_of is not None:
        parts.append(
            f"at-risk ARR {format_money(data.at_risk.arr, data.currency)} ({data.at_risk.total} accounts)"
        )
    if data.pool is not None:
        parts.append(f"incentive pool {format_money(data.pool, data.currency)}")
    return clip(escape("; ".join(parts)), MAX_FALLBACK)


def build_digest(
    data: DigestData,
    config: ClghubConfig,
    *,
    links: LinkBuilder,
    previous: PreviousDigest | None = None,
    chart_png: bytes | None = None,
) -> DigestMessage:
    """The digest message for ``data`` (the chart, when given, is shared after it)."""
    period = data.period
    header = HeaderBlock(
        text=PlainTextObject(
            text=plain(f"Weekly value digest · {period.label}", MAX_HEADER), emoji=False
        )
    )
    context = ContextBlock(
        elements=[
            MarkdownTextObject(
                text=f"Week of {period.start:%b %d} to {period.end:%b %d, %Y} · figures as of {data.cutoff.isoformat()} · {escape(data.currency)}",
                verbatim=True,
            )
        ]
    )
    blocks: list[Block] = [header, context, *_retention_blocks(data, previous), DividerBlock()]
    blocks += _bridge_block(data)
    if chart_png is not None:
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text="The ARR bridge chart follows this message.")]
            )
        )
    blocks += [
        DividerBlock(),
        *_movers_blocks(data, links, config.slack.digest.top_n),
        DividerBlock(),
    ]
    blocks += _risk_blocks(data, config, links)
    blocks += [DividerBlock(), *_incentive_blocks(data)]
    if len(blocks) > MAX_BLOCKS:  # pragma: no cover - the layout has a fixed number of blocks
        raise AssertionError(f"digest has {len(blocks)} blocks")
    rendered = [block.to_dict() for block in blocks]  # validates every block's limits
    message = DigestMessage(
        period=period.label,
        key=f"digest-{period.label}",
        text=_fallback(data),
        blocks=rendered,
        nrr=data.bridge.nrr if data.bridge else None,
        grr=data.bridge.grr if data.bridge else None,
    )
    if chart_png is not None:
        message.chart_png = chart_png
        message.chart_name = f"clghub-arr-bridge-{period.label}.png"
        message.chart_title = f"ARR bridge, trailing twelve months to {data.bridge.period_end.isoformat() if data.bridge else data.cutoff.isoformat()}"
        message.chart_alt = "Waterfall chart of the ARR bridge: start, new, expansion, reactivation, contraction, churn, end"
    return message


_LINK = re.compile(r"<([^|>]+)\|([^>]*)>")


def preview_text(message: DigestMessage) -> str:
    """The message as a person would read it, for a terminal."""
    out: list[str] = []

    def show(text: str) -> str:
        text = _LINK.sub(lambda m: f"{m[2]} [{m[1]}]", text)
        return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

    for block in message.blocks:
        kind = block.get("type")
        if kind == "header":
            title = block["text"]["text"]
            out += [title, "=" * len(title)]
        elif kind == "divider":
            out.append("-" * 60)
        elif kind == "context":
            out += [show(str(e.get("text", ""))) for e in block.get("elements", [])]
        elif kind == "section":
            if "text" in block:
                out.append(show(block["text"]["text"]))
            for item in block.get("fields", []):
                out.append(show(item["text"]).replace("\n", ": ", 1))
    if message.chart_name:
        out.append(f"[chart: {message.chart_name}]")
    return "\n".join(out)
