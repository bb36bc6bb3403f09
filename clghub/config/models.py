"""Typed configuration: one model per section of ``clghub.toml``.

Every model forbids unknown keys, so a typo is an error rather than a
silently ignored setting. Defaults are the ones ``config.example.toml``
documents.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from clghub.config.refs import SecretRef

__all__ = [
    "ClghubConfig",
    "ClvConfig",
    "DigestConfig",
    "DriverConfig",
    "HubSpotSourceConfig",
    "HubSpotWritebackConfig",
    "IdentityConfig",
    "IncentivesConfig",
    "LoggingConfig",
    "PlaysConfig",
    "ProductUsageSourceConfig",
    "ReportingConfig",
    "RunConfig",
    "SalesforceSourceConfig",
    "SalesforceWritebackConfig",
    "ScheduleConfig",
    "SegmentRule",
    "SegmentsConfig",
    "SlackConfig",
    "SourcesConfig",
    "StoreConfig",
    "TicketWeights",
    "TimeToValueConfig",
    "ValueScoreConfig",
    "WritebackConfig",
]

_CURRENCY = re.compile(r"^[A-Z]{3}$")

SalesforceObject = Literal["Account", "Contact", "Opportunity", "Case", "Task", "User"]
HubSpotObject = Literal["owners", "companies", "contacts", "deals", "tickets"]
MatchRule = Literal["external_key", "domain"]
CrmName = Literal["salesforce", "hubspot"]
Team = Literal["marketing", "sales", "cs"]
JobName = Literal["run", "sync", "score", "writeback", "digest"]
_MATCH_RULES: tuple[MatchRule, ...] = ("external_key", "domain")
_CRMS: tuple[CrmName, ...] = ("salesforce", "hubspot")


def _salesforce_objects() -> list[SalesforceObject]:
    return ["User", "Account", "Contact", "Opportunity", "Case", "Task"]


def _hubspot_objects() -> list[HubSpotObject]:
    return ["owners", "companies", "contacts", "deals", "tickets"]


def _default_shares() -> dict[Team, float]:
    return {"marketing": 0.2, "sales": 0.5, "cs": 0.3}


def _default_jobs() -> dict[JobName, str]:
    return {"run": "0 * * * *", "digest": "0 8 * * mon"}


PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_default=True)


# --------------------------------------------------------------------------- store


class StoreConfig(Section):
    url: str | SecretRef = "sqlite:///clghub.db"
    """SQLAlchemy URL. SQLite paths are relative to the config file."""
    auto_migrate: bool = True
    echo_sql: bool = False

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str | SecretRef) -> str | SecretRef:
        if isinstance(value, str) and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value


class ReportingConfig(Section):
    currency: str = "USD"
    fx_rates: dict[str, Decimal] = Field(default_factory=dict)
    """Units of the reporting currency for one unit of each other currency."""
    timezone: str = "UTC"
    fiscal_year_start_month: Annotated[int, Field(ge=1, le=12)] = 1
    as_of: str | None = None
    """Pin "today" (YYYY-MM-DD) for reproducible reports; empty means today."""
    default_term_months: Annotated[int, Field(ge=1, le=120)] = 12
    """Contract term of a won deal without a contract end date."""
    renewal_grace_days: Annotated[int, Field(ge=0, le=366)] = 90
    """A renewal starting at most this many days after the previous term ended
    bridges the gap (a renewal closed late is not churn and reactivation)."""

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not _CURRENCY.match(value):
            raise ValueError(f"'{value}' is not a three-letter currency code such as USD")
        return value

    @field_validator("fx_rates")
    @classmethod
    def _rates(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for code, rate in value.items():
            if not _CURRENCY.match(code):
                raise ValueError(f"'{code}' is not a three-letter currency code")
            if rate <= 0:
                raise ValueError(f"rate for {code} must be positive")
            if not exact_ratio_fits(rate):
                raise ValueError(
                    f"rate for {code} ({rate}) has too many digits to convert money exactly; "
                    "round it to fewer decimal places"
                )
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("as_of")
    @classmethod
    def _as_of(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", value):
            raise ValueError("must be a date written YYYY-MM-DD")
        return value


# Money is converted in SQL as integer units x numerator / denominator, with
# 64-bit integers on both backends; this bound keeps every intermediate in range.
_EXACT_RATIO_LIMIT = 2**62


def exact_ratio_fits(value: Decimal | float) -> bool:
    """Whether a rate or share, written as a decimal, converts money exactly in SQL."""
    numerator, denominator = Decimal(str(value)).as_integer_ratio()
    return denominator * (2 * abs(numerator) + 1) < _EXACT_RATIO_LIMIT


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{value}'") from None
    return value


# --------------------------------------------------------------------------- sources


class HttpSettings(Section):
    timeout_seconds: Annotated[float, Field(gt=0)] = 60.0
    ca_bundle: str | None = None
    """Extra certificate authority (PEM) to trust, e.g. the sandbox's ca.pem."""
    max_retries: NonNegativeInt = 6
    max_retry_wait_seconds: Annotated[float, Field(gt=0)] = 60.0


