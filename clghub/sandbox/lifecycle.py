"""One customer's life: the plan the generator turns into CRM rows and usage.

Each account has a latent *health* that drifts from month to month around
the account's own long-run level. Health drives what customer-led growth
predicts and what clghub's value score measures:

- outcome attainment (the customer's KPI against its target),
- adoption depth of the high-ROI features,
- executive engagement (meetings with the economic buyer),
- time to first value (fast starts raise early health),

and those drivers, each with an account-specific twist of its own, decide
renewals, expansions and contractions. NPS follows health only weakly and
with a lot of noise, so sentiment stays a poor predictor, as it is in life.

Days are date ordinals (``date.toordinal()``); history ends the day before
the anchor, so every generated timestamp is earlier than the anchor's
midnight (UTC).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from clghub.sandbox.names import company_name, domain_for, email_local, person_name
from clghub.sandbox.org_shapes import (
    ACTIVITY_SUBJECTS,
    INDUSTRIES,
    ORIGINS,
    PRIORITIES,
    REGION_WEIGHTS,
    SHAPES,
    SOURCES,
    TICKET_SUBJECTS,
    TITLES,
    SegmentShape,
    add_years,
    base36,
    geography,
    open_stage,
    poisson,
    sigmoid,
    stamp,
    term_years,
    weighted,
)
from clghub.sandbox.people import Person, Staff
from clghub.sandbox.plans import AccountPlan, Activity, Contact, Deal, Ticket, UsageProfile
from clghub.sandbox.rng import entity_rng, mix

__all__ = [
    "HISTORY_DAYS",
    "Identity",
    "account_identity",
    "plan_account",
    "product_key",
    "usage_profile_for_orphan",
]

HISTORY_DAYS = 3 * 365
"""How far back the generated history reaches before the anchor."""

_STREAM_IDENTITY = 21
_STREAM_LIFE = 22
_STREAM_ORPHAN = 23
_MONTH = 30
_HEALTH_STEP = 2 * _MONTH


def product_key(seed: int, index: int) -> str:
    """The product's own account key: unique (the index is its tail), not guessable."""
    return f"pa_{mix(seed, 77, index) >> 40:06x}{base36(index)}"


@dataclass(frozen=True)
class Identity:
    name: str
    domain: str


def account_identity(seed: int, index: int) -> Identity:
    """Name and domain of account ``index`` (its own stream, so others can look it up)."""
    rng = entity_rng(seed, _STREAM_IDENTITY, index)
    name = company_name(rng, index)
    return Identity(name=name, domain=domain_for(name, index, rng))


