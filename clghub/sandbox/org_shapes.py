"""What the generated company looks like: segments, regions, titles, and random helpers.

The numbers are those of a B2B SaaS vendor selling to SMB, mid-market and
enterprise customers (seat prices, contract terms, sales cycles, how often
executives meet, how often tickets come in); clghub.sandbox.lifecycle plays
one account's life out of them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "ACTIVITY_SUBJECTS",
    "B36",
    "GEOGRAPHY",
    "INDUSTRIES",
    "ORIGINS",
    "PRIORITIES",
    "REGION_WEIGHTS",
    "SEGMENTS",
    "SHAPES",
    "SOURCES",
    "TICKET_SUBJECTS",
    "TITLES",
    "SegmentShape",
    "add_years",
    "base36",
    "geography",
    "open_stage",
    "poisson",
    "sigmoid",
    "stamp",
    "term_years",
    "weighted",
]

SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Retail",
    "Manufacturing",
    "Education",
    "Media",
)
SOURCES = ("Web", "Partner", "Event", "Outbound", "Referral", "Advertisement")

# Region -> (country, currency) choices with weights.
GEOGRAPHY: dict[str, tuple[tuple[str, str, float], ...]] = {
    "NA": (("United States", "USD", 0.85), ("Canada", "CAD", 0.15)),
    "EMEA": (
        ("United Kingdom", "GBP", 0.3),
        ("Germany", "EUR", 0.25),
        ("France", "EUR", 0.15),
        ("Netherlands", "EUR", 0.1),
        ("Spain", "EUR", 0.08),
        ("Sweden", "EUR", 0.05),
        ("Ireland", "EUR", 0.07),
    ),
    "APAC": (
        ("Australia", "AUD", 0.45),
        ("Singapore", "USD", 0.2),
        ("Japan", "USD", 0.2),
        ("India", "USD", 0.15),
    ),
    "LATAM": (("Brazil", "USD", 0.5), ("Mexico", "USD", 0.3), ("Chile", "USD", 0.2)),
}
REGION_WEIGHTS = (("NA", 0.55), ("EMEA", 0.28), ("APAC", 0.12), ("LATAM", 0.05))


@dataclass(frozen=True)
class SegmentShape:
    seats_median: float
    seats_range: tuple[int, int]
    price_range: tuple[float, float]
    employees_range: tuple[int, int]
    terms: tuple[tuple[int, float], ...]
    """(years, weight) of contract terms."""
    sales_cycle: tuple[int, int]
    exec_meetings_per_month: float
    tickets_per_year: float
    nps_answer_rate: float
    contacts_users: tuple[int, int]


SHAPES = {
    "SMB": SegmentShape(
        seats_median=12,
        seats_range=(3, 60),
        price_range=(360, 720),
        employees_range=(10, 250),
        terms=((1, 0.95), (2, 0.05)),
        sales_cycle=(14, 60),
        exec_meetings_per_month=0.06,
        tickets_per_year=0.45,
        nps_answer_rate=0.02,
        contacts_users=(1, 2),
    ),
    "Mid-Market": SegmentShape(
        seats_median=90,
        seats_range=(30, 400),
        price_range=(420, 900),
        employees_range=(250, 2500),
        terms=((1, 0.7), (2, 0.2), (3, 0.1)),
        sales_cycle=(30, 110),
        exec_meetings_per_month=0.12,
        tickets_per_year=1.1,
        nps_answer_rate=0.04,
        contacts_users=(1, 3),
    ),
    "Enterprise": SegmentShape(
        seats_median=700,
        seats_range=(250, 5000),
        price_range=(300, 650),
        employees_range=(2500, 80000),
        terms=((1, 0.45), (2, 0.25), (3, 0.3)),
        sales_cycle=(60, 200),
        exec_meetings_per_month=0.25,
        tickets_per_year=2.2,
        nps_answer_rate=0.06,
        contacts_users=(2, 5),
    ),
}

ECONOMIC_BUYER_TITLES = (
    "CFO",
    "COO",
    "VP Operations",
    "Chief Revenue Officer",
    "VP Finance",
    "Head of Operations",
)
CHAMPION_TITLES = (
    "Operations Manager",
    "Director of Analytics",
    "RevOps Lead",
    "Program Manager",
    "Head of Data",
)
USER_TITLES = (
    "Analyst",
    "Operations Specialist",
    "Data Engineer",
    "Coordinator",
    "Associate",
    "Team Lead",
)
OTHER_TITLES = ("IT Manager", "Procurement Specialist", "Legal Counsel", "Security Officer")
TICKET_SUBJECTS = (
    "Login fails with SSO",
    "Report export times out",
    "Integration sync stuck",
    "Automation not triggering",
    "Billing question",
    "Dashboard shows wrong totals",
    "Need help configuring roles",
    "API rate limit errors",
    "Data import failed",
    "Feature request: custom fields",
)
TITLES = {
    "Economic Buyer": ECONOMIC_BUYER_TITLES,
    "Champion": CHAMPION_TITLES,
    "User": USER_TITLES,
    "Other": OTHER_TITLES,
}
ACTIVITY_SUBJECTS = {
    "Meeting": (
        "Executive business review",
        "Quarterly business review",
        "Renewal planning",
        "Success plan review",
    ),
    "Call": ("Check-in call", "Onboarding call", "Adoption review"),
    "Email": ("Follow-up: next steps", "Usage report", "Training invitation"),
}
PRIORITIES = (("Low", 0.35), ("Medium", 0.4), ("High", 0.18), ("Critical", 0.07))
ORIGINS = ("Email", "Phone", "Web", "Chat")


def weighted(rng: random.Random, choices: tuple[tuple[str, float], ...]) -> str:
    roll = rng.random() * sum(weight for _, weight in choices)
    for value, weight in choices:
        roll -= weight
        if roll < 0:
            return value
    return choices[-1][0]


def geography(rng: random.Random, region: str) -> tuple[str, str]:
    choices = GEOGRAPHY[region]
    roll = rng.random() * sum(weight for _, _, weight in choices)
    for country, currency, weight in choices:
        roll -= weight
        if roll < 0:
            return country, currency
    return choices[-1][0], choices[-1][1]


def term_years(rng: random.Random, shape: SegmentShape) -> int:
    roll = rng.random() * sum(weight for _, weight in shape.terms)
    for years, weight in shape.terms:
        roll -= weight
        if roll < 0:
            return years
    return shape.terms[-1][0]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit = math.exp(-lam)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def stamp(day: int, rng: random.Random) -> datetime:
    """A moment during the working hours of ``day`` (millisecond precision)."""
    seconds = 25_200 + int(rng.random() * 46_800)
    return datetime.fromordinal(day) + timedelta(
        seconds=seconds, milliseconds=int(rng.random() * 1000)
    )


B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(number: int) -> str:
    out = ""
    while True:
        number, rem = divmod(number, 36)
        out = B36[rem] + out
        if not number:
            return out


def open_stage(days_to_close: int) -> str:
    if days_to_close > 90:
        return "Prospecting"
    if days_to_close > 60:
        return "Qualification"
    if days_to_close > 30:
        return "Proposal"
    return "Negotiation"


def add_years(day: int, years: int) -> int:
    moment = datetime.fromordinal(day)
    try:
        return moment.replace(year=moment.year + years).toordinal()
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28).toordinal()
