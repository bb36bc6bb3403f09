"""``clghub writeback``, ``digest`` and ``alerts`` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from clghub.cli.app import app
from clghub.config import ClghubConfig, load_config
from clghub.sandbox.server import SandboxServer
from clghub.store.engine import create_store_engine, store_url
from clghub.store.migrate import upgrade
from tests.outputs.builders import StoreData, requests_made, reset_requests, salesforce_accounts


@pytest.mark.parametrize("command", ["writeback", "digest", "alerts"])
def test_each_command_has_help_with_an_example(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert f"Example: clghub {command}" in result.output
    assert "--dry-run" in result.output


@pytest.fixture
def store(config_path: Path, config: ClghubConfig) -> Engine:
    engine = create_store_engine(store_url(load_config(config_path)))
    upgrade(engine)
    return engine


def test_dry_runs_print_what_would_be_sent_and_send_nothing(
    sandbox: SandboxServer, config: ClghubConfig, config_path: Path, store: Engine, tmp_path: Path
) -> None:
    data = StoreData(store)
    ((record, name),) = salesforce_accounts(config, 1)
    data.add_play(data.add(name, [("salesforce", record)]))
    reset_requests(sandbox)
    runner = CliRunner()
    writeback = runner.invoke(app, ["--config", str(config_path), "writeback", "--dry-run"])
    assert writeback.exit_code == 0, writeback.output
    assert "dry run: nothing sent" in writeback.output
    assert "Value_Score__c" in writeback.output
    digest = runner.invoke(
        app, ["--config", str(config_path), "digest", "--dry-run", "--out", str(tmp_path / "d")]
    )
    assert digest.exit_code == 0, digest.output
    assert "Weekly value digest · 2026-W47" in digest.output
    assert (tmp_path / "d" / "digest-2026-W47.json").exists()
    alerts = runner.invoke(app, ["--config", str(config_path), "alerts", "--dry-run"])
    assert alerts.exit_code == 0, alerts.output
    assert "1 play(s) to announce; dry run: nothing was sent" in alerts.output
    assert sum(requests_made(sandbox).values()) == 0
    store.dispose()


def test_a_bad_period_exits_2_with_a_clear_message(
    sandbox: SandboxServer, config_path: Path
) -> None:
    from clghub.cli.app import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(config_path), "digest", "--dry-run", "--period", "2026-47"])
    assert exit_info.value.code == 2