class _Health:
    """Latent health every two months from ``origin``, linearly interpolated between.

    An AR(1) walk around the account's own level: about a fifth of the gap
    to the level closes each month, with fresh noise each step.
    """

    __slots__ = ("origin", "points")

    def __init__(
        self, rng: random.Random, origin: int, until: int, level: float, start: float
    ) -> None:
        self.origin = origin
        steps = max(2, (until - origin) // _HEALTH_STEP + 2)
        points = [start]
        gauss = rng.gauss
        for _ in range(steps):
            previous = points[-1]
            points.append(previous + 0.4 * (level - previous) + gauss(0.0, 0.38))
        self.points = points

    @classmethod
    def flat(cls, origin: int, level: float) -> _Health:
        health = cls.__new__(cls)
        health.origin = origin
        health.points = [level, level]
        return health

    def at(self, day: int) -> float:
        position = max(0.0, (day - self.origin) / _HEALTH_STEP)
        low = min(int(position), len(self.points) - 2)
        frac = min(1.0, position - low)
        return self.points[low] + (self.points[low + 1] - self.points[low]) * frac


@dataclass(slots=True)
class _Traits:
    level: float
    adoption: float
    outcome: float
    engagement: float
    ttv_days: int
    ttv_z: float
    nps_base: float

    def renewal_logit(self, health: float, noise: float) -> float:
        outcome = health + self.outcome
        adoption = health + self.adoption
        engagement = health + self.engagement
        nps_z = (self.nps_base - 7.0) / 1.3
        return (
            2.0
            + 0.6 * outcome
            + 0.5 * adoption
            + 0.35 * engagement
            - 0.35 * self.ttv_z
            + 0.08 * nps_z
            + noise
        )

    def expansion_logit(self, health: float) -> float:
        return (
            -1.1
            + 0.7 * (health + self.adoption)
            + 0.5 * (health + self.outcome)
            + 0.2 * (health + self.engagement)
        )


def _traits(rng: random.Random) -> _Traits:
    level = rng.gauss(0.0, 0.8)
    ttv_noise = rng.gauss(0.0, 0.45)
    ttv_days = int(min(240, max(4, round(30 * math.exp(ttv_noise - 0.3 * level)))))
    return _Traits(
        level=level,
        adoption=rng.gauss(0.0, 0.5),
        outcome=rng.gauss(0.0, 0.5),
        engagement=rng.gauss(0.0, 0.5),
        ttv_days=ttv_days,
        ttv_z=(math.log(ttv_days) - math.log(30)) / 0.5,
        nps_base=7.0 + 0.25 * level + rng.gauss(0.0, 1.1),
    )


class _Life:
    """Builds one account's plan; every draw comes from the account's own stream."""

    def __init__(self, seed: int, index: int, anchor: int, staff: Staff, usage_days: int) -> None:
        self.seed = seed
        self.index = index
        self.anchor = anchor
        self.last_day = anchor - 1
        self.start = anchor - HISTORY_DAYS
        self.staff = staff
        self.usage_days = usage_days
        self.rng = entity_rng(seed, _STREAM_LIFE, index)
        self.health = _Health.flat(self.start, 0.0)
        self.periods: list[tuple[int, int]] = []
        """Days under contract: (first, last), last possibly after the anchor."""

    # -- the account -----------------------------------------------------------

    def build(self) -> AccountPlan:
        rng = self.rng
        identity = account_identity(self.seed, self.index)
        segment = weighted(rng, (("SMB", 0.6), ("Mid-Market", 0.3), ("Enterprise", 0.1)))
        shape = SHAPES[segment]
        region = weighted(rng, REGION_WEIGHTS)
        country, currency = geography(rng, region)
        home = "hubspot" if rng.random() < 0.25 else "salesforce"
        domain = identity.domain
        duplicate_domain = self.index > 0 and rng.random() < 0.005
        if duplicate_domain:
            # Two distinct companies claiming one domain (a subsidiary, a typo).
            domain = account_identity(self.seed, self.index - 1).domain
        website_style = rng.random()
        if website_style < 0.02:
            website = None
        elif website_style < 0.6:
            website = f"https://www.{domain}"
        elif website_style < 0.85:
            website = f"http://{domain}/"
        else:
            website = domain
        employees = rng.randint(*shape.employees_range)
        traits = _traits(rng)
        is_prospect = rng.random() < 0.12
        reps = self._reps(home)
        csms = self.staff.sf_csms if home == "salesforce" else self.staff.hs_csms
        owner = rng.choice(reps)
        seats = round(shape.seats_median * math.exp(rng.gauss(0, 0.55)))
        seats = min(shape.seats_range[1], max(shape.seats_range[0], seats))
        plan = AccountPlan(
            index=self.index,
            name=identity.name,
            domain=domain,
            website=website,
            segment=segment,
            industry=rng.choice(INDUSTRIES),
            region=region,
            country=country,
            currency=currency,
            employees=employees,
            annual_revenue=float(round(employees * rng.uniform(80_000, 320_000), -3)),
            source=rng.choice(SOURCES),
            home=home,
            mirrored=False,
            key=None,
            mirror_key=None,
            status="Prospect",
            owner=owner,
            csm=None,
            seats=None,
            outcome_target=None,
            created=datetime.fromordinal(self.start),
            modified=datetime.fromordinal(self.start),
            deleted=False,
        )
        price = rng.uniform(*shape.price_range)
        if is_prospect:
            self._prospect(plan, shape, seats, price)
        else:
            self._customer(plan, shape, traits, seats, price, csms, duplicate_domain)
        self._contacts(plan, shape)
        if plan.status != "Prospect":
            self._activities(plan, shape, traits)
            self._tickets(plan, shape, traits)
        self._audit(plan)
        return plan

    # -- prospects -------------------------------------------------------------

    def _prospect(self, plan: AccountPlan, shape: SegmentShape, seats: int, price: float) -> None:
        rng = self.rng
        plan.key = product_key(self.seed, self.index) if rng.random() < 0.3 else None
        first_touch = self.start + int(rng.random() ** 0.6 * (HISTORY_DAYS - 20))
        plan.created = stamp(first_touch, rng)
        arr = round(seats * price, -1)
        if rng.random() < 0.45:
            # An earlier attempt that was lost.
            close = min(self.last_day - 5, first_touch + rng.randint(*shape.sales_cycle))
            if close > first_touch:
                self._add_deal(
                    plan, "new", "Closed Lost", close, arr, 1, None, first_touch, source=plan.source
                )
        if rng.random() < 0.65:
            close = self.anchor + rng.randint(5, 150)
            created_day = max(first_touch, self.last_day - rng.randint(5, 120))
            stage = open_stage(close - self.anchor)
            self._add_deal(
                plan, "new", stage, close, arr, 1, close, created_day, source=plan.source
            )
        elif not plan.deals:
            close = min(self.last_day, first_touch + rng.randint(*shape.sales_cycle))
            self._add_deal(
                plan, "new", "Closed Lost", close, arr, 1, None, first_touch, source=plan.source
            )

    # -- customers -------------------------------------------------------------

    def _customer(
        self,
        plan: AccountPlan,
        shape: SegmentShape,
        traits: _Traits,
        seats: int,
        price: float,
        csms: tuple[Person, ...],
        duplicate_domain: bool,
    ) -> None:
        rng = self.rng
        # A few customers lack the product key (usage then carries their domain);
        # never one whose domain another account claims too.
        missing_key = rng.random() < 0.03 and not duplicate_domain
        plan.key = None if missing_key else product_key(self.seed, self.index)
        plan.csm = rng.choice(csms)
        if rng.random() < 0.15:
            plan.mirrored = True
            plan.mirror_key = plan.key if rng.random() < 0.7 else None
        # First contracts spread over the history (older customers have more of it).
        first_start = self.start + 30 + int(rng.random() * (HISTORY_DAYS - 60))
        plan.outcome_target = float(round(seats * rng.uniform(3.0, 6.0), -1) or 10.0)
        early = traits.level + rng.gauss(0.0, 0.4) - 0.45 * traits.ttv_z
        self.health = _Health(rng, first_start - 60, self.anchor + 400, traits.level, early)
        first_touch = first_start - rng.randint(*shape.sales_cycle) - rng.randint(0, 40)
        plan.created = stamp(first_touch, rng)
        arr = round(seats * price, -1)
        if rng.random() < 0.2:
            lost_close = first_touch - rng.randint(60, 300)
            lost_created = lost_close - rng.randint(*shape.sales_cycle)
            self._add_deal(
                plan,
                "new",
                "Closed Lost",
                lost_close,
                arr,
                1,
                None,
                lost_created,
                source=plan.source,
            )
        start = first_start
        kind = "new"
        agreed_close: int | None = None
        value_from = first_start + traits.ttv_days
        status = "Customer"
        while True:
            years = term_years(rng, shape)
            end = add_years(start, years) - 1
            close = agreed_close if agreed_close is not None else start - rng.randint(0, 25)
            lead = rng.randint(*shape.sales_cycle) if kind == "new" else rng.randint(60, 120)
            source = plan.source if kind == "new" else None
            self._add_deal(
                plan,
                kind,
                "Closed Won",
                close,
                arr,
                years,
                start,
                close - lead,
                end=end,
                source=source,
            )
            period_start = start
            arr, seats = self._mid_term(plan, traits, start, end, arr, seats)
            if end >= self.last_day:
                self.periods.append((period_start, end))
                if end <= self.anchor + 150:
                    renewal_end = add_years(end + 1, 1) - 1
                    stage = open_stage(end - self.anchor)
                    created_day = end - rng.randint(90, 130)
                    self._add_deal(
                        plan, "renewal", stage, end, arr, 1, end + 1, created_day, end=renewal_end
                    )
                break
            decision = end - 45
            health = self.health.at(decision)
            renew = rng.random() < sigmoid(traits.renewal_logit(health, rng.gauss(0.0, 0.5)))
            if renew:
                late = rng.random() < 0.12
                agreed_close = end + rng.randint(5, 45) if late else end - rng.randint(0, 30)
                if rng.random() < sigmoid(traits.expansion_logit(health) + 0.3):
                    factor = rng.uniform(1.08, 1.4)
                elif health < -0.3 and rng.random() < 0.4:
                    factor = rng.uniform(0.65, 0.9)
                else:
                    factor = rng.uniform(1.0, 1.07)
                seats = max(1, round(seats * factor))
                arr = round(arr * factor, -1)
                if agreed_close > self.last_day:
                    # Still negotiating after the term ended: the renewal is open.
                    self.periods.append((period_start, self.anchor + 200))
                    renewal_end = add_years(end + 1, 1) - 1
                    created_day = end - rng.randint(90, 130)
                    self._add_deal(
                        plan,
                        "renewal",
                        "Negotiation",
                        agreed_close,
                        arr,
                        1,
                        end + 1,
                        created_day,
                        end=renewal_end,
                    )
                    break
                self.periods.append((period_start, end))
                start = end + 1
                kind = "renewal"
                continue
            # Churn: the renewal is lost.
            agreed_close = None
            self.periods.append((period_start, end))
            self._add_deal(
                plan,
                "renewal",
                "Closed Lost",
                end - rng.randint(0, 20),
                arr,
                1,
                end + 1,
                end - rng.randint(90, 130),
            )
            status = "Former Customer"
            if rng.random() < 0.15 + 0.1 * sigmoid(traits.level):
                # Some come back after months away: a reactivation.
                comeback = end + rng.randint(90, 420)
                if comeback <= self.last_day - 10:
                    start = comeback
                    kind = "new"
                    status = "Customer"
                    arr = round(arr * rng.uniform(0.6, 1.1), -1)
                    value_from = comeback + max(3, traits.ttv_days // 2)
                    continue
            break
        plan.status = status
        plan.seats = seats
        plan.usage = self._usage(plan, traits, value_from, seats)

    def _mid_term(
        self, plan: AccountPlan, traits: _Traits, start: int, end: int, arr: float, seats: int
    ) -> tuple[float, int]:
        """Changes during a term, one chance per contract year: an upsell when things
        go well (sometimes attempted and lost), a downsell when they do not."""
        rng = self.rng
        year_start = start
        while year_start < end:
            year_end = min(end, add_years(year_start, 1) - 1)
            mid = year_start + int((year_end - year_start) * rng.uniform(0.25, 0.75))
            year_start = year_end + 1
            if mid > self.anchor + 90:
                break
            health = self.health.at(mid)
            remaining_years = max(1, math.ceil((end - mid) / 365))
            if rng.random() < sigmoid(traits.expansion_logit(health)):
                delta = round(arr * rng.uniform(0.1, 0.45), -1)
                added = max(1, round(seats * delta / arr))
                label = f"+{added} seats"
                if mid > self.last_day:
                    created_day = self.last_day - rng.randint(0, 30)
                    stage = open_stage(mid - self.anchor)
                    deal = (mid, delta, remaining_years, mid, created_day)
                    self._add_deal(plan, "upsell", stage, *deal, end=end, label=label)
                    break
                deal = (mid, delta, remaining_years, mid, mid - rng.randint(10, 45))
                self._add_deal(plan, "upsell", "Closed Won", *deal, end=end, label=label)
                arr, seats = arr + delta, seats + added
            elif mid <= self.last_day and rng.random() < 0.3:
                delta = round(arr * rng.uniform(0.1, 0.3), -1)
                deal = (mid, delta, remaining_years, mid, mid - rng.randint(20, 60))
                self._add_deal(plan, "upsell", "Closed Lost", *deal, label="expansion")
            elif health < -0.6 and rng.random() < 0.25 and mid <= self.last_day:
                delta = round(arr * rng.uniform(0.1, 0.3), -1)
                removed = max(1, round(seats * delta / arr))
                deal = (mid, delta, 1, mid, mid - rng.randint(5, 30))
                self._add_deal(
                    plan, "downsell", "Closed Won", *deal, end=end, label=f"-{removed} seats"
                )
                arr, seats = arr - delta, max(1, seats - removed)
        return arr, seats

    def _usage(
        self, plan: AccountPlan, traits: _Traits, value_from: int, seats: int
    ) -> UsageProfile | None:
        """The contract period that overlaps the usage window most recently, if any."""
        first_day = self.anchor - self.usage_days
        chosen: tuple[int, int] | None = None
        for begin, end in self.periods:
            if begin <= self.last_day and end >= first_day:
                chosen = (max(begin, first_day), min(end, self.last_day))
        if chosen is None:
            return None
        return UsageProfile(
            key=plan.key if plan.key is not None else plan.domain,
            entity=self.index,
            active_from=chosen[0],
            active_to=chosen[1],
            value_from=value_from,
            seats=float(seats),
            health_start=self.health.at(chosen[0]),
            health_end=self.health.at(chosen[1]),
            adoption=traits.adoption,
            outcome=traits.outcome,
            outcome_target=plan.outcome_target or 10.0,
            nps_rate=SHAPES[plan.segment].nps_answer_rate,
            nps_base=traits.nps_base,
        )

    def _add_deal(
        self,
        plan: AccountPlan,
        kind: str,
        stage: str,
        close: int,
        arr: float,
        years: int,
        start: int | None,
        created_day: int,
        *,
        end: int | None = None,
        source: str | None = None,
        label: str = "",
    ) -> None:
        rng = self.rng
        created_day = min(created_day, close - 1, self.last_day)
        created = stamp(created_day, rng)
        is_open = stage not in ("Closed Won", "Closed Lost")
        if is_open:
            closed_at = None
            modified = max(created, stamp(rng.randint(created_day, self.last_day), rng))
        else:
            closed_at = max(stamp(min(close, self.last_day), rng), created + timedelta(minutes=5))
            modified = closed_at
            if rng.random() < 0.2:
                # Someone edits it again later (a note, a data clean-up).
                later = min(self.last_day, closed_at.toordinal() + rng.randint(1, 400))
                modified = max(closed_at, stamp(later, rng))
        currency = plan.currency
        dirty = rng.random()
        if dirty < 0.004:
            currency = "XYZ"
        elif dirty < 0.006:
            currency = "ZZZ"
        if end is not None and stage == "Closed Won" and rng.random() < 0.025:
            end = None  # contract end missing on purpose
        if kind == "downsell" or kind == "upsell":
            owner = plan.owner if rng.random() < 0.7 else rng.choice(self._reps(plan.home))
        else:
            owner = plan.owner
        plan.deals.append(
            Deal(
                kind=kind,
                stage=stage,
                close_day=close,
                arr=float(arr),
                amount=float(round(arr * years, 2)),
                start_day=start,
                end_day=end,
                created=created,
                modified=modified,
                closed_at=closed_at,
                owner=owner,
                currency=currency,
                source=source,
                label=label,
            )
        )

    def _reps(self, home: str) -> tuple[Person, ...]:
        return self.staff.sf_reps if home == "salesforce" else self.staff.hs_reps

    # -- people at the customer ------------------------------------------------

    def _contacts(self, plan: AccountPlan, shape: SegmentShape) -> None:
        rng = self.rng
        roles: list[str] = []
        if rng.random() < 0.95:
            roles.append("Economic Buyer")
            if plan.segment == "Enterprise" and rng.random() < 0.4:
                roles.append("Economic Buyer")
        if rng.random() < 0.85:
            roles.append("Champion")
        roles.extend("User" for _ in range(rng.randint(*shape.contacts_users)))
        if rng.random() < 0.3:
            roles.append("Other")
        if plan.status == "Prospect":
            roles = roles[:2] or ["Champion"]
        used: set[str] = set()
        created_from = plan.created.toordinal()
        span = max(1, self.last_day - created_from)
        for role in roles:
            first, last = person_name(rng)
            local = email_local(first, last)
            if local in used:
                local = f"{local}{len(used)}"
            used.add(local)
            title = rng.choice(TITLES[role])
            created_day = min(self.last_day, created_from + int(rng.random() ** 2 * span))
            created = max(plan.created, stamp(created_day, rng))
            edited = rng.random() < 0.5
            modified = (
                max(created, stamp(rng.randint(created_day, self.last_day), rng))
                if edited
                else created
            )
            plan.contacts.append(
                Contact(
                    first_name=first,
                    last_name=last,
                    email=f"{local}@{plan.domain}",
                    title=title,
                    role=role,
                    created=created,
                    modified=modified,
                    deleted=rng.random() < 0.01,
                    mirrored=plan.mirrored and rng.random() < 0.7,
                )
            )

    def _activities(self, plan: AccountPlan, shape: SegmentShape, traits: _Traits) -> None:
        """Meetings with economic buyers, calls and emails with the rest, while under contract."""
        rng = self.rng
        buyers = [
            i for i, c in enumerate(plan.contacts) if c.role == "Economic Buyer" and not c.deleted
        ]
        others = [
            i for i, c in enumerate(plan.contacts) if c.role != "Economic Buyer" and not c.deleted
        ]
        host = plan.csm or plan.owner
        step = 2 * _MONTH  # rates change slowly: one draw per two months
        for begin, end in self.periods:
            day = begin
            while day <= min(end, self.last_day + 30):
                engagement = self.health.at(day + _MONTH) + traits.engagement
                if buyers:
                    rate = 2 * shape.exec_meetings_per_month * math.exp(0.9 * engagement - 0.2)
                    for _ in range(poisson(rng, rate)):
                        when = day + int(rng.random() * step)
                        self._activity(plan, "Meeting", rng.choice(buyers), when, host)
                if others:
                    rate = 2 * 0.05 * math.exp(0.5 * engagement)
                    for _ in range(poisson(rng, rate)):
                        kind = "Call" if rng.random() < 0.5 else "Email"
                        when = day + int(rng.random() * step)
                        self._activity(plan, kind, rng.choice(others), when, host)
                day += step

    def _activity(self, plan: AccountPlan, kind: str, contact: int, day: int, host: Person) -> None:
        rng = self.rng
        completed = day <= self.last_day
        if not completed and rng.random() > 0.3:
            return
        # A future meeting was put in the calendar in the last days.
        lead = rng.randint(0, 20) if completed else rng.randint(0, 10)
        created_day = day - lead if completed else self.last_day - lead
        created_day = max(created_day, plan.contacts[contact].created.toordinal())
        if created_day > self.last_day:
            return
        created = stamp(created_day, rng)
        modified = stamp(min(self.last_day, max(created_day, day)), rng) if completed else created
        plan.activities.append(
            Activity(
                kind=kind,
                contact=contact,
                day=day,
                subject=rng.choice(ACTIVITY_SUBJECTS[kind]),
                completed=completed,
                created=created,
                modified=max(created, modified),
                owner=host,
            )
        )

    def _tickets(self, plan: AccountPlan, shape: SegmentShape, traits: _Traits) -> None:
        rng = self.rng
        spans = [(b, min(e, self.last_day)) for b, e in self.periods if b <= self.last_day]
        days_covered = sum(e - b + 1 for b, e in spans)
        if not days_covered:
            return
        count = poisson(
            rng, shape.tickets_per_year * days_covered / 365 * math.exp(-0.3 * traits.level)
        )
        alive = [i for i, c in enumerate(plan.contacts) if not c.deleted]
        for _ in range(count):
            offset = rng.randrange(days_covered)
            day = spans[-1][0]
            for begin, end in spans:
                if offset <= end - begin:
                    day = begin + offset
                    break
                offset -= end - begin + 1
            health = self.health.at(day)
            priority = weighted(rng, PRIORITIES)
            created = stamp(day, rng)
            age = self.last_day - day
            closed: datetime | None = None
            if age > 2 and rng.random() < min(0.97, 0.5 + age / 60):
                closed = created + timedelta(hours=rng.uniform(0.2, 24 * min(30, age)))
                if closed.toordinal() > self.last_day:
                    closed = max(created + timedelta(minutes=1), stamp(self.last_day, rng))
            if closed is not None:
                status = "Closed"
            else:
                status = weighted(rng, (("New", 0.3), ("Working", 0.5), ("Escalated", 0.2)))
            csat: float | None = None
            if closed is not None and rng.random() < 0.55:
                penalty = 0.4 if priority in ("High", "Critical") else 0.0
                csat = float(
                    min(5, max(1, round(3.9 + 0.35 * health - penalty + rng.gauss(0.0, 0.9))))
                )
            plan.tickets.append(
                Ticket(
                    subject=rng.choice(TICKET_SUBJECTS),
                    priority=priority,
                    status=status,
                    origin=rng.choice(ORIGINS),
                    contact=rng.choice(alive) if alive and rng.random() < 0.9 else None,
                    created=created,
                    modified=closed or created,
                    closed=closed,
                    csat=csat,
                )
            )

    def _audit(self, plan: AccountPlan) -> None:
        rng = self.rng
        plan.created = min([plan.created, *(d.created for d in plan.deals)])
        latest = max([plan.created, *(d.modified for d in plan.deals if d.stage == "Closed Won")])
        edited = rng.random() < 0.6
        touch = stamp(rng.randint(latest.toordinal(), self.last_day), rng) if edited else latest
        plan.modified = max(latest, touch)
        plan.deleted = plan.status == "Prospect" and rng.random() < 0.03


def plan_account(seed: int, index: int, anchor: int, staff: Staff, usage_days: int) -> AccountPlan:
    """The whole plan of account ``index``: independent of how many accounts exist."""
    return _Life(seed, index, anchor, staff, usage_days).build()


def usage_profile_for_orphan(seed: int, number: int, anchor: int, usage_days: int) -> UsageProfile:
    """A product account no CRM knows (a trial, a workspace of an unknown buyer)."""
    entity = 1_000_000_000 + number
    rng = entity_rng(seed, _STREAM_ORPHAN, number)
    first_day = anchor - usage_days
    begin = first_day + rng.randint(0, usage_days - 1)
    seats = float(rng.randint(1, 25))
    health = rng.gauss(-0.3, 0.8)
    return UsageProfile(
        key=product_key(seed, entity),
        entity=entity,
        active_from=begin,
        active_to=anchor - 1 if rng.random() < 0.7 else min(anchor - 1, begin + rng.randint(7, 60)),
        value_from=begin + rng.randint(5, 90),
        seats=seats,
        health_start=health,
        health_end=health + rng.gauss(0.0, 0.4),
        adoption=rng.gauss(0.0, 0.5),
        outcome=rng.gauss(0.0, 0.5),
        outcome_target=float(round(seats * 4, -1) or 10.0),
        nps_rate=0.01,
        nps_base=6.5 + rng.gauss(0.0, 1.2),
    )