class SalesforceSourceConfig(HttpSettings):
    enabled: bool = False
    login_url: str = "https://login.salesforce.com"
    instance_url: str | None = None
    """Only for ``auth = "session"``; the other flows learn it at login."""
    api_version: str = "62.0"
    auth: Literal["password", "soap", "jwt", "client_credentials", "refresh_token", "session"] = (
        "password"
    )
    username: str | None = None
    password: SecretRef | None = None
    security_token: SecretRef | None = None
    consumer_key: SecretRef | None = None
    consumer_secret: SecretRef | None = None
    private_key: SecretRef | None = None
    refresh_token: SecretRef | None = None
    session_id: SecretRef | None = None
    objects: list[SalesforceObject] = Field(default_factory=_salesforce_objects)
    lookback_minutes: NonNegativeInt = 5
    bulk_threshold: NonNegativeInt = 50_000
    """First loads larger than this many records read through Bulk API 2.0."""
    quota_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    """Stop cleanly once this share of the daily API quota is used."""
    mapping: str | None = None

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not re.match(r"^\d{2,3}\.0$", value):
            raise ValueError("must look like 62.0 (no leading v)")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> SalesforceSourceConfig:
        if not self.enabled:
            return self
        needed = {
            "password": ["username", "password", "consumer_key", "consumer_secret"],
            "soap": ["username", "password", "security_token"],
            "jwt": ["username", "consumer_key", "private_key"],
            "client_credentials": ["consumer_key", "consumer_secret"],
            "refresh_token": ["consumer_key", "refresh_token"],
            "session": ["session_id", "instance_url"],
        }[self.auth]
        missing = [key for key in needed if getattr(self, key) is None]
        if missing:
            raise _MissingForFlow(missing[0], f"required when auth = '{self.auth}'")
        return self


class HubSpotSourceConfig(HttpSettings):
    enabled: bool = False
    base_url: str = "https://api.hubapi.com"
    auth: Literal["private_app", "oauth"] = "private_app"
    access_token: SecretRef | None = None
    client_id: str | None = None
    client_secret: SecretRef | None = None
    refresh_token: SecretRef | None = None
    objects: list[HubSpotObject] = Field(default_factory=_hubspot_objects)
    lookback_minutes: NonNegativeInt = 5
    requests_per_10s: PositiveInt | None = None
    """Pace to this many requests per 10 s; empty reads it from the rate-limit headers."""
    search_requests_per_second: Annotated[float, Field(gt=0)] = 4.0
    mapping: str | None = None

    @model_validator(mode="after")
    def _credentials(self) -> HubSpotSourceConfig:
        if not self.enabled:
            return self
        needed = (
            ["access_token"]
            if self.auth == "private_app"
            else ["client_id", "client_secret", "refresh_token"]
        )
        missing = [key for key in needed if getattr(self, key) is None]
        if missing:
            raise _MissingForFlow(missing[0], f"required when auth = '{self.auth}'")
        return self


