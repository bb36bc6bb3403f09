"""The vendor's own people: Salesforce Users, HubSpot owners and Slack users.

Sales reps own accounts and deals, CSMs (Department "Customer Success") look
after customers, marketing sources leads. Some people exist in both CRMs
under the same email (and every person has one Slack user), which is how an
account owner is found in Slack for a direct message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from clghub.sandbox.names import email_local, person_name
from clghub.sandbox.rng import entity_rng, mix
from clghub.sandbox.state import sf_id

__all__ = ["COMPANY_DOMAIN", "Person", "Staff", "build_staff", "slack_user_id"]

COMPANY_DOMAIN = "northwindcloud.example"
"""The vendor's mail domain (a reserved top-level domain: never a real mailbox)."""

_STREAM_STAFF = 11
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_TEAMS = {
    "sales": ("Sales", ("Account Executive", "Senior Account Executive", "Sales Director")),
    "cs": (
        "Customer Success",
        (
            "Customer Success Manager",
            "Senior Customer Success Manager",
            "Director, Customer Success",
        ),
    ),
    "marketing": ("Marketing", ("Marketing Manager", "Demand Generation Manager", "VP Marketing")),
    "ops": ("Operations", ("RevOps Analyst", "Salesforce Administrator")),
}


@dataclass(frozen=True)
class Person:
    index: int
    team: str
    """sales, cs, marketing or ops."""
    first_name: str
    last_name: str
    email: str
    title: str
    department: str
    active: bool
    created: datetime
    modified: datetime
    sf_user_id: str | None
    hs_owner_id: int | None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class Staff:
    people: tuple[Person, ...]
    sf_reps: tuple[Person, ...]
    sf_csms: tuple[Person, ...]
    hs_reps: tuple[Person, ...]
    hs_csms: tuple[Person, ...]


def slack_user_id(email: str) -> str:
    """The Slack user id of a person: stable for an email address."""
    number = mix(*email.lower().encode("utf-8"))
    digits = ""
    for _ in range(10):
        number, rem = divmod(number, 36)
        digits += _B36[rem]
    return "U" + digits


def _team_sizes(accounts: int) -> dict[str, int]:
    return {
        "sales": max(4, math.ceil(accounts / 120)),
        "cs": max(3, math.ceil(accounts / 160)),
        "marketing": max(2, math.ceil(accounts / 2500)),
        "ops": 2,
    }


def build_staff(seed: int, accounts: int, anchor: date) -> Staff:
    """The people of an org with ``accounts`` accounts (headcount scales with it)."""
    people: list[Person] = []
    used_locals: set[str] = set()
    start = datetime(anchor.year, anchor.month, anchor.day) - timedelta(days=4 * 365)
    index = 0
    for team, size in _team_sizes(accounts).items():
        department, titles = _TEAMS[team]
        for position in range(size):
            rng = entity_rng(seed, _STREAM_STAFF, index)
            first, last = person_name(rng)
            local = email_local(first, last)
            if local in used_locals:
                local = f"{local}{index}"
            used_locals.add(local)
            created = start + timedelta(
                days=rng.uniform(0, 3.5 * 365), seconds=rng.randrange(86_400)
            )
            modified = (
                created + (datetime(anchor.year, anchor.month, anchor.day) - created) * rng.random()
            )
            # Most people use both CRMs; some only one of them.
            where = rng.random()
            # The first of each team is in both, so neither CRM lacks a team.
            in_sf = where < 0.85 or team == "ops" or position == 0
            in_hs = where > 0.45 or team == "marketing" or position == 0
            people.append(
                Person(
                    index=index,
                    team=team,
                    first_name=first,
                    last_name=last,
                    email=f"{local}@{COMPANY_DOMAIN}",
                    title=rng.choice(titles),
                    department=department,
                    active=rng.random() > 0.08,
                    created=created,
                    modified=modified,
                    sf_user_id=sf_id("005", index + 1) if in_sf else None,
                    hs_owner_id=40_000_000 + index if in_hs else None,
                )
            )
            index += 1
    return Staff(
        people=tuple(people),
        sf_reps=tuple(p for p in people if p.team == "sales" and p.sf_user_id),
        sf_csms=tuple(p for p in people if p.team == "cs" and p.sf_user_id),
        hs_reps=tuple(p for p in people if p.team == "sales" and p.hs_owner_id),
        hs_csms=tuple(p for p in people if p.team == "cs" and p.hs_owner_id),
    )
