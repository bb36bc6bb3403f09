"""A corpus of broken configs and mappings: each gets one line naming file, key and problem, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clghub.cli.app import main

SF_ON = '[sources.salesforce]\nenabled = true\nusername = "u@x.com"\npassword = { env = "P" }\nconsumer_key = { env = "K" }\nconsumer_secret = { env = "S" }\n'
ENV = {"P": "pw-value-123", "K": "key-value-123", "S": "secret-value-123", "T": "token-value-123"}

CONFIGS: list[tuple[str, str, str]] = [
    ("unknown-top-key", "colour = 'blue'\n", "colour: unknown key"),
    (
        "typo-section",
        "[stor]\nurl = 'sqlite:///x.db'\n",
        "stor: unknown key (did you mean 'store'?)",
    ),
    (
        "typo-key",
        "[store]\nurll = 'sqlite:///x.db'\n",
        "store.urll: unknown key (did you mean 'url'?)",
    ),
    (
        "bad-backend",
        "[store]\nurl = 'mysql://x'\n",
        "store.url: must be a sqlite:/// or postgresql+psycopg:// URL",
    ),
    ("store-url-number", "[store]\nurl = 5\n", "store.url: input should be a valid string"),
    (
        "bool-as-string",
        "[store]\nauto_migrate = 'yes please'\n",
        "store.auto_migrate: input should be a valid boolean",
    ),
    (
        "currency-lower",
        "[reporting]\ncurrency = 'usd'\n",
        "reporting.currency: 'usd' is not a three-letter currency code",
    ),
    (
        "fx-negative",
        "[reporting]\nfx_rates = { EUR = -1 }\n",
        "reporting.fx_rates: rate for EUR must be positive",
    ),
    (
        "fx-own-currency",
        "[reporting]\nfx_rates = { USD = 1 }\n",
        "reporting.fx_rates.USD: the reporting currency needs no rate",
    ),
    (
        "fiscal-month-13",
        "[reporting]\nfiscal_year_start_month = 13\n",
        "reporting.fiscal_year_start_month: input should be less than or equal to 12",
    ),
    (
        "as-of-format",
        "[reporting]\nas_of = '22/11/2026'\n",
        "reporting.as_of: must be a date written YYYY-MM-DD",
    ),
    (
        "timezone",
        "[reporting]\ntimezone = 'Europe/Atlantis'\n",
        "reporting.timezone: unknown time zone 'Europe/Atlantis'",
    ),
    (
        "sf-auth-flow",
        "[sources.salesforce]\nauth = 'magic'\n",
        "sources.salesforce.auth: input should be 'password'",
    ),
    (
        "sf-missing-password",
        '[sources.salesforce]\nenabled = true\nusername = "u"\n',
        "sources.salesforce.password: required when auth = 'password'",
    ),
    (
        "sf-literal-secret",
        '[sources.salesforce]\npassword = "hunter2"\n',
        "sources.salesforce.password: must be a reference",
    ),
    (
        "sf-unset-env",
        SF_ON.replace('{ env = "P" }', '{ env = "CLGHUB_UNSET_VAR" }'),
        "sources.salesforce.password: environment variable CLGHUB_UNSET_VAR is not set",
    ),
    (
        "sf-secret-file-missing",
        SF_ON.replace('{ env = "P" }', '{ file = "nope.txt" }'),
        "sources.salesforce.password: cannot read secret file",
    ),
    (
        "sf-version",
        "[sources.salesforce]\napi_version = 'v62'\n",
        "sources.salesforce.api_version: must look like 62.0",
    ),
    (
        "sf-object",
        "[sources.salesforce]\nobjects = ['Account', 'Lead']\n",
        "sources.salesforce.objects.1: input should be 'Account'",
    ),
    (
        "sf-quota-share",
        "[sources.salesforce]\nquota_share = 1.5\n",
        "sources.salesforce.quota_share: input should be less than or equal to 1",
    ),
    (
        "sf-timeout",
        "[sources.salesforce]\ntimeout_seconds = 0\n",
        "sources.salesforce.timeout_seconds: input should be greater than 0",
    ),
    (
        "hs-token-missing",
        "[sources.hubspot]\nenabled = true\n",
        "sources.hubspot.access_token: required when auth = 'private_app'",
    ),
    (
        "hs-oauth-missing",
        "[sources.hubspot]\nenabled = true\nauth = 'oauth'\n",
        "sources.hubspot.client_id: required when auth = 'oauth'",
    ),
    (
        "usage-kind-table",
        "[sources.product_usage]\nenabled = true\nkind = 'sql'\n",
        "sources.product_usage.sql: a [sql] table is required",
    ),
    (
        "usage-sql-no-since",
        "[sources.product_usage.sql]\nurl = 'sqlite:///w.db'\nquery = 'SELECT 1'\n",
        "sources.product_usage.sql.query: must use the :since parameter",
    ),
    (
        "usage-events-rest",
        "[sources.product_usage]\nenabled = true\nrecords = 'events'\n[sources.product_usage.rest]\nbase_url = 'http://x'\n",
        "sources.product_usage.records: events are read from files",
    ),
    (
        "usage-pagination",
        "[sources.product_usage.rest]\nbase_url = 'http://x'\npagination = 'scroll'\n",
        "sources.product_usage.rest.pagination: input should be 'cursor'",
    ),
    (
        "identity-rule",
        "[identity]\nmatch_on = ['email']\n",
        "identity.match_on.0: input should be 'external_key' or 'domain'",
    ),
    (
        "segment-default",
        "[segments]\ndefault = 'whale'\n",
        "segments.default: 'whale' is not one of names",
    ),
    (
        "segment-rule",
        "[[segments.rules]]\nname = 'giant'\nmin_employees = 5\n",
        "segments.rules.0.name: 'giant' is not one of names",
    ),
    (
        "driver-unknown",
        "[value_score.drivers]\nvibes = { weight = 1 }\n",
        "value_score.drivers.vibes: unknown name 'vibes'",
    ),
    (
        "driver-linear-bounds",
        "[value_score.drivers]\nbreadth = { weight = 1, normalize = 'linear', best = 1 }\n",
        "value_score.drivers.breadth.best: linear normalization needs both best and worst",
    ),
    (
        "driver-negative-weight",
        "[value_score.drivers]\nbreadth = { weight = -1 }\n",
        "value_score.drivers.breadth.weight: input should be greater than or equal to 0",
    ),
    (
        "bands-order",
        "[value_score.bands]\ngreen = 30\nyellow = 60\n",
        "value_score.bands.yellow: must not be above green",
    ),
    (
        "score-segment",
        "[value_score.segments.whales]\nbands = { green = 80, yellow = 50 }\n",
        "value_score.segments.whales: unknown segment",
    ),
    (
        "clv-discount",
        "[clv]\ndiscount_rate = 1.5\n",
        "clv.discount_rate: input should be less than 1",
    ),
    (
        "clv-margin-type",
        "[clv]\ngross_margin = 'high'\n",
        "clv.gross_margin: input should be a valid number",
    ),
    (
        "incentive-shares",
        "[incentives]\nshares = { marketing = 0.5, sales = 0.6, cs = 0.1 }\n",
        "incentives.shares: shares must add up to 1.0",
    ),
    (
        "incentive-team",
        "[incentives]\nshares = { finance = 1.0 }\n",
        "incentives.shares.finance: unknown name 'finance'",
    ),
    (
        "incentive-period",
        "[incentives]\nperiod = 'fortnight'\n",
        "incentives.period: input should be 'month', 'quarter' or 'year'",
    ),
    (
        "plays-deliver",
        "[plays]\ndeliver_to = 'pager'\n",
        "plays.deliver_to: input should be 'owner' or 'channel'",
    ),
    (
        "writeback-unknown-value",
        "[writeback.salesforce]\nfields = { happiness = 'Happy__c' }\nowned_fields = ['Happy__c']\n",
        "writeback.salesforce.fields.happiness: unknown value field",
    ),
    (
        "writeback-unowned",
        "[writeback.salesforce]\nfields = { clv = 'AnnualRevenue' }\n",
        "writeback.salesforce.fields.clv: target 'AnnualRevenue' is not listed in owned_fields",
    ),
    (
        "slack-token-missing",
        "[slack]\nenabled = true\n",
        "slack.token: required when slack is enabled",
    ),
    (
        "cron-fields",
        "[schedule.jobs]\nrun = '* * *'\n",
        "schedule.jobs.run: bad cron expression '* * *'",
    ),
    (
        "cron-range",
        "[schedule.jobs]\ndigest = '0 25 * * mon'\n",
        "schedule.jobs.digest: bad cron expression",
    ),
    (
        "cron-job-name",
        "[schedule.jobs]\nbackup = '0 * * * *'\n",
        "schedule.jobs.backup: unknown name 'backup'",
    ),
    (
        "schedule-timezone",
        "[schedule]\ntimezone = 'Mars/Olympus_Mons'\n",
        "schedule.timezone: unknown time zone",
    ),
    ("log-level", "[logging]\nlevel = 'LOUD'\n", "logging.level: input should be 'DEBUG'"),
    ("secrets-file-missing", "secrets_file = 'no-such.env'\n", "secrets_file: no such file"),
    ("toml-syntax", "[store\nurl = 1\n", "invalid TOML"),
    ("toml-duplicate", "[store]\nurl = 'sqlite:///a.db'\nurl = 'sqlite:///b.db'\n", "invalid TOML"),
]

MAPPINGS: list[tuple[str, str, str]] = [
    (
        "mapping-unknown-column",
        '[Account.fields]\ncolour = "Color__c"\n',
        "Account.fields.colour: no column 'colour' to map in account",
    ),
    (
        "mapping-bad-cast",
        '[Account.fields]\nemployees = { from = "NumberOfEmployees", cast = "integer" }\n',
        "Account.fields.employees.cast: unknown cast 'integer'",
    ),
    (
        "mapping-enum-target",
        '[Opportunity.fields]\nstatus = { from = "StageName", map = { "Closed Won" = "victory" } }\n',
        "Opportunity.fields.status.map: 'victory' is not one of",
    ),
    (
        "mapping-enum-default",
        '[Contact.fields]\nrole = { from = "Buying_Role__c", default = "boss" }\n',
        "Contact.fields.role.default: 'boss' is not one of",
    ),
    (
        "mapping-rule-key",
        '[Account.fields]\nname = { source = "Name" }\n',
        "Account.fields.name.source: unknown key",
    ),
    (
        "mapping-no-from",
        '[Contact.fields]\ntitle = { cast = "str" }\n',
        "Contact.fields.title: needs from =",
    ),
    (
        "mapping-target",
        '[Lead]\ntarget = "lead"\nid = "Id"\n',
        "Lead.target: unknown target 'lead'",
    ),
    ("mapping-no-id", '[Partner]\ntarget = "account"\n', "Partner.id: required"),
    (
        "mapping-min-type",
        '[Opportunity.fields]\namount = { from = "Amount", cast = "money", min = "zero" }\n',
        "Opportunity.fields.amount: min and max must be numbers",
    ),
    ("mapping-syntax", "[Account.fields\n", "invalid TOML"),
]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    _, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), err


@pytest.mark.parametrize(("name", "text", "expected"), CONFIGS, ids=[c[0] for c in CONFIGS])
def test_broken_config(
    name: str,
    text: str,
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    path = _write(tmp_path, name, text)
    code, err = _run(["--config", str(path), "check", "--offline"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{path}: "), lines[0]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err
    for secret in ENV.values():
        assert secret not in err
    assert "hunter2" not in err


@pytest.mark.parametrize(("name", "text", "expected"), MAPPINGS, ids=[m[0] for m in MAPPINGS])
def test_broken_mapping(
    name: str,
    text: str,
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    mapping = _write(tmp_path, name, text)
    config = _write(tmp_path, "clghub", SF_ON + f'mapping = "{mapping}"\n')
    code, err = _run(["--config", str(config), "check", "--offline"], capsys)
    out_lines = [line for line in err.strip().splitlines() if line]
    # `check` reports a bad mapping as a FAIL line on stdout and exits 1; `sync` exits 2.
    code, err = _run(["--config", str(config), "sync"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{mapping}: "), lines[0]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err
    assert out_lines == [] or all("Traceback" not in line for line in out_lines)


def test_corpus_is_large_enough() -> None:
    assert len(CONFIGS) + len(MAPPINGS) >= 30


def test_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken", "[store]\nurl = ['a']\n")
    result = subprocess.run(
        [sys.executable, "-m", "clghub", "--config", str(path), "sync"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith(f"{path}: store.url")
