"""The Slack client's retry rules on exchanges the sandbox cannot shape exactly.

A body cut short inside a multi-byte UTF-8 character fails in slack-sdk's
decoding, before any JSON parsing: it must count as a truncated answer (retry
a read; look in the channel before reposting), not crash the run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clghub.config.models import SlackConfig
from clghub.config.refs import SecretRef
from clghub.connectors.slack import SlackMessenger
from clghub.connectors.slack.client import CappedBackoff

WHOLE = json.dumps(
    {"ok": True, "user": "clghub", "team": "Café Équipe", "user_id": "U1"}, ensure_ascii=False
).encode()
CUT = WHOLE[: WHOLE.index("é".encode()) + 1]  # the first byte of a two-byte character


@pytest.fixture
def slack_api() -> Iterator[tuple[str, list[str]]]:
    answers = iter([CUT, WHOLE])
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.path)
            body = next(answers, WHOLE)
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_body_cut_inside_a_character_is_read_again(slack_api: tuple[str, list[str]]) -> None:
    base_url, seen = slack_api
    config = SlackConfig(
        enabled=True, base_url=base_url, token=SecretRef.of_value("xoxb-test"), max_retries=2
    )
    assert SlackMessenger(config).check() == "clghub in Café Équipe"
    assert seen == ["/api/auth.test", "/api/auth.test"]


def test_backoff_between_retries_is_capped() -> None:
    ceilings: list[float] = []
    backoff = CappedBackoff(cap=2.0, jitter=lambda low, high: ceilings.append(high) or high)
    waits = [backoff.calculate_sleep_duration(attempt) for attempt in range(12)]
    assert ceilings[:4] == [0.5, 1.0, 2.0, 2.0]
    assert max(waits) == 2.0
