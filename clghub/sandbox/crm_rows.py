"""Account plans as rows of the Salesforce and HubSpot tables (see schema.py).

Each account's revenue lives in its home CRM only. A mirrored account also
appears in the other CRM (same domain, some of the same contacts, no deals),
as when marketing runs HubSpot next to a Salesforce sales org.

Record ids are derived from the account index (``index * 64 + n``), so the
records of account ``i`` do not depend on how many accounts exist.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from clghub.sandbox.apis.sf_auth import SANDBOX_USERNAME
from clghub.sandbox.apis.sf_write import INTEGRATION_USER_ID
from clghub.sandbox.people import Person, Staff
from clghub.sandbox.plans import AccountPlan, Contact, Deal
from clghub.sandbox.rng import mix
from clghub.sandbox.schema import HS_ASSOCIATION_TYPES, HS_OBJECTS, SF_ID_PREFIX, SF_OBJECTS
from clghub.sandbox.state import sf_id

__all__ = [
    "CHILDREN_PER_ACCOUNT",
    "HS_ID_BASE",
    "TASKS_PER_ACCOUNT",
    "RowBatch",
    "hs_columns",
    "sf_columns",
    "ts",
]

CHILDREN_PER_ACCOUNT = 64
"""Id slots per account for contacts, opportunities and cases (more are dropped)."""
TASKS_PER_ACCOUNT = 256
HS_ID_BASE = {
    "companies": 10_000_000_000,
    "contacts": 20_000_000_000,
    "deals": 30_000_000_000,
    "tickets": 40_000_000_000,
}

_HS_INDUSTRY = {
    "Software": "COMPUTER_SOFTWARE",
    "Financial Services": "FINANCIAL_SERVICES",
    "Healthcare": "HOSPITAL_HEALTH_CARE",
    "Retail": "RETAIL",
    "Manufacturing": "MACHINERY",
    "Education": "EDUCATION_MANAGEMENT",
    "Media": "MEDIA_PRODUCTION",
}
_HS_SOURCE = {
    "Web": "ORGANIC_SEARCH",
    "Partner": "REFERRALS",
    "Event": "OFFLINE",
    "Outbound": "EMAIL_MARKETING",
    "Referral": "REFERRALS",
    "Advertisement": "PAID_SEARCH",
}
_HS_SEGMENT = {"SMB": "smb", "Mid-Market": "mid_market", "Enterprise": "enterprise"}
_HS_STAGE = {
    "Closed Won": "closedwon",
    "Closed Lost": "closedlost",
    "Prospecting": "appointmentscheduled",
    "Qualification": "qualifiedtobuy",
    "Proposal": "presentationscheduled",
    "Negotiation": "contractsent",
}
_SF_TYPE = {"new": "New Business", "renewal": "Renewal", "upsell": "Upsell", "downsell": "Downsell"}
_HS_TYPE = {
    "new": "newbusiness",
    "renewal": "renewal",
    "upsell": "expansion",
    "downsell": "contraction",
}
_HS_PRIORITY = {"Low": "LOW", "Medium": "MEDIUM", "High": "HIGH", "Critical": "URGENT"}
_HS_TICKET_STAGE = {"New": "1", "Working": "2", "Escalated": "3", "Closed": "4"}
_HS_OTHER_ROLES = ("INFLUENCER", "LEGAL_AND_COMPLIANCE", "BLOCKER", "OTHER")
_HS_LIFECYCLE = {"Customer": "customer", "Former Customer": "other", "Prospect": "opportunity"}


def ts(moment: datetime) -> str:
    """Storage text of a naive UTC datetime: ``2024-05-01T12:00:00.000Z``."""
    return moment.isoformat(timespec="milliseconds") + "Z"


def _day(day: int | None) -> str | None:
    return None if day is None else date.fromordinal(day).isoformat()


def sf_columns(sobject: str) -> list[str]:
    return [f.name for f in SF_OBJECTS[sobject]]


def hs_columns(obj: str) -> list[str]:
    names = [p.name for p in HS_OBJECTS[obj] if p.name != "hs_object_id"]
    return ["id", "created_at", "updated_at", "archived", "archived_at", *names]


class _Columns:
    """A table's columns, in insert order."""

    __slots__ = ("known", "names")

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.known = frozenset(names)

    def row(self, values: dict[str, Any]) -> tuple[Any, ...]:
        """The values in column order; a name that is not a column is a bug, not a NULL."""
        if not values.keys() <= self.known:
            raise KeyError(f"not a column: {sorted(values.keys() - self.known)}")
        return tuple(map(values.get, self.names))


