"""Serving: HTTP and HTTPS with a local CA, the control surface, the CLI and the config it writes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import requests
from typer.testing import CliRunner

from clghub.cli.app import app
from clghub.config import load_config
from clghub.sandbox.config_out import SandboxEndpoints, write_config
from clghub.sandbox.server import SandboxServer, SandboxServerError
from clghub.sandbox.state import SandboxOptions
from tests.sandbox.conftest import AS_OF

SLACK = {"Authorization": "Bearer xoxb-test"}


def test_http_and_https_serve_the_same_app(sandbox: SandboxServer) -> None:
    plain = httpx.get(f"{sandbox.http_url}/_sandbox/health").json()
    assert plain["status"] == "ok"
    assert plain["accounts"] == 60
    secure = requests.get(
        f"{sandbox.https_url}/_sandbox/health", verify=str(sandbox.ca_path), timeout=10
    )
    assert secure.json()["seed"] == plain["seed"]
    by_name = sandbox.https_url.replace("127.0.0.1", "localhost")
    assert requests.get(f"{by_name}/_sandbox/health", verify=str(sandbox.ca_path), timeout=10).ok
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{sandbox.https_url}/_sandbox/health", timeout=10)
    assert sandbox.ca_path.read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_requests_are_counted_by_route_template(sandbox: SandboxServer) -> None:
    with httpx.Client(base_url=sandbox.http_url) as client:
        client.post("/_sandbox/requests/reset")
        for _ in range(3):
            client.get(
                "/crm/v3/objects/companies",
                params={"limit": 2},
                headers={"Authorization": "Bearer t"},
            )
        client.get(
            "/crm/v3/objects/contacts", params={"limit": 2}, headers={"Authorization": "Bearer t"}
        )
        client.get("/usage/v1/daily", params={"limit": 1})
        client.post("/api/auth.test", headers=SLACK)
        client.get("/no/such/path")
        counts = client.get("/_sandbox/requests").json()
    entries = {(e["method"], e["path"], e["status"]): e["count"] for e in counts["requests"]}
    assert entries[("GET", "/crm/v3/objects/{object}", 200)] == 4
    assert entries[("GET", "/usage/v1/daily", 401)] == 1
    assert entries[("POST", "/api/auth.test", 200)] == 1
    assert entries[("GET", "(no route)", 404)] == 1
    assert counts["total"] == 7
    salesforce = requests.get(
        f"{sandbox.https_url}/services/data/v62.0/query",
        params={"q": "SELECT Id FROM Account LIMIT 1"},
        headers={"Authorization": "Bearer session"},
        verify=str(sandbox.ca_path),
        timeout=10,
    )
    assert salesforce.status_code in (200, 401)
    after = httpx.get(f"{sandbox.http_url}/_sandbox/requests").json()["requests"]
    assert any(e["path"] == "/services/data/{version}/query" for e in after)


def test_reset_regenerates_and_clears(sandbox: SandboxServer) -> None:
    with httpx.Client(base_url=sandbox.http_url) as client:
        client.post(
            "/api/chat.postMessage",
            json={"channel": "#finance", "text": "before reset"},
            headers=SLACK,
        )
        client.post("/_sandbox/faults", json={"rate": 0.0})
        before = client.get("/_sandbox/slack/messages").json()["messages"]
        assert before
        sandbox.state.db.execute("DELETE FROM hs_companies")
        reset = client.post("/_sandbox/reset").json()
        assert reset["status"] == "reset"
        assert client.get("/_sandbox/slack/messages").json()["messages"] == []
        # Only the message dump just above was counted since the reset.
        assert client.get("/_sandbox/requests").json()["total"] == 1
        assert (
            sandbox.state.db.execute("SELECT count(*) FROM hs_companies").fetchone()[0]
            == reset["rows"]["hs_companies"]
        )
        assert client.get("/usage/v1/daily", params={"limit": 3}, headers=SLACK).status_code == 200


def test_tokens_expire_on_demand(sandbox: SandboxServer) -> None:
    with httpx.Client(base_url=sandbox.http_url) as client:
        headers = {"Authorization": "Bearer xoxb-about-to-expire"}
        assert client.post("/api/auth.test", headers=headers).json()["ok"] is True
        assert (
            client.post("/_sandbox/tokens/expire", json={"system": "slack"}).json()["expired"] >= 1
        )
        assert client.post("/api/auth.test", headers=headers).json() == {
            "ok": False,
            "error": "invalid_auth",
        }
        assert (
            client.post("/api/auth.test", headers={"Authorization": "Bearer xoxb-new"}).json()["ok"]
            is True
        )
        assert client.post("/_sandbox/tokens/expire", json={"system": "ftp"}).status_code == 400
        # The fixed bot token was expired too (revoked): a reset restores it.
        fixed = {"Authorization": f"Bearer {sandbox.state.credentials.slack_token}"}
        assert client.post("/api/auth.test", headers=fixed).json()["ok"] is False
        client.post("/_sandbox/reset")
        assert client.post("/api/auth.test", headers=fixed).json()["ok"] is True


def test_bulk_import_and_clock(sandbox: SandboxServer) -> None:
    with httpx.Client(base_url=sandbox.http_url) as client:
        created = client.post(
            "/_sandbox/bulk-import", json={"object": "contacts", "count": 300, "mode": "create"}
        ).json()
        assert created["count"] == 300
        db = sandbox.state.db
        assert (
            db.execute(
                "SELECT count(*) FROM hs_contacts WHERE lastmodifieddate = ?",
                (created["timestamp"],),
            ).fetchone()[0]
            == 300
        )
        touched = client.post(
            "/_sandbox/bulk-import", json={"object": "companies", "count": 10}
        ).json()
        assert touched["count"] == 10
        same = db.execute(
            "SELECT count(*) FROM hs_companies WHERE hs_lastmodifieddate = ? AND updated_at = ?",
            (touched["timestamp"], touched["timestamp"]),
        ).fetchone()[0]
        assert same == 10
        assert (
            client.post("/_sandbox/bulk-import", json={"object": "widgets", "count": 1}).status_code
            == 400
        )
        before = client.get("/_sandbox/health").json()["now"]
        after = client.post("/_sandbox/clock/advance", json={"seconds": 7200}).json()["now"]
        assert after > before


def test_a_state_directory_survives_a_restart(tmp_path: Path) -> None:
    options = SandboxOptions(seed=4, accounts=20, as_of=AS_OF, state_dir=tmp_path / "state")
    with SandboxServer(options) as first:
        assert first.summary is not None
        assert not first.summary.reused
        httpx.post(
            f"{first.http_url}/api/chat.postMessage",
            json={"channel": "#general", "text": "kept"},
            headers=SLACK,
        )
        ca = first.ca_path.read_bytes()
    with SandboxServer(
        SandboxOptions(seed=4, accounts=20, as_of=AS_OF, state_dir=tmp_path / "state")
    ) as second:
        assert second.summary is not None
        assert second.summary.reused
        assert second.ca_path.read_bytes() == ca
        texts = [
            m["text"]
            for m in httpx.get(f"{second.http_url}/_sandbox/slack/messages").json()["messages"]
        ]
        assert texts == ["kept"]


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = SandboxServer(SandboxOptions(accounts=5, as_of=AS_OF), http_port=port)
        with pytest.raises(SandboxServerError, match=f"127.0.0.1:{port}"):
            server.start()


def test_config_out_loads_cleanly(sandbox: SandboxServer, tmp_path: Path) -> None:
    endpoints = SandboxEndpoints(
        http_url=sandbox.http_url,
        https_url=sandbox.https_url,
        ca_path=sandbox.ca_path,
        as_of=AS_OF.isoformat(),
    )
    config_path, secrets_path = write_config(tmp_path / "clghub.toml", endpoints)
    assert oct(secrets_path.stat().st_mode & 0o777) == "0o600"
    config = load_config(config_path, environ={})
    salesforce = config.sources.salesforce
    assert salesforce.enabled
    assert salesforce.login_url == sandbox.https_url
    assert salesforce.ca_bundle == str(sandbox.ca_path)
    assert salesforce.password is not None
    assert salesforce.password.reveal()
    assert config.sources.hubspot.base_url == sandbox.http_url
    assert config.sources.hubspot.access_token is not None
    rest = config.sources.product_usage.rest
    assert rest is not None
    assert rest.base_url == sandbox.http_url
    assert rest.token is not None
    assert rest.token.reveal() == sandbox.state.credentials.usage_token
    assert config.slack.enabled
    assert config.slack.base_url == f"{sandbox.http_url}/api/"
    assert config.writeback.salesforce.enabled
    assert config.writeback.hubspot.enabled
    assert config.reporting.as_of == AS_OF.isoformat()
    assert str(config.store.url).startswith("sqlite:///")
    # The secrets work against the sandbox.
    slack_token = config.slack.token
    assert slack_token is not None
    answer = httpx.post(
        f"{sandbox.http_url}/api/auth.test",
        headers={"Authorization": f"Bearer {slack_token.reveal()}"},
    )
    assert answer.json()["ok"] is True


def test_cli_usage_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "sandbox",
            "usage-files",
            "--out",
            str(tmp_path / "u"),
            "--accounts",
            "8",
            "--as-of",
            "2025-06-30",
            "--days",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == [
        "usage-2025-06-27.csv",
        "usage-2025-06-28.csv",
        "usage-2025-06-29.csv",
    ]
    bad = CliRunner().invoke(
        app, ["sandbox", "usage-files", "--out", str(tmp_path), "--as-of", "June"]
    )
    assert bad.exit_code != 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_cli_serve_runs_until_sigterm(tmp_path: Path) -> None:
    port, tls_port = _free_port(), _free_port()
    config = tmp_path / "out" / "clghub.toml"
    command = [
        sys.executable,
        "-m",
        "clghub",
        "sandbox",
        "serve",
        "--port",
        str(port),
        "--tls-port",
        str(tls_port),
        "--accounts",
        "15",
        "--as-of",
        "2025-06-30",
        "--state",
        str(tmp_path / "state"),
        "--config-out",
        str(config),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLGHUB_")}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1).status_code
                    == 200
                ):
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the sandbox did not come up"
            time.sleep(0.1)
        ca = tmp_path / "state" / "ca.pem"
        assert requests.get(
            f"https://127.0.0.1:{tls_port}/_sandbox/health", verify=str(ca), timeout=5
        ).ok
        for _ in range(100):
            if config.exists():
                break
            time.sleep(0.05)
        assert (
            load_config(config, environ={}).sources.hubspot.base_url == f"http://127.0.0.1:{port}"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert f"http://127.0.0.1:{port}" in out
    assert f"https://127.0.0.1:{tls_port}" in out
    assert "sandbox stopped" in err


def test_as_of_is_validated() -> None:
    result = CliRunner().invoke(
        app, ["sandbox", "serve", "--as-of", "2025-13-01", "--port", "0", "--tls-port", "0"]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert "YYYY-MM-DD" in str(result.exception)