class RestUsageConfig(HttpSettings):
    base_url: str
    path: str = "/usage/v1/daily"
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    token: SecretRef | None = None
    pagination: Literal["cursor", "page", "offset", "link"] = "cursor"
    records_path: str = "data"
    next_cursor_path: str = "next_cursor"
    cursor_param: str = "cursor"
    page_param: str = "page"
    per_page_param: str = "per_page"
    offset_param: str = "offset"
    limit_param: str = "limit"
    page_size: PositiveInt = 1000
    since_param: str = "since"
    cursor_field: str = "updated_at"


class FileUsageConfig(Section):
    path: str
    """A directory (every *.csv / *.jsonl in it) or a glob pattern."""
    format: Literal["csv", "jsonl"] | None = None


class SqlUsageConfig(Section):
    url: str | SecretRef
    query: str

    @field_validator("query")
    @classmethod
    def _since(cls, value: str) -> str:
        if ":since" not in value:
            raise ValueError("must use the :since parameter to read incrementally")
        return value


class ProductUsageSourceConfig(Section):
    enabled: bool = False
    kind: Literal["rest", "files", "sql"] = "rest"
    records: Literal["daily", "events"] = "daily"
    """``daily``: one row per account, metric and day; ``events``: raw events to roll up."""
    rest: RestUsageConfig | None = None
    files: FileUsageConfig | None = None
    sql: SqlUsageConfig | None = None
    mapping: str | None = None

    @model_validator(mode="after")
    def _kind_section(self) -> ProductUsageSourceConfig:
        if self.enabled and getattr(self, self.kind) is None:
            raise _MissingForFlow(
                self.kind, f"a [{self.kind}] table is required when kind = '{self.kind}'"
            )
        if self.records == "events" and self.kind != "files":
            # Events are added to daily totals; only whole files can be read exactly once.
            raise _MissingForFlow(
                "records",
                "events are read from files (kind = 'files'); aggregate REST and SQL feeds to daily rows",
            )
        return self


class SourcesConfig(Section):
    salesforce: SalesforceSourceConfig = Field(default_factory=SalesforceSourceConfig)
    hubspot: HubSpotSourceConfig = Field(default_factory=HubSpotSourceConfig)
    product_usage: ProductUsageSourceConfig = Field(default_factory=ProductUsageSourceConfig)


# --------------------------------------------------------------------------- identity


class IdentityConfig(Section):
    match_on: list[MatchRule] = Field(default_factory=lambda: list(_MATCH_RULES))
    source_priority: list[CrmName] = Field(default_factory=lambda: list(_CRMS))
    """When one customer is in two CRMs, whose attributes win."""
    ignore_domains: list[str] = Field(
        default_factory=lambda: [
            "gmail.com",
            "yahoo.com",
            "hotmail.com",
            "outlook.com",
            "icloud.com",
            "example.com",
        ]
    )


# --------------------------------------------------------------------------- segments


class SegmentRule(Section):
    name: str
    min_employees: NonNegativeInt | None = None
    min_arr: Decimal | None = None


class SegmentsConfig(Section):
    names: list[str] = Field(default_factory=lambda: ["smb", "mid_market", "enterprise"])
    default: str = "smb"
    rules: list[SegmentRule] = Field(default_factory=list)
    """Used when an account has no segment from its CRM; first match wins."""

    @model_validator(mode="after")
    def _known(self) -> SegmentsConfig:
        if self.default not in self.names:
            raise _MissingForFlow("default", f"'{self.default}' is not one of names {self.names}")
        for index, rule in enumerate(self.rules):
            if rule.name not in self.names:
                raise _MissingForFlow(
                    f"rules.{index}.name", f"'{rule.name}' is not one of names {self.names}"
                )
        return self


# --------------------------------------------------------------------------- value score

DriverName = Literal[
    "outcome_progress",
    "adoption_depth",
    "breadth",
    "time_to_value",
    "executive_engagement",
    "support_friction",
    "sentiment",
]

DRIVER_NAMES: tuple[str, ...] = (
    "outcome_progress",
    "adoption_depth",
    "breadth",
    "time_to_value",
    "executive_engagement",
    "support_friction",
    "sentiment",
)


