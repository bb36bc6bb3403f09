"""A clghub config that points every source and destination at a running sandbox.

``write_config`` writes ``clghub.toml`` (or the path given) and a secrets
file next to it holding the sandbox's credentials, referenced from the
config with ``secrets_file`` and ``{ env = "..." }`` as a real deployment
would. The store is a SQLite file next to the config.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from clghub.sandbox.apis.hs_auth import SANDBOX_PRIVATE_APP_TOKEN
from clghub.sandbox.apis.sf_auth import (
    SANDBOX_CONSUMER_KEY,
    SANDBOX_CONSUMER_SECRET,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
)
from clghub.sandbox.state import CREDENTIALS

__all__ = ["SECRET_NAMES", "SandboxEndpoints", "render_config", "write_config"]

# Names of the secrets in the secrets file (and the environment, which wins).
SECRET_NAMES = {
    "salesforce_password": "CLGHUB_SANDBOX_SALESFORCE_PASSWORD",
    "salesforce_consumer_key": "CLGHUB_SANDBOX_SALESFORCE_CONSUMER_KEY",
    "salesforce_consumer_secret": "CLGHUB_SANDBOX_SALESFORCE_CONSUMER_SECRET",
    "hubspot_token": "CLGHUB_SANDBOX_HUBSPOT_TOKEN",
    "slack_token": "CLGHUB_SANDBOX_SLACK_TOKEN",
    "usage_token": "CLGHUB_SANDBOX_USAGE_TOKEN",
}

_SF_FIELDS = {
    "value_score": "Value_Score__c",
    "value_band": "Value_Band__c",
    "value_trend_30d": "Value_Trend_30d__c",
    "value_drivers": "Value_Drivers__c",
    "clv": "CLV__c",
    "clv_growth": "CLV_Growth__c",
    "time_to_first_value_days": "Time_To_First_Value_Days__c",
    "computed_at": "Value_Computed_At__c",
}
_HS_FIELDS = {
    "value_score": "clghub_value_score",
    "value_band": "clghub_value_band",
    "value_trend_30d": "clghub_value_trend_30d",
    "value_drivers": "clghub_value_drivers",
    "clv": "clghub_clv",
    "clv_growth": "clghub_clv_growth",
    "time_to_first_value_days": "clghub_time_to_first_value_days",
    "computed_at": "clghub_computed_at",
}
_FX_RATES = {"EUR": 1.08, "GBP": 1.27, "CAD": 0.73, "AUD": 0.66}


@dataclass(frozen=True)
class SandboxEndpoints:
    http_url: str
    """e.g. http://127.0.0.1:8765 (HubSpot, Slack, usage)."""
    https_url: str
    """e.g. https://127.0.0.1:8766 (Salesforce: simple-salesforce speaks https only)."""
    ca_path: Path
    as_of: str | None = None
    """The day the sandbox's history ends, when pinned (reports use it)."""


def _s(value: str) -> str:
    """A TOML basic string (JSON's escaping is valid TOML for scalar values)."""
    return json.dumps(value, ensure_ascii=False)


def _table(mapping: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{key} = {_s(value)}" for key, value in mapping.items()) + " }"


def _list(values: list[str]) -> str:
    return "[" + ", ".join(_s(value) for value in values) + "]"


def _env(name: str) -> str:
    return "{ env = " + _s(SECRET_NAMES[name]) + " }"


def render_config(endpoints: SandboxEndpoints, *, secrets_file: str, store_file: str) -> str:
    fx = "{ " + ", ".join(f"{code} = {rate}" for code, rate in _FX_RATES.items()) + " }"
    lines = [
        "# clghub configuration for the local sandbox (`clghub sandbox serve --config-out`).",
        "# Every source and destination points at the sandbox; its credentials are in the",
        "# secrets file next to this one.",
        f"secrets_file = {_s(secrets_file)}",
        "",
        "[store]",
        f"url = {_s('sqlite:///' + store_file)}",
        "",
        "[reporting]",
        'currency = "USD"',
        f"fx_rates = {fx}",
    ]
    if endpoints.as_of:
        lines.append(f"as_of = {_s(endpoints.as_of)}")
    lines += [
        "",
        "[sources.salesforce]",
        "enabled = true",
        f"login_url = {_s(endpoints.https_url)}",
        'auth = "password"',
        f"username = {_s(SANDBOX_USERNAME)}",
        f"password = {_env('salesforce_password')}",
        f"consumer_key = {_env('salesforce_consumer_key')}",
        f"consumer_secret = {_env('salesforce_consumer_secret')}",
        f"ca_bundle = {_s(str(endpoints.ca_path))}",
        "",
        "[sources.hubspot]",
        "enabled = true",
        f"base_url = {_s(endpoints.http_url)}",
        'auth = "private_app"',
        f"access_token = {_env('hubspot_token')}",
        "",
        "[sources.product_usage]",
        "enabled = true",
        'kind = "rest"',
        'records = "daily"',
        "",
        "[sources.product_usage.rest]",
        f"base_url = {_s(endpoints.http_url)}",
        'path = "/usage/v1/daily"',
        f"token = {_env('usage_token')}",
        'pagination = "cursor"',
        'records_path = "data"',
        'next_cursor_path = "next_cursor"',
        "page_size = 5000",
        "",
        "[writeback.salesforce]",
        "enabled = true",
        f"fields = {_table(_SF_FIELDS)}",
        f"owned_fields = {_list(list(_SF_FIELDS.values()))}",
        "",
        "[writeback.hubspot]",
        "enabled = true",
        f"fields = {_table(_HS_FIELDS)}",
        f"owned_fields = {_list(list(_HS_FIELDS.values()))}",
        "",
        "[slack]",
        "enabled = true",
        f"base_url = {_s(endpoints.http_url + '/api/')}",
        f"token = {_env('slack_token')}",
        'digest_channel = "#leadership"',
        'alerts_channel = "#cs-alerts"',
        "",
    ]
    return "\n".join(lines)


def render_secrets() -> str:
    values = {
        "salesforce_password": SANDBOX_PASSWORD,
        "salesforce_consumer_key": SANDBOX_CONSUMER_KEY,
        "salesforce_consumer_secret": SANDBOX_CONSUMER_SECRET,
        "hubspot_token": SANDBOX_PRIVATE_APP_TOKEN,
        "slack_token": CREDENTIALS.slack_token,
        "usage_token": CREDENTIALS.usage_token,
    }
    lines = ["# Credentials of the local clghub sandbox (they guard nothing else)."]
    lines += [f"{SECRET_NAMES[name]}={value}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def write_config(path: Path, endpoints: SandboxEndpoints) -> tuple[Path, Path]:
    """Write the config at ``path`` and its secrets file next to it; return both paths."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    secrets_path = path.with_name(path.stem + "-secrets.env")
    store_file = path.stem + ".db"
    fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(render_secrets())
    path.write_text(
        render_config(endpoints, secrets_file=secrets_path.name, store_file=store_file),
        encoding="utf-8",
    )
    return path, secrets_path
