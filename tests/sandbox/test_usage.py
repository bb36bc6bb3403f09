"""The product usage API: four pagination styles over one deterministic stream, and files."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from clghub.sandbox.app import create_app
from clghub.sandbox.generator import generate
from clghub.sandbox.inprocess import InProcessTransport
from clghub.sandbox.state import SandboxOptions, SandboxState
from clghub.sandbox.usage_files import daily_events, write_usage_files
from clghub.sandbox.usage_model import METRICS, UsageModel
from tests.sandbox.conftest import AS_OF

AUTH = {"Authorization": "Bearer any-token"}


@pytest.fixture(scope="module")
def usage_state() -> Iterator[SandboxState]:
    state = SandboxState(SandboxOptions(seed=13, accounts=40, as_of=AS_OF, usage_days=12))
    generate(state)
    yield state
    state.close()


def _client(state: SandboxState) -> httpx.Client:
    return httpx.Client(transport=InProcessTransport(create_app(state)), base_url="http://sandbox")


@pytest.fixture(scope="module")
def client(usage_state: SandboxState) -> Iterator[httpx.Client]:
    with _client(usage_state) as test_client:
        yield test_client


def _key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    return (row["updated_at"], row["account_key"], row["metric"], row["day"])


def _by_cursor(client: httpx.Client, path: str, limit: int, **params: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(10_000):
        query = {"limit": str(limit), **params, **({"cursor": cursor} if cursor else {})}
        body = client.get(path, params=query, headers=AUTH).json()
        rows.extend(body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            return rows
    raise AssertionError("pagination did not end")


def test_every_pagination_style_pages_the_same_stream(client: httpx.Client) -> None:
    by_cursor = _by_cursor(client, "/usage/v1/daily", 997)
    assert len(by_cursor) > 2000
    assert [_key(r) for r in by_cursor] == sorted(_key(r) for r in by_cursor)
    assert len({_key(r) for r in by_cursor}) == len(by_cursor)

    first = client.get("/usage/v1/daily/pages", params={"per_page": 700}, headers=AUTH).json()
    by_page = list(first["data"])
    assert first["total"] == len(by_cursor)
    for page in range(2, first["total_pages"] + 1):
        body = client.get(
            "/usage/v1/daily/pages", params={"per_page": 700, "page": page}, headers=AUTH
        ).json()
        assert body["page"] == page
        by_page.extend(body["data"])
    assert by_page == by_cursor

    by_offset: list[dict[str, Any]] = []
    offset = 0
    while True:
        body = client.get(
            "/usage/v1/daily/offset", params={"offset": offset, "limit": 1234}, headers=AUTH
        ).json()
        assert body["total"] == len(by_cursor)
        if not body["data"]:
            break
        by_offset.extend(body["data"])
        offset += len(body["data"])
    assert by_offset == by_cursor

    by_link: list[dict[str, Any]] = []
    url: str | None = "/usage/v1/daily/link?limit=1500"
    while url:
        response = client.get(url, headers=AUTH)
        by_link.extend(response.json())
        link = response.headers.get("link")
        url = link.split(";")[0].strip("<>") if link else None
        if link:
            assert link.endswith('; rel="next"')
    assert by_link == by_cursor


def test_rows_are_well_formed(client: httpx.Client, usage_state: SandboxState) -> None:
    rows = _by_cursor(client, "/usage/v1/daily", 5000)
    assert {r["metric"] for r in rows} == set(METRICS)
    first_day = AS_OF - timedelta(days=12)
    for row in rows:
        day = date.fromisoformat(row["day"])
        assert first_day <= day < AS_OF
        assert row["updated_at"] == f"{(day + timedelta(days=1)).isoformat()}T02:00:00Z"
        assert isinstance(row["value"], int | float)
        assert row["value"] >= 0
        if row["metric"] == "nps":
            assert isinstance(row["value"], int)
            assert row["value"] <= 10
    per_day: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in rows:
        per_day[(row["account_key"], row["day"])].add(row["metric"])
    # Every active day has every metric but nps; nps only on some days.
    assert all(len(metrics - {"nps"}) == len(METRICS) - 1 for metrics in per_day.values())
    answered = sum("nps" in metrics for metrics in per_day.values())
    assert 0 < answered < len(per_day) / 4


def test_since_is_inclusive_and_filters_by_updated_at(client: httpx.Client) -> None:
    every = _by_cursor(client, "/usage/v1/daily", 5000)
    stamps = sorted({r["updated_at"] for r in every})
    since = stamps[5]
    later = _by_cursor(client, "/usage/v1/daily", 5000, since=since)
    assert later == [r for r in every if r["updated_at"] >= since]
    # One millisecond later: that day is excluded.
    moment = datetime.fromisoformat(since.replace("Z", "+00:00")) + timedelta(milliseconds=1)
    after = _by_cursor(client, "/usage/v1/daily", 5000, since=moment.isoformat())
    assert after == [r for r in every if r["updated_at"] > since]
    total = client.get(
        "/usage/v1/daily/offset", params={"since": since, "limit": 1}, headers=AUTH
    ).json()["total"]
    assert total == len(later)


def test_bad_requests_get_clear_errors(client: httpx.Client) -> None:
    assert client.get("/usage/v1/daily").status_code == 401
    too_many = client.get("/usage/v1/daily", params={"limit": 5001}, headers=AUTH)
    assert too_many.status_code == 400
    assert "limit" in too_many.json()["message"]
    bad_cursor = client.get("/usage/v1/daily", params={"cursor": "not-ours!"}, headers=AUTH)
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["error"] == "invalid_cursor"
    assert (
        client.get("/usage/v1/daily", params={"since": "yesterday"}, headers=AUTH).status_code
        == 400
    )
    assert client.get("/usage/v1/daily/pages", params={"page": 0}, headers=AUTH).status_code == 400
    past_end = client.get("/usage/v1/daily/pages", params={"page": 10_000}, headers=AUTH).json()
    assert past_end["data"] == []


def test_strict_auth_accepts_only_the_sandbox_token() -> None:
    state = SandboxState(
        SandboxOptions(seed=1, accounts=10, as_of=AS_OF, usage_days=3, strict_auth=True)
    )
    generate(state)
    try:
        with _client(state) as client:
            assert client.get("/usage/v1/daily", headers=AUTH).status_code == 401
            good = {"Authorization": f"Bearer {state.credentials.usage_token}"}
            assert client.get("/usage/v1/daily", headers=good).status_code == 200
            client.post("/_sandbox/tokens/expire", json={"system": "usage"})
            assert client.get("/usage/v1/daily", headers=good).status_code == 401
    finally:
        state.close()


def test_a_day_appears_once_final(usage_state: SandboxState) -> None:
    options = usage_state.options
    model = UsageModel(
        usage_state.db, seed=options.seed, anchor=options.anchor, usage_days=options.usage_days
    )
    last = model.last_day
    final = datetime.combine(
        date.fromordinal(last + 1), datetime.min.time(), tzinfo=UTC
    ) + timedelta(hours=2)
    assert model.visible_through(final - timedelta(seconds=1)) == last - 1
    assert model.visible_through(final) == last
    assert model.first_day_since(final) == last
    assert model.first_day_since(final + timedelta(microseconds=1)) == last + 1


def test_high_roi_use_starts_at_the_first_day_of_value(usage_state: SandboxState) -> None:
    options = usage_state.options
    model = UsageModel(
        usage_state.db, seed=options.seed, anchor=options.anchor, usage_days=options.usage_days
    )
    automations = METRICS.index("automations_run")
    import numpy as np

    accounts = np.arange(model.accounts, dtype=np.int64)
    codes = np.full(model.accounts, automations, dtype=np.int64)
    for day in range(model.first_day, model.last_day + 1):
        values = model.values(accounts, codes, day)
        before = model.value_from > day
        assert (values[before] < 4).all()


def test_usage_files_match_the_api(
    tmp_path: Path, client: httpx.Client, usage_state: SandboxState
) -> None:
    api_rows = _by_cursor(client, "/usage/v1/daily", 5000)
    paths = write_usage_files(usage_state, tmp_path / "daily", file_format="csv")
    assert len(paths) == 12
    from_files: list[dict[str, Any]] = []
    for path in sorted(paths):
        with path.open(newline="", encoding="utf-8") as handle:
            from_files.extend(csv.DictReader(handle))
    assert [(r["account_key"], r["metric"], r["day"], r["updated_at"]) for r in from_files] == [
        (r["account_key"], r["metric"], r["day"], r["updated_at"]) for r in api_rows
    ]
    assert [float(r["value"]) for r in from_files] == [float(r["value"]) for r in api_rows]

    event_paths = write_usage_files(
        usage_state, tmp_path / "events", file_format="jsonl", events=True
    )
    totals: dict[tuple[str, str, str], float] = defaultdict(float)
    seen_ids: set[str] = set()
    for path in event_paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            assert event["event_id"] not in seen_ids
            seen_ids.add(event["event_id"])
            totals[(event["account_key"], event["event"], event["timestamp"][:10])] += event[
                "value"
            ]
    expected = {
        (r["account_key"], r["metric"], r["day"]): float(r["value"]) for r in api_rows if r["value"]
    }
    assert {k: round(v, 6) for k, v in totals.items() if v} == {
        k: round(v, 6) for k, v in expected.items()
    }
    assert len(seen_ids) > len(expected), "count metrics arrive as several events a day"


def test_events_split_counts_and_keep_measures_whole() -> None:
    parts = daily_events(5, ("pa_x", "automations_run", 738000, 17))
    assert sum(p[4] for p in parts) == 17
    assert all(p[4] > 0 for p in parts)
    assert daily_events(5, ("pa_x", "automations_run", 738000, 17)) == parts
    assert [p[4] for p in daily_events(5, ("pa_x", "outcome_kpi", 738000, 12.5))] == [12.5]
    assert daily_events(5, ("pa_x", "logins", 738000, 0)) == []