class DriverConfig(Section):
    weight: Annotated[float, Field(ge=0.0)] = 1.0
    normalize: Literal["percentile", "linear"] = "percentile"
    best: float | None = None
    """For ``linear``: the raw value that scores 100."""
    worst: float | None = None
    """For ``linear``: the raw value that scores 0."""

    @model_validator(mode="after")
    def _linear_bounds(self) -> DriverConfig:
        if self.normalize == "linear":
            if self.best is None or self.worst is None:
                raise _MissingForFlow("best", "linear normalization needs both best and worst")
            if self.best == self.worst:
                raise _MissingForFlow("worst", "must differ from best")
        return self


def _default_drivers() -> dict[DriverName, DriverConfig]:
    return {
        "outcome_progress": DriverConfig(weight=0.25, normalize="linear", best=1.0, worst=0.0),
        "adoption_depth": DriverConfig(weight=0.25, normalize="percentile"),
        "breadth": DriverConfig(weight=0.15, normalize="linear", best=0.8, worst=0.0),
        "time_to_value": DriverConfig(weight=0.10, normalize="linear", best=14, worst=120),
        "executive_engagement": DriverConfig(weight=0.15, normalize="linear", best=14, worst=180),
        "support_friction": DriverConfig(weight=0.05, normalize="percentile"),
        "sentiment": DriverConfig(weight=0.05, normalize="linear", best=10, worst=0),
    }


class BandsConfig(Section):
    green: Annotated[float, Field(ge=0, le=100)] = 70.0
    yellow: Annotated[float, Field(ge=0, le=100)] = 40.0

    @model_validator(mode="after")
    def _ordered(self) -> BandsConfig:
        if self.yellow > self.green:
            raise _MissingForFlow("yellow", "must not be above green")
        return self


class SegmentScorecard(Section):
    drivers: dict[DriverName, DriverConfig] = Field(default_factory=dict)
    bands: BandsConfig | None = None


class TicketWeights(Section):
    """How much one ticket of each priority adds to support friction."""

    low: Annotated[float, Field(ge=0.0)] = 1.0
    medium: Annotated[float, Field(ge=0.0)] = 2.0
    """Also used for tickets without a (known) priority."""
    high: Annotated[float, Field(ge=0.0)] = 4.0
    urgent: Annotated[float, Field(ge=0.0)] = 8.0


class ValueScoreConfig(Section):
    window_days: PositiveInt = 30
    """Usage window the adoption and breadth drivers look at."""
    features: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: {
            "automations_run": 3.0,
            "integrations_synced": 2.0,
            "reports_built": 1.0,
        }
    )
    """High-ROI features (usage metric names) and their weights for adoption depth."""
    active_users_metric: str = "active_users"
    outcome_metric: str = "outcome_kpi"
    sentiment_metric: str = "nps"
    drivers: dict[DriverName, DriverConfig] = Field(default_factory=_default_drivers)
    bands: BandsConfig = Field(default_factory=BandsConfig)
    segments: dict[str, SegmentScorecard] = Field(default_factory=dict)
    """Per-segment overrides of driver settings and bands."""
    explain_top: Annotated[int, Field(ge=1, le=7)] = 3
    min_coverage: Share = 0.2
    """An account is scored only when drivers with data carry this share of its weights."""
    outcome_cap: Annotated[float, Field(gt=0.0)] = 1.5
    """Outcome progress (KPI / target) is capped here, so one outlier cannot dominate."""
    breadth_roles_weight: Share = 0.2
    """Share of breadth that comes from contact roles active (the rest: active users / seats)."""
    roles_days: PositiveInt = 90
    """A contact role counts as active with a meeting, call or email in this many days."""
    friction_days: PositiveInt = 90
    """Support friction counts the tickets opened in this many days."""
    ticket_weights: TicketWeights = Field(default_factory=TicketWeights)
    sentiment_days: PositiveInt = 180
    """Sentiment averages the sentiment metric (and CSAT) over this many days."""
    csat_weight: Share = 0.0
    """Share of ticket CSAT (1-5, rescaled to 0-10) in sentiment; 0 means NPS only."""

    @model_validator(mode="after")
    def _some_weight(self) -> ValueScoreConfig:
        if sum(d.weight for d in self.drivers.values()) <= 0:
            raise _MissingForFlow("drivers", "at least one driver needs a weight above 0")
        for name, card in self.segments.items():
            merged = {**self.drivers, **card.drivers}
            if sum(d.weight for d in merged.values()) <= 0:
                raise _MissingForFlow(
                    f"segments.{name}.drivers", "at least one driver needs a weight above 0"
                )
        return self


