"""Configuration: the example loads; every class of bad input gets one clear line, exit 2."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from clghub.cli.app import main
from clghub.config import ClghubConfig, ConfigError, SecretRef, load_config, parse_config
from clghub.config.secrets import REDACTOR

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_example_loads_with_defaults() -> None:
    config = load_config(EXAMPLE)
    assert config.store.url == "sqlite:///clghub.db"
    assert config.reporting.currency == "USD"
    assert config.schedule.jobs["digest"] == "0 8 * * mon"
    drivers, bands = config.scorecard("enterprise")
    assert bands.green == 75
    assert drivers["executive_engagement"].worst == 120
    assert drivers["adoption_depth"].normalize == "percentile"


def _model_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        if name in ("base_dir", "source_path"):
            continue
        keys.append(prefix + name)
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                keys.extend(_model_keys(candidate, f"{prefix}{name}."))
    return keys


def test_example_documents_every_key() -> None:
    """Every key clghub accepts appears in the example (set, or commented out)."""
    text = EXAMPLE.read_text()
    missing = []
    for dotted in _model_keys(ClghubConfig):
        leaf = dotted.rsplit(".", 1)[-1]
        as_key = re.search(rf"\b{re.escape(leaf)}\s*=", text)
        if not (as_key or f"[{dotted}" in text):
            missing.append(dotted)
    assert missing == []


def test_enabled_sources_resolve_secrets_from_environment(tmp_path: Path) -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    data["sources"]["hubspot"]["enabled"] = True
    data["slack"]["enabled"] = True
    config = parse_config(
        data,
        environ={
            "HUBSPOT_ACCESS_TOKEN": "pat-na1-0123456789",
            "SLACK_BOT_TOKEN": "xoxb-secret-value",
        },
    )
    token = config.sources.hubspot.access_token
    assert isinstance(token, SecretRef)
    assert token.reveal() == "pat-na1-0123456789"
    assert "pat-na1" not in repr(config)
    assert "xoxb" not in repr(config.slack)
    assert REDACTOR.redact("Bearer pat-na1-0123456789") == "Bearer ***"


def test_disabled_sources_need_no_secrets() -> None:
    config = parse_config(
        {"sources": {"hubspot": {"access_token": {"env": "UNSET_VARIABLE_X"}}}}, environ={}
    )
    assert config.sources.hubspot.access_token is not None
    assert not config.sources.hubspot.access_token.resolved


def test_secrets_file_and_file_references(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text("# comment\nHUBSPOT_ACCESS_TOKEN='from-file-token'\n")
    (tmp_path / "slack.token").write_text("xoxb-from-a-file\n")
    (tmp_path / "clghub.toml").write_text(
        'secrets_file = "secrets.env"\n'
        '[sources.hubspot]\nenabled = true\naccess_token = { env = "HUBSPOT_ACCESS_TOKEN" }\n'
        '[slack]\nenabled = true\ntoken = { file = "slack.token" }\n'
    )
    config = load_config(tmp_path / "clghub.toml", environ={})
    assert config.sources.hubspot.access_token is not None
    assert config.sources.hubspot.access_token.reveal() == "from-file-token"
    assert config.slack.token is not None
    assert config.slack.token.reveal() == "xoxb-from-a-file"


BAD_CONFIGS = [
    pytest.param(
        '[store]\nurll = "sqlite:///x.db"\n',
        "store.urll: unknown key (did you mean 'url'?)",
        id="typo",
    ),
    pytest.param("[nonsense]\nx = 1\n", "nonsense: unknown key", id="unknown-section"),
    pytest.param(
        '[clv]\ndiscount_rate = "ten"\n',
        "clv.discount_rate: input should be a valid number",
        id="wrong-type",
    ),
    pytest.param(
        '[sources.salesforce]\nenabled = true\nusername = "u"\n',
        "sources.salesforce.password: required when auth = 'password'",
        id="missing-required",
    ),
    pytest.param(
        '[schedule.jobs]\nsync = "61 * * * *"\n',
        "schedule.jobs.sync: bad cron expression '61 * * * *'",
        id="bad-cron",
    ),
    pytest.param(
        '[schedule]\ntimezone = "Mars/Olympus"\n',
        "schedule.timezone: unknown time zone",
        id="bad-timezone",
    ),
    pytest.param(
        '[sources.hubspot]\nenabled = true\naccess_token = { env = "CLGHUB_TEST_UNSET_TOKEN" }\n',
        "sources.hubspot.access_token: environment variable CLGHUB_TEST_UNSET_TOKEN is not set",
        id="unset-env",
    ),
    pytest.param(
        '[sources.hubspot]\nenabled = true\naccess_token = "pat-literal-secret"\n',
        "sources.hubspot.access_token: must be a reference",
        id="literal-secret",
    ),
    pytest.param("store = [1, 2\n", "invalid TOML", id="bad-toml"),
    pytest.param(
        "[incentives]\nshares = { sales = 0.7 }\n",
        "incentives.shares: shares must add up to 1.0",
        id="shares",
    ),
    pytest.param(
        '[writeback.hubspot]\nfields = { value_score = "x_score" }\n',
        "writeback.hubspot.fields.value_score: target 'x_score' is not listed in owned_fields",
        id="unowned-field",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS)
def test_bad_config_is_one_line_exit_2(
    text: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "clghub.toml"
    path.write_text(text)
    code, out, err = run_cli(["--config", str(path), "check", "--offline"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{path}: ")
    assert expected in lines[0]
    assert "Traceback" not in err
    assert "pat-literal-secret" not in err + out


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["--config", str(tmp_path / "nope.toml"), "status"], capsys)
    assert code == 2
    assert "nope.toml: no such file" in err


def test_config_from_environment_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text('[store]\nurl = "sqlite:///s.db"\n')
    monkeypatch.setenv("CLGHUB_CONFIG", str(path))
    code, out, _ = run_cli(["check", "--offline"], capsys)
    assert code == 0
    assert f"OK   config  {path}: valid" in out


def test_subprocess_error_has_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "clghub.toml"
    path.write_text("[store]\nurl = 5\n")
    result = subprocess.run(
        [sys.executable, "-m", "clghub", "--config", str(path), "status"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "store.url" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_error_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"store": {"urll": 1}, "clv": {"gross_margin": 2}}, label="c.toml")
    keys = sorted(problem.key for problem in info.value.problems)
    assert keys == ["clv.gross_margin", "store.urll"]


def test_issued_tokens_are_redacted_without_growing_forever() -> None:
    from clghub.config.secrets import Redactor

    redactor = Redactor()
    redactor.register("client-secret-value")
    tokens = [f"00Dsession{n:06d}" for n in range(200)]
    for token in tokens:
        redactor.register_issued(token)
    line = f"login with client-secret-value gave {tokens[-1]} after {tokens[-20]}"
    assert redactor.redact(line) == "login with *** gave *** after ***"
    # A scheduler logs in every run: only the newest issued tokens are kept.
    assert len(redactor._issued) == 32
    assert redactor.redact(tokens[0]) == tokens[0]
    redactor.register_issued("client-secret-value")  # configured first: kept for good
    for token in tokens:
        redactor.register_issued(token + "x")
    assert redactor.redact("client-secret-value") == "***"
