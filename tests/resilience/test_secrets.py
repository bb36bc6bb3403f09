"""Secrets stay secret: not in a log line, an error, the store, an export or a message.

The whole pipeline runs with debug logging (JSON and plain), then every
byte it left behind is searched for every credential in play and every
token the sandbox issued. Failing logins (a wrong password, a revoked token)
are searched too: the errors say what failed, never with what.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from clghub.config import load_config
from clghub.sandbox.server import SandboxServer
from clghub.sandbox.state import SandboxOptions
from tests.resilience.conftest import Org
from tests.support.chaos import cli, cli_process
from tests.support.crm_state import CrmReader, slack_messages

WRONG_PASSWORD = "Wr0ng-Passw0rd-zQ9x7-SECRET"
WRONG_TOKEN = "pat-na1-revoked-7Hc2-SECRET"


def _secrets_of(config: Path) -> list[str]:
    """The values of the secrets file next to ``config`` (what a deployment keeps secret)."""
    values = []
    for line in config.with_name("clghub-secrets.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            values.append(line.split("=", 1)[1].strip())
    assert len(values) >= 5
    return values


def _clghub(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    process = cli_process(config, *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = process.communicate(timeout=600)
    return f"$ clghub {' '.join(args)} (exit {process.returncode})\n{output}"


def test_no_secret_in_logs_errors_store_exports_or_messages(org: Org, tmp_path: Path) -> None:
    config, store = org.fresh_run("secrets")
    text = config.read_text()
    config.write_text(text + '\n[logging]\nlevel = "DEBUG"\njson_format = true\n')
    outputs = [_clghub(config, "--debug", "run")]
    config.write_text(text + '\n[logging]\nlevel = "DEBUG"\n')
    outputs.append(_clghub(config, "--debug", "run"))
    outputs.append(_clghub(config, "check"))
    outputs.append(_clghub(config, "status", "--json"))
    digest_dir = tmp_path / "digest"
    outputs.append(_clghub(config, "digest", "--dry-run", "--out", str(digest_dir)))
    names = [
        line.split()[0]
        for line in _clghub(config, "export", "--list").splitlines()[1:]
        if line.strip()
    ]
    assert "writeback_state" in names
    for name in names:  # in this process: the export is the same, without a start-up each
        exported = cli(config, "export", name, "--format", "json")
        assert exported.code == 0, exported.stderr
        outputs.append(exported.stdout + exported.stderr)
    detail = cli(config, "export", "incentives", "--detail", "--format", "csv")
    outputs.append(detail.stdout + detail.stderr)
    # Errors: a wrong password and a revoked token, through check and sync.
    lines = config.with_name("clghub-secrets.env").read_text().splitlines()
    wrong_values = {
        "CLGHUB_SANDBOX_SALESFORCE_PASSWORD": WRONG_PASSWORD,
        "CLGHUB_SANDBOX_HUBSPOT_TOKEN": WRONG_TOKEN,
    }
    config.with_name("wrong-secrets.env").write_text(
        "".join(
            f"{line.split('=', 1)[0]}={wrong_values[line.split('=', 1)[0]]}\n"
            if line.split("=", 1)[0] in wrong_values
            else line + "\n"
            for line in lines
        )
    )
    wrong = config.with_name("wrong.toml")
    wrong.write_text(text.replace('"clghub-secrets.env"', '"wrong-secrets.env"', 1))
    assert "wrong-secrets.env" in wrong.read_text()
    outputs.append(_clghub(wrong, "check"))
    outputs.append(_clghub(wrong, "--debug", "sync"))
    everything = "\n".join(outputs)
    # The failures are there, and say what failed.
    assert "(exit 1)" in outputs[-1]
    assert "INVALID_LOGIN" in everything or "authentication failure" in everything.lower()

    secrets = [*_secrets_of(config), WRONG_PASSWORD, WRONG_TOKEN, *org.server.state.tokens.known()]
    leaks = [f"{s[:8]}... in the output of a command" for s in secrets if s in everything]
    # The store, byte for byte (database, WAL), and every exported file.
    for path in [*store.parent.glob("clghub.db*"), *digest_dir.iterdir()]:
        content = path.read_bytes()
        leaks += [f"{s[:8]}... in {path.name}" for s in secrets if s.encode() in content]
    # What went out: Slack messages and the CRM fields clghub wrote.
    posted = json.dumps([message.__dict__ for message in slack_messages(org.server)])
    written = json.dumps(CrmReader(org.server).value_fields())
    leaks += [f"{s[:8]}... in Slack" for s in secrets if s in posted]
    leaks += [f"{s[:8]}... in the CRM" for s in secrets if s in written]
    assert not leaks, leaks
    # The config itself holds references, never values.
    assert not [s for s in secrets if s in text]


def test_the_sandbox_binds_to_loopback_by_default() -> None:
    with SandboxServer(SandboxOptions(accounts=2)) as server:
        assert server.http_url.startswith("http://127.0.0.1:")
        assert server.https_url.startswith("https://127.0.0.1:")
        port = int(server.http_url.rsplit(":", 1)[1])
        addresses = [
            a
            for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
            if a[4][0] != "127.0.0.1"
        ]
        for address in addresses[:1]:
            with pytest.raises((ConnectionRefusedError, TimeoutError)):
                socket.create_connection((address[4][0], port), timeout=2).close()
    serve = subprocess.run(
        [sys.executable, "-m", "clghub", "sandbox", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert "127.0.0.1" in serve.stdout


def test_tls_verification_cannot_be_turned_off_silently(org: Org, tmp_path: Path) -> None:
    config, _ = org.fresh_run("tls")
    text = config.read_text()
    # No switch turns verification off: an unknown key is a config error.
    off = config.with_name("off.toml")
    off.write_text(
        text.replace("[sources.salesforce]\n", "[sources.salesforce]\nverify = false\n", 1)
    )
    refused = _clghub(off, "check")
    assert "(exit 2)" in refused
    assert "sources.salesforce.verify: unknown key" in refused
    # Without the sandbox's CA, its certificate is refused, and the error says how to fix it.
    untrusted = config.with_name("untrusted.toml")
    ca_line = next(line for line in text.splitlines() if line.startswith("ca_bundle"))
    untrusted.write_text(text.replace(ca_line + "\n", "", 1))
    assert load_config(untrusted, environ={}).sources.salesforce.ca_bundle is None
    answer = _clghub(untrusted, "check")
    assert "(exit 1)" in answer
    assert "FAIL salesforce" in answer
    assert "TLS verification of https://127.0.0.1" in answer
    assert "set sources.salesforce.ca_bundle" in answer