_SF = {name: _Columns(sf_columns(name)) for name in SF_OBJECTS}
_HS = {name: _Columns(hs_columns(name)) for name in HS_OBJECTS}


class RowBatch:
    """Rows of every table for a batch of accounts, ready for executemany."""

    def __init__(self, seed: int, staff: Staff, history_end: datetime) -> None:
        self.seed = seed
        self.staff = staff
        self.history_end = history_end
        """No generated moment is at or after this one (the anchor's midnight)."""
        self.sf: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.hs: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.associations: list[tuple[str, int, str, int, int]] = []
        self.max_number: dict[str, int] = defaultdict(int)

    # -- people ----------------------------------------------------------------

    def add_staff(self, created: datetime) -> None:
        # The API user the integration logs in as (apis/sf_auth.py), as in any org.
        values = {
            "Id": INTEGRATION_USER_ID,
            "Username": SANDBOX_USERNAME,
            "FirstName": "Integration",
            "LastName": "User",
            "Name": "Integration User",
            "Email": SANDBOX_USERNAME,
            "Title": "API integration",
            "Department": "Operations",
            "IsActive": 1,
            "CreatedDate": ts(created),
            "LastModifiedDate": ts(created),
            "SystemModstamp": ts(created),
        }
        self.sf["User"].append(_SF["User"].row(values))
        for person in self.staff.people:
            if person.sf_user_id is not None:
                values = {
                    "Id": person.sf_user_id,
                    "Username": person.email,
                    "FirstName": person.first_name,
                    "LastName": person.last_name,
                    "Name": person.name,
                    "Email": person.email,
                    "Title": person.title,
                    "Department": person.department,
                    "IsActive": int(person.active),
                    "CreatedDate": ts(person.created),
                    "LastModifiedDate": ts(person.modified),
                    "SystemModstamp": ts(person.modified),
                }
                self.sf["User"].append(_SF["User"].row(values))
                self.max_number["User"] = max(self.max_number["User"], person.index + 1)
            if person.hs_owner_id is not None:
                team = {
                    "id": str(900 + len(person.department)),
                    "name": person.department,
                    "primary": True,
                }
                self.hs["owners"].append(
                    (
                        person.hs_owner_id,
                        person.email,
                        person.first_name,
                        person.last_name,
                        9_000_000 + person.index,
                        json.dumps([team]),
                        ts(person.created),
                        ts(person.modified),
                        0 if person.active else 1,
                    )
                )

    # -- accounts --------------------------------------------------------------

    def add_account(self, plan: AccountPlan) -> None:
        in_sf = plan.home == "salesforce" or plan.mirrored
        in_hs = plan.home == "hubspot" or plan.mirrored
        if in_sf:
            self._sf_account(plan, mirror=plan.home != "salesforce")
        if in_hs:
            self._hs_company(plan, mirror=plan.home != "hubspot")

    def _sf_user(self, person: Person, index: int) -> str:
        """The person's Salesforce user; a colleague's where they have none (mirrors)."""
        if person.sf_user_id is not None:
            return person.sf_user_id
        reps = self.staff.sf_reps
        fallback = reps[mix(self.seed, 35, index) % len(reps)].sf_user_id
        assert fallback is not None
        return fallback

    def _hs_owner(self, person: Person | None, index: int) -> str | None:
        if person is None:
            return None
        if person.hs_owner_id is not None:
            return str(person.hs_owner_id)
        reps = self.staff.hs_reps
        return str(reps[mix(self.seed, 36, index) % len(reps)].hs_owner_id)

    def _audit(
        self, record_id: str, created: datetime, modified: datetime, deleted: bool = False
    ) -> dict[str, Any]:
        """Audit fields. One record in ten had a system-only change after its last
        edit (a roll-up, a sharing recalculation): SystemModstamp moves on, the
        LastModifiedDate does not, as in a real org."""
        modified = max(created, modified)
        system = modified
        draw = mix(self.seed, 38, int.from_bytes(record_id.encode(), "big"))
        if draw % 10 == 0:
            later = modified + timedelta(seconds=1 + (draw >> 8) % 172_800)
            system = min(later, self.history_end - timedelta(milliseconds=1))
        return {
            "IsDeleted": int(deleted),
            "CreatedDate": ts(created),
            "LastModifiedDate": ts(modified),
            "SystemModstamp": ts(max(system, modified)),
        }

    def _number(self, sobject: str, number: int) -> str:
        self.max_number[sobject] = max(self.max_number[sobject], number)
        return sf_id(SF_ID_PREFIX[sobject], number)

    def _sf_account(self, plan: AccountPlan, *, mirror: bool) -> None:
        base = plan.index * CHILDREN_PER_ACCOUNT
        account_id = self._number("Account", plan.index + 1)
        values = {
            "Id": account_id,
            "Name": plan.name,
            "Type": plan.status,
            "Industry": plan.industry,
            "Website": plan.website,
            "BillingCountry": plan.country,
            "NumberOfEmployees": plan.employees,
            "AnnualRevenue": plan.annual_revenue,
            "AccountSource": plan.source,
            "CurrencyIsoCode": plan.currency,
            "OwnerId": self._sf_user(plan.owner, plan.index),
            "CSM__c": plan.csm.sf_user_id if plan.csm else None,
            "Region__c": plan.region,
            "Segment__c": plan.segment,
            "Product_Account_Key__c": plan.mirror_key if mirror else plan.key,
            "Seats__c": float(plan.seats) if plan.seats is not None else None,
            "Outcome_Target__c": plan.outcome_target,
            **self._audit(account_id, plan.created, plan.modified, plan.deleted),
        }
        self.sf["Account"].append(_SF["Account"].row(values))
        contact_ids: dict[int, str] = {}
        for n, contact in enumerate(plan.contacts[:CHILDREN_PER_ACCOUNT]):
            if mirror and not contact.mirrored:
                continue
            contact_id = self._number("Contact", base + n + 1)
            contact_ids[n] = contact_id
            self.sf["Contact"].append(
                _SF["Contact"].row(self._sf_contact(contact, contact_id, account_id))
            )
        task_base = plan.index * TASKS_PER_ACCOUNT
        for n, activity in enumerate(plan.activities[:TASKS_PER_ACCOUNT]):
            who = contact_ids.get(activity.contact)
            if who is None:
                continue
            task_id = self._number("Task", task_base + n + 1)
            values = {
                "Id": task_id,
                "WhatId": account_id,
                "WhoId": who,
                "AccountId": account_id,
                "Subject": activity.subject,
                "Type": activity.kind,
                "Status": "Completed" if activity.completed else "Not Started",
                "Priority": "High" if activity.kind == "Meeting" else "Normal",
                "ActivityDate": _day(activity.day),
                "Description": f"{activity.subject} with {plan.contacts[activity.contact].first_name}",
                "OwnerId": self._sf_user(activity.owner, plan.index),
                **self._audit(task_id, activity.created, activity.modified),
            }
            self.sf["Task"].append(_SF["Task"].row(values))
        if mirror:
            return
        for n, deal in enumerate(plan.deals[:CHILDREN_PER_ACCOUNT]):
            won = deal.stage == "Closed Won"
            closed = won or deal.stage == "Closed Lost"
            opportunity_id = self._number("Opportunity", base + n + 1)
            values = {
                "Id": opportunity_id,
                "AccountId": account_id,
                "Name": _deal_name(plan, deal)[:120],
                "Type": _SF_TYPE[deal.kind],
                "StageName": deal.stage,
                "IsClosed": int(closed),
                "IsWon": int(won),
                "Amount": deal.amount,
                "CurrencyIsoCode": deal.currency,
                "CloseDate": _day(deal.close_day),
                "LeadSource": deal.source,
                "OwnerId": self._sf_user(deal.owner, plan.index),
                "Contract_Start_Date__c": _day(deal.start_day),
                "Contract_End_Date__c": _day(deal.end_day),
                "ARR__c": deal.arr,
                **self._audit(opportunity_id, deal.created, deal.modified),
            }
            self.sf["Opportunity"].append(_SF["Opportunity"].row(values))
        for n, ticket in enumerate(plan.tickets[:CHILDREN_PER_ACCOUNT]):
            case_id = self._number("Case", base + n + 1)
            values = {
                "Id": case_id,
                "AccountId": account_id,
                "ContactId": contact_ids.get(ticket.contact)
                if ticket.contact is not None
                else None,
                "Subject": ticket.subject,
                "Priority": ticket.priority,
                "Status": ticket.status,
                "Origin": ticket.origin,
                "IsClosed": int(ticket.closed is not None),
                "ClosedDate": ts(ticket.closed) if ticket.closed else None,
                "CSAT__c": ticket.csat,
                **self._audit(case_id, ticket.created, ticket.modified),
            }
            self.sf["Case"].append(_SF["Case"].row(values))

    def _sf_contact(self, contact: Contact, contact_id: str, account_id: str) -> dict[str, Any]:
        return {
            "Id": contact_id,
            "AccountId": account_id,
            "FirstName": contact.first_name,
            "LastName": contact.last_name,
            "Name": f"{contact.first_name} {contact.last_name}",
            "Email": contact.email,
            "Title": contact.title,
            "Buying_Role__c": contact.role,
            **self._audit(contact_id, contact.created, contact.modified, contact.deleted),
        }

    def _hs_company(self, plan: AccountPlan, *, mirror: bool) -> None:
        base = plan.index * CHILDREN_PER_ACCOUNT
        company_id = HS_ID_BASE["companies"] + plan.index
        owner = self._hs_owner(plan.owner, plan.index)
        has_open = any(d.stage not in ("Closed Won", "Closed Lost") for d in plan.deals)
        lifecycle = _HS_LIFECYCLE[plan.status]
        if plan.status == "Prospect" and not has_open:
            lifecycle = "lead"
        source = _HS_SOURCE[plan.source]
        if mix(self.seed, 31, plan.index) % 10 == 0:
            source = "DIRECT_TRAFFIC" if plan.index % 2 else "SOCIAL_MEDIA"
        deleted = plan.deleted
        values = {
            "id": company_id,
            "created_at": ts(plan.created),
            "updated_at": ts(plan.modified),
            "archived": int(deleted),
            "archived_at": ts(plan.modified + timedelta(hours=1)) if deleted else None,
            "name": plan.name,
            "domain": plan.domain,
            "industry": _HS_INDUSTRY[plan.industry],
            "country": plan.country,
            "numberofemployees": float(plan.employees),
            "annualrevenue": plan.annual_revenue,
            "lifecyclestage": lifecycle,
            "hs_analytics_source": source,
            "product_account_key": plan.mirror_key if mirror else plan.key,
            "segment": _HS_SEGMENT[plan.segment],
            "region": plan.region,
            "seats": float(plan.seats) if plan.seats is not None else None,
            "outcome_target": plan.outcome_target,
            "csm_owner_id": str(plan.csm.hs_owner_id)
            if plan.csm and plan.csm.hs_owner_id
            else None,
            "createdate": ts(plan.created),
            "hs_lastmodifieddate": ts(plan.modified),
            "hubspot_owner_id": owner,
        }
        self.hs["companies"].append(_HS["companies"].row(values))
        for n, contact in enumerate(plan.contacts[:CHILDREN_PER_ACCOUNT]):
            if mirror and not contact.mirrored:
                continue
            contact_id = HS_ID_BASE["contacts"] + base + n
            self.hs["contacts"].append(
                _HS["contacts"].row(
                    self._hs_contact(contact, contact_id, company_id, owner),
                )
            )
            self._associate("contacts", contact_id, company_id)
        if mirror:
            return
        for n, deal in enumerate(plan.deals[:CHILDREN_PER_ACCOUNT]):
            deal_id = HS_ID_BASE["deals"] + base + n
            won = deal.stage == "Closed Won"
            closed = won or deal.stage == "Closed Lost"
            deal_type = _HS_TYPE[deal.kind]
            if deal.kind == "renewal" and mix(self.seed, 32, deal_id) % 20 == 0:
                deal_type = "existingbusiness"  # an older portal's renewals
            close_moment = deal.closed_at or datetime.fromordinal(deal.close_day)
            archived = mix(self.seed, 33, deal_id) % 400 == 0
            values = {
                "id": deal_id,
                "created_at": ts(deal.created),
                "updated_at": ts(deal.modified),
                "archived": int(archived),
                "archived_at": ts(deal.modified + timedelta(days=1)) if archived else None,
                "dealname": _deal_name(plan, deal),
                "amount": deal.amount,
                "deal_currency_code": deal.currency,
                "dealstage": _HS_STAGE[deal.stage],
                "pipeline": "default",
                "closedate": ts(close_moment),
                "dealtype": deal_type,
                "hs_is_closed_won": int(won),
                "hs_is_closed": int(closed),
                "hs_analytics_source": _HS_SOURCE[deal.source] if deal.source else None,
                "contract_start_date": _day(deal.start_day),
                "contract_end_date": _day(deal.end_day),
                "arr": deal.arr,
                "createdate": ts(deal.created),
                "hs_lastmodifieddate": ts(deal.modified),
                "hubspot_owner_id": self._hs_owner(deal.owner, plan.index),
            }
            self.hs["deals"].append(_HS["deals"].row(values))
            self._associate("deals", deal_id, company_id)
        for n, ticket in enumerate(plan.tickets[:CHILDREN_PER_ACCOUNT]):
            ticket_id = HS_ID_BASE["tickets"] + base + n
            values = {
                "id": ticket_id,
                "created_at": ts(ticket.created),
                "updated_at": ts(ticket.modified),
                "archived": 0,
                "archived_at": None,
                "subject": ticket.subject,
                "content": f"{ticket.subject} (via {ticket.origin.lower()})",
                "hs_pipeline": "0",
                "hs_pipeline_stage": _HS_TICKET_STAGE[ticket.status],
                "hs_ticket_priority": _HS_PRIORITY[ticket.priority],
                "closed_date": ts(ticket.closed) if ticket.closed else None,
                "csat_score": ticket.csat,
                "createdate": ts(ticket.created),
                "hs_lastmodifieddate": ts(ticket.modified),
                "hubspot_owner_id": self._hs_owner(plan.csm, plan.index) or owner,
            }
            self.hs["tickets"].append(_HS["tickets"].row(values))
            self._associate("tickets", ticket_id, company_id)

    def _hs_contact(
        self, contact: Contact, contact_id: int, company_id: int, owner: str | None
    ) -> dict[str, Any]:
        role = {"Economic Buyer": "BUDGET_HOLDER", "Champion": "CHAMPION", "User": "END_USER"}.get(
            contact.role
        )
        pick = mix(self.seed, 34, contact_id) % 10
        if contact.role == "Economic Buyer" and pick >= 7:
            role = "DECISION_MAKER" if pick < 9 else "EXECUTIVE_SPONSOR"
        if role is None:
            role = _HS_OTHER_ROLES[pick % len(_HS_OTHER_ROLES)]
        return {
            "id": contact_id,
            "created_at": ts(contact.created),
            "updated_at": ts(contact.modified),
            "archived": int(contact.deleted),
            "archived_at": ts(contact.modified + timedelta(hours=3)) if contact.deleted else None,
            "firstname": contact.first_name,
            "lastname": contact.last_name,
            "email": contact.email,
            "jobtitle": contact.title,
            "hs_buying_role": role,
            "associatedcompanyid": float(company_id),
            "createdate": ts(contact.created),
            "lastmodifieddate": ts(contact.modified),
            "hubspot_owner_id": owner,
        }

    def _associate(self, obj: str, object_id: int, company_id: int) -> None:
        self.associations.append(
            (obj, object_id, "companies", company_id, HS_ASSOCIATION_TYPES[(obj, "companies")])
        )
        self.associations.append(
            ("companies", company_id, obj, object_id, HS_ASSOCIATION_TYPES[("companies", obj)])
        )

    def counts(self) -> Iterable[tuple[str, int]]:
        for name, rows in self.sf.items():
            yield f"sf_{name}", len(rows)
        for name, rows in self.hs.items():
            yield f"hs_{name}", len(rows)
        yield "hs_association", len(self.associations)

    def clear(self) -> None:
        self.sf.clear()
        self.hs.clear()
        self.associations.clear()


def _deal_name(plan: AccountPlan, deal: Deal) -> str:
    year = date.fromordinal(deal.close_day).year
    label = {
        "new": "New Business",
        "renewal": f"Renewal {year}",
        "upsell": "Upsell",
        "downsell": "Downsell",
    }[deal.kind]
    if deal.label:
        label = f"{label} ({deal.label})"
    return f"{plan.name.strip() or 'Account'} - {label}"