class TimeToValueConfig(Section):
    metric: str = "automations_run"
    threshold: Annotated[float, Field(gt=0)] = 10.0
    """First value = the first day ``metric`` reaches ``threshold``."""
    target_days: PositiveInt = 60


# --------------------------------------------------------------------------- clv


class ClvConfig(Section):
    period_months: Annotated[int, Field(ge=1, le=36)] = 12
    discount_rate: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.10
    """Yearly. Above 0: undiscounted sBG lifetimes can be infinite (alpha <= 1)."""
    gross_margin: Annotated[float, Field(gt=0.0, le=1.0)] = 0.80
    min_cohort_accounts: PositiveInt = 30
    """A segment with fewer renewal-cohort accounts borrows the overall fit."""

    @field_validator("gross_margin")
    @classmethod
    def _margin_exact(cls, value: float) -> float:
        if not exact_ratio_fits(value):
            raise ValueError(f"{value} has too many digits; round it to fewer decimal places")
        return value


class IncentivesConfig(Section):
    period: Literal["month", "quarter", "year"] = "quarter"
    rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.05
    clawback_months: NonNegativeInt = 12
    contraction_nets: bool = True
    shares: dict[Team, Share] = Field(default_factory=_default_shares)
    history_periods: Annotated[int, Field(ge=0, le=24)] = 4
    """Closed periods before the current one that every run recomputes."""

    @field_validator("rate")
    @classmethod
    def _rate_exact(cls, value: float) -> float:
        if not exact_ratio_fits(value):
            raise ValueError(f"{value} has too many digits; round it to fewer decimal places")
        return value

    @field_validator("shares")
    @classmethod
    def _sum_to_one(cls, value: dict[Team, float]) -> dict[Team, float]:
        for team, share in value.items():
            if not exact_ratio_fits(share):
                raise ValueError(
                    f"share of {team} ({share}) has too many digits; round it to fewer decimal places"
                )
        total = sum(Decimal(str(share)) for share in value.values())
        if total != 1:
            raise ValueError(f"shares must add up to 1.0, they add up to {total}")
        return value


class PlaysConfig(Section):
    score_drop_30d: Annotated[float, Field(gt=0)] = 15.0
    red_renewal_days: PositiveInt = 90
    no_exec_meeting_days: PositiveInt = 90
    ttv_overdue: bool = True
    deliver_to: Literal["owner", "channel"] = "channel"
    crm_tasks: bool = False
    group_above: Annotated[int, Field(ge=1, le=1000)] = 5
    """More new plays than this for one recipient in one run go out as grouped
    messages (20 plays each) instead of one message each."""


# --------------------------------------------------------------------------- outputs

VALUE_FIELDS: tuple[str, ...] = (
    "value_score",
    "value_band",
    "value_trend_30d",
    "value_trend_90d",
    "value_drivers",
    "clv",
    "clv_growth",
    "time_to_first_value_days",
    "computed_at",
)


class _CrmWriteback(Section):
    enabled: bool = False
    fields: dict[str, str] = Field(default_factory=dict)
    """clghub value -> CRM field (API name)."""
    owned_fields: list[str] = Field(default_factory=list)
    """The CRM fields clghub may write. Anything else is refused."""
    write_nulls: bool = False

    @model_validator(mode="after")
    def _owned(self) -> _CrmWriteback:
        for value, target in self.fields.items():
            if value not in VALUE_FIELDS:
                raise _MissingForFlow(
                    f"fields.{value}", f"unknown value field; known: {', '.join(VALUE_FIELDS)}"
                )
            if target not in self.owned_fields:
                raise _MissingForFlow(
                    f"fields.{value}", f"target '{target}' is not listed in owned_fields"
                )
        return self


class SalesforceWritebackConfig(_CrmWriteback):
    object: Literal["Account"] = "Account"
    bulk_threshold: PositiveInt = 5_000
    """Above this many changed records, write through a Bulk API 2.0 ingest job."""


