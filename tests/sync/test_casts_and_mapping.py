"""Casts and declarative mappings: what dirty source values become, and clear errors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from clghub.config import ConfigError, parse_config
from clghub.sync.casts import CASTS, CastError, clean_text, normalize_domain
from clghub.sync.mapping import load_mapping


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-31", datetime(2024, 5, 31, tzinfo=UTC)),
        ("2024-05-31T10:20:30.000+0000", datetime(2024, 5, 31, 10, 20, 30, tzinfo=UTC)),
        ("2024-05-31T12:20:30+02:00", datetime(2024, 5, 31, 10, 20, 30, tzinfo=UTC)),
        ("2024-05-31T10:20:30Z", datetime(2024, 5, 31, 10, 20, 30, tzinfo=UTC)),
        ("1717150830000", datetime(2024, 5, 31, 10, 20, 30, tzinfo=UTC)),
        (1717150830, datetime(2024, 5, 31, 10, 20, 30, tzinfo=UTC)),
        ("2024/05/31", datetime(2024, 5, 31, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_datetimes_in_the_formats_sources_send(raw: object, expected: datetime | None) -> None:
    assert CASTS["datetime"](raw) == expected


@pytest.mark.parametrize("raw", ["31/05/2024", "next tuesday", "2024-02-30", "0001-01-01"])
def test_unreadable_dates_are_errors(raw: str) -> None:
    with pytest.raises(CastError):
        CASTS["date"](raw)


def test_numbers_as_strings_and_exact_money() -> None:
    assert CASTS["money"]("12,000.10") == Decimal("12000.10")
    assert CASTS["money"](0.1) == Decimal("0.1")
    assert CASTS["int"]("42") == 42
    assert CASTS["int"]("42.0") == 42
    with pytest.raises(CastError):
        CASTS["int"]("42.5")
    for bad in ("NaN", "Infinity", "ten", True):
        with pytest.raises(CastError):
            CASTS["decimal"](bad)
    with pytest.raises(CastError, match="out of range"):
        CASTS["float"]("1e400")
    # Whatever a mapping's bounds, money the store cannot hold is refused, not crashed on.
    assert CASTS["money"]("-922337203685477.5807") == Decimal("-922337203685477.5807")
    for absurd in ("1e15", -(10**16), "922337203685477.5808"):
        with pytest.raises(CastError, match="too large to be money"):
            CASTS["money"](absurd)


def test_text_loses_nul_and_control_characters_but_keeps_every_plane() -> None:
    assert clean_text("O'Brien\x00 & Sons\x07") == "O'Brien & Sons"
    assert (
        clean_text("emoji \U0001f600 cjk \u4e2d \U00020000")
        == "emoji \U0001f600 cjk \u4e2d \U00020000"
    )
    assert clean_text("half \ud800 surrogate") == "half  surrogate"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.Acme.com/about", "acme.com"),
        ("acme.co.uk", "acme.co.uk"),
        ("jane@Acme.io", "acme.io"),
        ("not a domain", None),
        ("http://localhost", None),
    ],
)
def test_domains_are_normalized(raw: str, expected: str | None) -> None:
    assert normalize_domain(raw) == expected


def test_shipped_mappings_load() -> None:
    for source in ("salesforce", "hubspot", "product_usage"):
        mapping = load_mapping(source)
        assert mapping.streams


def test_mapping_applies_maps_defaults_and_bounds() -> None:
    opportunity = load_mapping("salesforce").streams["Opportunity"]
    record = {
        "Id": "006A",
        "AccountId": "001A",
        "Type": "Upsell",
        "StageName": "Negotiation",
        "Amount": "1500.50",
        "CloseDate": "2025-03-01",
        "SystemModstamp": "2025-03-02T00:00:00.000+0000",
        "IsDeleted": False,
    }
    mapped = opportunity.map(record, source="salesforce")
    assert mapped.row is not None
    assert mapped.row["type"] == "expansion"
    assert mapped.row["status"] == "open"
    assert mapped.row["amount"] == Decimal("1500.50")
    assert mapped.row["close_date"] == date(2025, 3, 1)
    rejected = opportunity.map({**record, "Amount": "2e12"}, source="salesforce")
    assert rejected.row is None
    assert rejected.error == "amount: 2000000000000 is above the maximum 1000000000000"


def test_user_mapping_overrides_key_by_key(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        '[Opportunity.fields]\narr = { from = "Annual_Value__c", cast = "money" }\n'
    )
    config = parse_config({"sources": {"salesforce": {"mapping": "mine.toml"}}}, base_dir=tmp_path)
    mapping = load_mapping("salesforce", config)
    rules = mapping.streams["Opportunity"].fields
    assert rules["arr"].source == "Annual_Value__c"
    assert rules["amount"].source == "Amount"  # untouched keys keep the default
    assert mapping.files[-1] == str(tmp_path / "mine.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[Opportunity.fields]\nammount = "Amount"\n',
            "Opportunity.fields.ammount: no column 'ammount' to map in opportunity",
        ),
        (
            '[Opportunity.fields]\ntype = { from = "Type", map = { "Upsell" = "upsell" } }\n',
            "Opportunity.fields.type.map: 'upsell' is not one of",
        ),
        (
            '[Opportunity.fields]\namount = { from = "Amount", cast = "currency_amount" }\n',
            "Opportunity.fields.amount.cast: unknown cast 'currency_amount'",
        ),
        ('[Widget]\ntarget = "widget"\n', "Widget.target: unknown target 'widget'"),
        ('[Account]\nidd = "Id"\n', "Account.idd: unknown key"),
        ("[Account\n", "invalid TOML"),
    ],
)
def test_bad_mapping_names_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    config = parse_config({"sources": {"salesforce": {"mapping": str(path)}}})
    with pytest.raises(ConfigError) as info:
        load_mapping("salesforce", config)
    first = str(info.value.problems[0])
    assert first.startswith(str(path))
    assert expected in first
