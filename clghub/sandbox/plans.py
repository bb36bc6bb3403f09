"""An account's plan: what the generator writes to the CRMs and the usage profile.

Plain records, filled by clghub.sandbox.lifecycle and turned into table
rows by clghub.sandbox.crm_rows. Days are date ordinals; moments are naive
datetimes in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from clghub.sandbox.people import Person

__all__ = ["AccountPlan", "Activity", "Contact", "Deal", "Ticket", "UsageProfile"]


@dataclass(slots=True)
class Deal:
    kind: str
    """new, renewal, upsell or downsell."""
    stage: str
    """Salesforce stage name: Closed Won, Closed Lost or an open stage."""
    close_day: int
    arr: float
    """ARR the deal adds (renewal: the renewed ARR; upsell/downsell: the change, positive)."""
    amount: float
    start_day: int | None
    end_day: int | None
    created: datetime
    modified: datetime
    closed_at: datetime | None
    owner: Person
    currency: str
    source: str | None
    label: str


@dataclass(slots=True)
class Contact:
    first_name: str
    last_name: str
    email: str
    title: str
    role: str
    """Economic Buyer, Champion, User or Other."""
    created: datetime
    modified: datetime
    deleted: bool
    mirrored: bool
    """Also present in the account's mirror in the other CRM."""


@dataclass(slots=True)
class Activity:
    kind: str
    """Meeting, Call or Email."""
    contact: int
    """Index into the account's contacts."""
    day: int
    subject: str
    completed: bool
    created: datetime
    modified: datetime
    owner: Person


@dataclass(slots=True)
class Ticket:
    subject: str
    priority: str
    """Low, Medium, High or Critical."""
    status: str
    """New, Working, Escalated or Closed."""
    origin: str
    contact: int | None
    created: datetime
    modified: datetime
    closed: datetime | None
    csat: float | None


@dataclass(slots=True)
class UsageProfile:
    """What daily usage of one product account is a pure function of."""

    key: str
    entity: int
    """The number the usage noise is keyed on (stable for the account)."""
    active_from: int
    active_to: int
    value_from: int
    """First day of value: high-ROI use reaches its threshold from here on."""
    seats: float
    health_start: float
    health_end: float
    adoption: float
    outcome: float
    outcome_target: float
    nps_rate: float
    nps_base: float


@dataclass(slots=True)
class AccountPlan:
    index: int
    name: str
    domain: str
    website: str | None
    segment: str
    industry: str
    region: str
    country: str
    currency: str
    employees: int
    annual_revenue: float
    source: str
    home: str
    """salesforce or hubspot: where its deals (revenue) live."""
    mirrored: bool
    """Also present (same domain, contacts, no deals) in the other CRM."""
    key: str | None
    """Product_Account_Key__c / product_account_key; None for a few (matched by domain)."""
    mirror_key: str | None
    status: str
    """Customer, Former Customer or Prospect."""
    owner: Person
    csm: Person | None
    seats: int | None
    outcome_target: float | None
    created: datetime
    modified: datetime
    deleted: bool
    deals: list[Deal] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    usage: UsageProfile | None = None
