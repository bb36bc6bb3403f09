"""Hostile data through the whole pipeline: it flows through escaped, or waits in quarantine.

Account names with Slack control sequences and mrkdwn, SOQL metacharacters
(in record data and in a mapping), very long strings, every Unicode plane,
NUL and other control bytes, negative, absurd and unknown-currency amounts,
deals that reference no account, and a usage file with dates in five formats,
numbers as strings, duplicate rows and unknown accounts. Nothing crashes,
nothing reaches Slack unescaped, no SOQL is malformed, no record is lost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from clghub.store.engine import create_store_engine
from clghub.store.models import Account, Opportunity, Quarantine, UsageDaily, table_of
from clghub.sync.casts import clean_text
from tests.resilience.conftest import Org
from tests.support.chaos import cli, control
from tests.support.crm_state import CrmReader, slack_messages

HOSTILE_NAMES = (
    "<!channel> Hostile Corp",
    "<!here|here> & <@U0HOSTILE> Partners",
    "<#C0HOSTILE|general> Ltd",
    "Acme <https://evil.example/phish|click here> Inc",
    "O'Brien \\ 100% _Ltd_ *bold* ~gone~ `code` > quoted",
    "Zero\x00Byte\x07Bell Inc",
    "Ünïcödé 𝔘𝔫𝔦 😀 中文 עברית \u202eRTL 𐍈 Co",
    "Long " + "L" * 250,  # Salesforce's limit for a name: 255 characters
)
VERY_LONG_NAME = "Very long " + "V" * 20_000
"""HubSpot keeps names of any length; Slack does not, and must not be sent one."""
RAW_CONTROL_SEQUENCES = (
    "<!channel",
    "<!here",
    "<@U0HOSTILE",
    "<#C0HOSTILE",
    "<https://evil.example",
)
EVIL_FIELD = "Name' OR Name != '"
"""A mapping's source field carrying SOQL: never sent (it is not in describe)."""


def _sf_create(reader: CrmReader, sobject: str, values: dict[str, Any]) -> str | None:
    answer = reader.sf_call("POST", f"/sobjects/{sobject}", values)
    body = orjson.loads(answer.content)
    return str(body["id"]) if answer.status_code == 201 else None


def _won_deal(account_id: str, amount: float, **extra: Any) -> dict[str, Any]:
    return {
        "AccountId": account_id,
        "Name": "Hostile deal",
        "StageName": "Closed Won",
        "Type": "New Business",
        "Amount": amount,
        "CloseDate": "2026-01-15",
        "Contract_Start_Date__c": "2026-01-15",
        "Contract_End_Date__c": "2027-01-14",
        **extra,
    }


def _usage_file(folder: Path) -> None:
    """Daily usage in many shapes: what a customer's export really looks like."""
    folder.mkdir()
    rows = [
        # account_key, metric, day, value
        ("hostile0.example", "logins", "2026-06-01", "12"),
        ("hostile0.example", "logins", "2026/06/02", "1,234.5"),
        ("hostile0.example", "logins", "2026-06-03T00:00:00Z", 7),
        ("hostile0.example", "logins", "1780531200", 3),  # epoch seconds: 2026-06-04
        ("hostile0.example", "logins", "06/05/2026", 4),  # ambiguous: refused
        ("hostile0.example", "logins", "2026-06-06", "NaN"),
        ("hostile0.example", "logins", "2026-06-07", "1e400"),
        ("hostile0.example", "log\x00ins", "2026-06-08", 5),
        ("hostile0.example", "logins", "2026-02-30", 6),  # no such day
        ("hostile0.example", "logins", "2026-06-01", "12"),  # a duplicate in the page
        ("no-such-customer.example", "logins", "2026-06-01", 9),
    ]
    (folder / "usage.jsonl").write_text(
        "".join(
            json.dumps({"account_key": k, "metric": m, "day": d, "value": v}) + "\n"
            for k, m, d, v in rows
        )
        + "{not json\n"
    )