class HubSpotWritebackConfig(_CrmWriteback):
    object: Literal["companies"] = "companies"
    property_group: str = "clghub"


class WritebackConfig(Section):
    salesforce: SalesforceWritebackConfig = Field(default_factory=SalesforceWritebackConfig)
    hubspot: HubSpotWritebackConfig = Field(default_factory=HubSpotWritebackConfig)


class DigestConfig(Section):
    top_n: Annotated[int, Field(ge=1, le=20)] = 5
    at_risk_days: PositiveInt = 90
    no_exec_days: PositiveInt = 90
    chart: bool = True


class SlackConfig(HttpSettings):
    enabled: bool = False
    base_url: str = "https://slack.com/api/"
    token: SecretRef | None = None
    digest_channel: str = "#leadership"
    alerts_channel: str = "#cs-alerts"
    salesforce_ui_url: str | None = None
    """Base of Salesforce record links, e.g. https://acme.lightning.force.com."""
    hubspot_portal_id: str | None = None
    digest: DigestConfig = Field(default_factory=DigestConfig)

    @model_validator(mode="after")
    def _token(self) -> SlackConfig:
        if self.enabled and self.token is None:
            raise _MissingForFlow("token", "required when slack is enabled")
        return self


# --------------------------------------------------------------------------- operations


class ScheduleConfig(Section):
    timezone: str = "UTC"
    jobs: dict[JobName, str] = Field(default_factory=_default_jobs)
    """Cron expressions (minute hour day month weekday) per job."""
    misfire_grace_seconds: PositiveInt = 900
    standby_poll_seconds: Annotated[float, Field(gt=0)] = 10.0

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("jobs")
    @classmethod
    def _crons(cls, value: dict[JobName, str]) -> dict[JobName, str]:
        from clghub.cron import parse_cron

        for job, expression in value.items():
            try:
                parse_cron(expression, "UTC")
            except ValueError as exc:
                raise _MissingForFlow(job, f"bad cron expression '{expression}': {exc}") from None
        return value


class RunConfig(Section):
    sync: bool = True
    score: bool = True
    writeback: bool = True
    digest: bool = True
    alerts: bool = True


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = False


class ClghubConfig(Section):
    secrets_file: str | None = None
    store: StoreConfig = Field(default_factory=StoreConfig)
    reporting: ReportingConfig = Field(default_factory=ReportingConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    segments: SegmentsConfig = Field(default_factory=SegmentsConfig)
    value_score: ValueScoreConfig = Field(default_factory=ValueScoreConfig)
    time_to_value: TimeToValueConfig = Field(default_factory=TimeToValueConfig)
    clv: ClvConfig = Field(default_factory=ClvConfig)
    incentives: IncentivesConfig = Field(default_factory=IncentivesConfig)
    plays: PlaysConfig = Field(default_factory=PlaysConfig)
    writeback: WritebackConfig = Field(default_factory=WritebackConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    # Where the config was read from; relative paths in it resolve against this.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    source_path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _segments_known(self) -> ClghubConfig:
        for segment in self.value_score.segments:
            if segment not in self.segments.names:
                raise _MissingForFlow(
                    f"value_score.segments.{segment}",
                    f"unknown segment; segments.names is {self.segments.names}",
                )
        for code in self.reporting.fx_rates:
            if code == self.reporting.currency:
                raise _MissingForFlow(
                    f"reporting.fx_rates.{code}", "the reporting currency needs no rate"
                )
        return self

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def scorecard(self, segment: str) -> tuple[dict[DriverName, DriverConfig], BandsConfig]:
        """The drivers and bands that apply to one segment (overrides merged)."""
        drivers = dict(self.value_score.drivers)
        bands = self.value_score.bands
        override = self.value_score.segments.get(segment)
        if override is not None:
            drivers.update(override.drivers)
            bands = override.bands or bands
        return drivers, bands


class _MissingForFlow(ValueError):
    """A model-level error that belongs to one key below the model.

    The loader appends ``key`` to the location pydantic reports, so the
    message names ``sources.salesforce.password`` rather than
    ``sources.salesforce``.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"@{key}@ {message}")
