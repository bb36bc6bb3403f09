"""Names of companies and people, clean and deliberately dirty.

Real CRM data carries apostrophes, ampersands, Slack control sequences,
markup, very long names and every script; the sandbox does too, so the
writers' escaping and the store's Unicode handling are exercised by default.
"""

from __future__ import annotations

import functools
import random
import re
import unicodedata

__all__ = [
    "DIRTY_COMPANY_NAMES",
    "company_name",
    "domain_for",
    "email_local",
    "person_name",
    "slug",
]

_PREFIXES = (
    "Blue",
    "North",
    "Silver",
    "Bright",
    "Summit",
    "Harbor",
    "Granite",
    "Cedar",
    "Iron",
    "Golden",
    "Pioneer",
    "Atlas",
    "Vertex",
    "Evergreen",
    "Redwood",
    "Crescent",
    "Beacon",
    "Falcon",
    "Lakeside",
    "Prairie",
    "Quantum",
    "Orbit",
    "Nimbus",
    "Coastal",
    "Keystone",
    "Riverbend",
    "Sterling",
    "Maple",
    "Aurora",
    "Polar",
    "Sunrise",
    "Copper",
    "Meridian",
    "Horizon",
    "Highland",
    "Juniper",
    "Oakmont",
    "Pinnacle",
    "Tidewater",
    "Westfield",
)
_CORES = (
    "Logistics",
    "Analytics",
    "Health",
    "Foods",
    "Robotics",
    "Payments",
    "Learning",
    "Media",
    "Energy",
    "Apparel",
    "Insurance",
    "Labs",
    "Freight",
    "Dental",
    "Capital",
    "Software",
    "Studios",
    "Pharma",
    "Motors",
    "Outfitters",
    "Networks",
    "Clinics",
    "Brewing",
    "Systems",
    "Materials",
    "Hospitality",
    "Security",
    "Biotech",
    "Marketplace",
    "Devices",
)
_SUFFIXES = ("Inc.", "LLC", "Group", "Co.", "Corp.", "Ltd", "Holdings", "Partners", "", "", "")

# Real companies with names in many scripts and with diacritics.
_UNICODE_NAMES = (
    "Müller Maschinenbau GmbH",
    "Société Générale de Logiciels",
    "Zürcher Datenwerk AG",
    "Łódź Systemy Sp. z o.o.",
    "株式会社さくらソフト",
    "北京云数科技有限公司",
    "Ярославль Телеком",
    "Café Olé Distribución S.A.",
    "Øresund Logistik ApS",
    "São Paulo Pagamentos Ltda.",
    "Ελληνική Ανάλυση Α.Ε.",
    "शर्मा टेक्नोलॉजीज",
    "Smørrebrød & Co",
    "İstanbul Yazılım A.Ş.",
    "Nguyễn Thương Mại",
    "🚀 Rocket Emoji Labs",
)

# Names that break naive escaping: Slack mrkdwn control sequences, markup,
# quotes, SQL-ish text and a name at the Salesforce limit of 255 characters.
DIRTY_COMPANY_NAMES = (
    "O'Brien & Sons",
    "<!channel> Corp",
    "Acme <https://evil.example|click>",
    "Very Long Name " + "Consolidated International " * 8 + "Holdings",
    "<@U0123456> Holdings",
    "*Bold* _Italic_ ~Strike~ Ltd",
    "Robert'); DROP TABLE accounts;-- Inc.",
    '"Quoted" Widgets',
    "Tab\tand\nNewline Ltd",
    "   Padded Name   ",
    "AT&T-ish Resellers <b>Inc</b>",
    "X" * 255,
)

_FIRST_NAMES = (
    "James",
    "Mary",
    "Wei",
    "Priya",
    "Carlos",
    "Aisha",
    "Liam",
    "Sofia",
    "Noah",
    "Emma",
    "Mateo",
    "Olivia",
    "Hiroshi",
    "Fatima",
    "Lukas",
    "Chloé",
    "Søren",
    "Zoë",
    "José",
    "Ana",
    "Ivan",
    "Yuki",
    "Kwame",
    "Ingrid",
    "Raj",
    "Mei",
    "Omar",
    "Grace",
    "Tomás",
    "Nadia",
    "Ethan",
    "Amara",
    "Pierre",
    "Leila",
    "Daniel",
    "Hannah",
    "Łukasz",
    "Björn",
    "Siobhán",
    "Dmitri",
    "Chen",
    "Elena",
    "Kofi",
    "Isabel",
    "Arjun",
    "Maya",
    "Jonas",
)
_LAST_NAMES = (
    "Smith",
    "Garcia",
    "Chen",
    "Patel",
    "Müller",
    "Kim",
    "Nguyen",
    "Johnson",
    "Rossi",
    "Silva",
    "Kowalski",
    "Ivanova",
    "Tanaka",
    "Okafor",
    "Hansen",
    "Dubois",
    "O'Brien",
    "García-López",
    "Van der Berg",
    "Nakamura",
    "Singh",
    "Ahmed",
    "Brown",
    "Martin",
    "Schmidt",
    "Cohen",
    "Andersson",
    "Novak",
    "Fernández",
    "Murphy",
    "Wójcik",
    "Yilmaz",
    "Haddad",
    "Costa",
    "Moreau",
    "Sato",
    "Mensah",
    "Larsen",
    "Popescu",
    "Reyes",
    "Lee",
)

_TLDS = (".com", ".com", ".com", ".io", ".co", ".net", ".de", ".co.uk", ".fr", ".com.au")


def company_name(rng: random.Random, index: int) -> str:
    """The name of company ``index``: one in 37 is dirty, one in 29 in another script.

    They come at fixed places, in the order listed, so even a small org
    (the demo's) has the worst offenders: ``<!channel> Corp`` is company 44.
    """
    if index % 37 == 7:
        return DIRTY_COMPANY_NAMES[(index // 37) % len(DIRTY_COMPANY_NAMES)]
    if index % 29 == 3:
        return _UNICODE_NAMES[(index // 29) % len(_UNICODE_NAMES)]
    suffix = rng.choice(_SUFFIXES)
    name = f"{rng.choice(_PREFIXES)} {rng.choice(_CORES)}"
    return f"{name} {suffix}" if suffix else name


def person_name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)


_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=4096)
def slug(text: str) -> str:
    """Lowercase ASCII letters and digits only (diacritics folded, the rest dropped)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NON_ALNUM.sub("", folded.lower())


def email_local(first: str, last: str) -> str:
    return f"{slug(first) or 'user'}.{slug(last) or 'person'}"


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rem = divmod(number, 36)
        out = digits[rem] + out
        if not number:
            return out


def domain_for(name: str, index: int, rng: random.Random) -> str:
    """A web domain for a company; the index keeps distinct companies apart."""
    words = [slug(word) for word in name.split()[:2]]
    stem = "".join(word for word in words if word)[:24] or "company"
    return f"{stem}{_base36(index)}{rng.choice(_TLDS)}"