def test_hostile_records_flow_through_escaped_or_wait_in_quarantine(
    org: Org, tmp_path: Path
) -> None:
    config, store = org.fresh_run("hostile")
    reader = CrmReader(org.server)
    mapping = tmp_path / "salesforce.toml"
    mapping.write_text(f"[Account.extra]\nevil = {json.dumps(EVIL_FIELD)}\n")
    text = config.read_text().replace(
        "[sources.salesforce]\n", f"[sources.salesforce]\nmapping = {json.dumps(str(mapping))}\n", 1
    )
    config.write_text(text)

    accounts = {}
    for number, name in enumerate(HOSTILE_NAMES):
        account_id = _sf_create(
            reader,
            "Account",
            {"Name": name, "Website": f"https://hostile{number}.example", "Segment__c": "SMB"},
        )
        assert account_id is not None, name
        accounts[account_id] = name
        assert _sf_create(reader, "Opportunity", _won_deal(account_id, 24_000 + number)) is not None
    first = next(iter(accounts))
    refused_by_mapping = {
        "negative": _sf_create(reader, "Opportunity", _won_deal(first, -5_000, Type="Upsell")),
        "absurd": _sf_create(reader, "Opportunity", _won_deal(first, 5e14, Type="Upsell")),
    }
    unknown_currency = _sf_create(
        reader, "Opportunity", _won_deal(first, 1_000, Type="Upsell", CurrencyIsoCode="XYZ")
    )
    for number, name in enumerate((*HOSTILE_NAMES[:4], VERY_LONG_NAME)):
        created = reader.hs_call(
            "POST",
            "/crm/v3/objects/companies",
            {"properties": {"name": name, "domain": f"hs-hostile{number}.example"}},
        )
        assert created.status_code == 201, created.text
    orphan = reader.hs_call(
        "POST",
        "/crm/v3/objects/deals",
        {
            "properties": {
                "dealname": "<!channel> orphan",
                "amount": "12000.50",
                "dealstage": "closedwon",
            }
        },
    )
    assert orphan.status_code == 201, orphan.text

    result = cli(config, "run", "--json")
    assert "Traceback" not in result.stderr
    assert result.code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    sync_note = next(s for s in report["stages"] if s["name"] == "sync")
    assert sync_note["status"] == "ok"

    engine = create_store_engine(f"sqlite:///{store}")
    try:
        with engine.connect() as connection:
            names = set(connection.execute(select(table_of(Account).c.name)).scalars())
            deals = {
                row.source_id: row for row in connection.execute(select(table_of(Opportunity)))
            }
            quarantined = {
                (row.source_id, row.reason)
                for row in connection.execute(select(table_of(Quarantine)))
            }
            usage_rows = connection.execute(select(table_of(UsageDaily))).all()
    finally:
        engine.dispose()
    # Every hostile name is there, as written (less the control bytes no store keeps).
    for name in (*HOSTILE_NAMES, VERY_LONG_NAME):
        assert clean_text(name) in names, name[:60]
    assert "ZeroByteBell Inc" in names
    # Amounts the mapping bounds refuse wait in quarantine with the reason.
    for why, deal_id in refused_by_mapping.items():
        assert deal_id is not None, why
        assert deal_id not in deals, why
        reasons = [reason for source_id, reason in quarantined if source_id == deal_id]
        assert any("amount" in r for r in reasons), (why, reasons)
    assert unknown_currency is not None
    assert any("unknown currency XYZ" in reason for _, reason in quarantined)
    assert usage_rows  # the REST usage still arrived

    # Slack: every hostile sequence arrived escaped, none raw.
    posted = [m.text + m.blocks for m in slack_messages(org.server)]
    assert posted
    everything = "\n".join(posted)
    for sequence in RAW_CONTROL_SEQUENCES:
        assert sequence not in everything, sequence
    assert (
        "&lt;!channel&gt;" in everything or "&lt;!channel&gt;".replace("&", "\\u0026") in everything
    )

    # SOQL: nothing malformed (the mapping's SOQL-laden field was never sent).
    answers = control(org.server, "GET", "/_sandbox/requests")["requests"]
    assert not [e for e in answers if e["status"] == 400 and "/query" in e["path"]]

    # The hostile accounts got their value fields like any other customer (CLV:
    # they have no usage, meetings or tickets, so no value score yet).
    rows = reader.soql(
        "SELECT Id, CLV__c FROM Account WHERE Id IN (" + ", ".join(f"'{i}'" for i in accounts) + ")"
    )
    assert len(rows) == len(accounts)
    assert all(row["CLV__c"] for row in rows), [(r["Id"], r["CLV__c"]) for r in rows]


def test_a_hostile_usage_file_is_read_or_quarantined_row_by_row(org: Org, tmp_path: Path) -> None:
    config, store = org.fresh_run("hostile-usage")
    folder = tmp_path / "usage"
    _usage_file(folder)
    text = config.read_text()
    start = text.index("[sources.product_usage]")
    end = text.index("\n[", text.index("[sources.product_usage.rest]") + 1)
    config.write_text(
        text[:start]
        + '[sources.product_usage]\nenabled = true\nkind = "files"\nrecords = "daily"\n\n'
        + f"[sources.product_usage.files]\npath = {json.dumps(str(folder))}\n"
        + text[end:]
    )
    result = cli(config, "sync")
    assert "Traceback" not in result.stderr
    assert result.code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    engine = create_store_engine(f"sqlite:///{store}")
    try:
        with engine.connect() as connection:
            usage = {
                (row.account_key, row.metric, row.day.isoformat()): row.value
                for row in connection.execute(select(table_of(UsageDaily)))
            }
            reasons = sorted(
                row.reason
                for row in connection.execute(
                    select(table_of(Quarantine)).where(
                        table_of(Quarantine).c.source == "product_usage"
                    )
                )
            )
    finally:
        engine.dispose()
    key = "hostile0.example"
    assert usage[(key, "logins", "2026-06-01")] == 12
    assert usage[(key, "logins", "2026-06-02")] == 1234.5
    assert usage[(key, "logins", "2026-06-03")] == 7
    assert usage[(key, "logins", "2026-06-04")] == 3
    assert usage[(key, "logins", "2026-06-08")] == 5  # the NUL is gone from the metric
    # A row for an account no CRM knows yet is kept, waiting for its account.
    assert ("no-such-customer.example", "logins", "2026-06-01") in usage
    joined = "\n".join(reasons)
    for why in ("06/05/2026", "NaN", "1e400", "2026-02-30", "not a JSON object"):
        assert why in joined, (why, reasons)
    # Nothing else was refused, and no row was stored twice.
    assert len(reasons) == 5, reasons
    assert len([k for k in usage if k[0] == key]) == 5
