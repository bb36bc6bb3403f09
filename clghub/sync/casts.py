"""Casts from source values to store values.

Each cast takes whatever a source sent (strings, numbers, booleans, None)
and returns a clean value or raises :class:`CastError` with a reason a
person can act on; the record then goes to quarantine with that reason.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from clghub.store.types import MONEY_SCALE

__all__ = [
    "CASTS",
    "CastError",
    "clean_text",
    "normalize_domain",
    "to_bool",
    "to_date",
    "to_datetime",
]


class CastError(ValueError):
    """A value that cannot become what the mapping says."""


# C0 controls other than tab, newline and carriage return carry no meaning in CRM
# text, and PostgreSQL cannot store NUL at all.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_EPOCH = re.compile(r"-?\d{9,14}(\.\d+)?")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?", re.ASCII)
_WHOLE_NUMBER = re.compile(r"(-?\d+)(\.0+)?", re.ASCII)
_CURRENCY = re.compile(r"[A-Z]{3}")
_HOST = re.compile(r"[\w.-]+")
# A URL whose host part is plain (letters, digits, dots, dashes): the host is
# what urlsplit would find, lowercased, so the common case skips urlsplit.
_PLAIN_URL = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*:)?//([A-Za-z0-9._-]*)(?:[/?#].*)?", re.DOTALL)


def clean_text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        return text  # the common case: nothing to clean
    # Lone surrogates (invalid UTF-16 halves) cannot be encoded; drop them.
    text = (
        text.encode("utf-8", "surrogatepass").decode("utf-8", "ignore")
        if _has_surrogate(text)
        else text
    )
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    return text


def _has_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def _str(value: Any) -> str | None:
    # Hot path (most fields of most records): plain printable ASCII needs no cleaning.
    if value.__class__ is str and value.isascii() and value.isprintable():
        return value.strip() or None
    text = clean_text(value)
    if text is None:
        return None
    text = text.strip()
    return text or None


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if value.__class__ is str and (whole := _WHOLE_NUMBER.fullmatch(value)):
        return int(whole.group(1))  # what the Decimal route below gives, without it
    if isinstance(value, bool):
        raise CastError(f"expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    number = _decimal(value)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise CastError(f"expected a whole number, got {value!r}")
    return int(number)


def _float(value: Any) -> float | None:
    if type(value) is float or type(value) is int:
        if not math.isfinite(value):
            raise CastError(f"expected a finite number, got {value!r}")
        return float(value)
    if value.__class__ is str and _PLAIN_NUMBER.fullmatch(value):
        # float() rounds the text as float(Decimal(text)) does; huge values take the route below.
        fast = float(value)
        if math.isfinite(fast):
            return fast
    number = _decimal(value)
    if number is None:
        return None
    result = float(number)
    if not math.isfinite(result):  # a finite Decimal such as 1e400 overflows a float
        raise CastError(f"number {_show(value)} is out of range")
    return result


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise CastError(f"expected a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CastError(f"expected a finite number, got {value!r}")
        return Decimal(repr(value))
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    else:
        text = str(value).strip().replace(",", "").replace("_", "")
        if text == "":
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise CastError(f"expected a number, got {_show(value)}") from None
    if not number.is_finite():
        raise CastError(f"expected a finite number, got {_show(value)}")
    return number


# The store keeps money as 64-bit integer ten-thousandths (clghub.store.types):
# beyond this an amount cannot be stored at all, whatever a mapping's bounds say.
_MONEY_LIMIT = Decimal(2**63 - 1) / MONEY_SCALE


def _money(value: Any) -> Decimal | None:
    number = _decimal(value)
    if number is not None and abs(number) > _MONEY_LIMIT:
        raise CastError(f"amount {_show(value)} is too large to be money")
    return number


_TRUE = ("true", "1", "yes", "y", "t")
_FALSE = ("false", "0", "no", "n", "f")
_BOOL_WORDS = {
    spelled: truth
    for words, truth in ((_TRUE, True), (_FALSE, False))
    for word in words
    for spelled in (word, word.upper(), word.title())
}


def _bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if value.__class__ is str and (exact := _BOOL_WORDS.get(value)) is not None:
        return exact  # as written (true, FALSE, Yes, 1, ...): no normalizing needed
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CastError(f"expected true or false, got {_show(value)}")


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d")
_EPOCH_MS_THRESHOLD = 100_000_000_000  # larger numbers are milliseconds


def _epoch(number: float) -> datetime:
    seconds = number / 1000 if abs(number) >= _EPOCH_MS_THRESHOLD else number
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    except OverflowError:
        raise CastError(f"timestamp {number!r} is out of range") from None


def _datetime(value: Any) -> datetime | None:
    """ISO 8601 (Z, +hh:mm, +hhmm or naive = UTC), epoch seconds or milliseconds, YYYY/MM/DD."""
    if value is None or value == "":
        return None
    if value.__class__ is str and value[4:5] == "-":
        # Hot path: an ISO 8601 string as the CRMs send it (it cannot be an
        # epoch number with a dash there).
        try:
            fast = datetime.fromisoformat(value)
        except ValueError:
            pass  # the full route below says why
        else:
            if fast.tzinfo is UTC and 1900 <= fast.year <= 2200:
                return fast
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch(float(value))
    else:
        text = str(value).strip()
        if _EPOCH.fullmatch(text):
            return _epoch(float(text))
        try:
            # ISO 8601 as the CRMs write it (Z, +00:00 and, since 3.11, +0000).
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = _parse_date_formats(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not 1900 <= moment.year <= 2200:
        raise CastError(f"date {_show(value)} is out of range")
    return moment.astimezone(UTC)


def _parse_date_formats(text: str) -> datetime:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise CastError(f"unreadable date {_show(text)} (use ISO 8601, e.g. 2024-05-31)")


def _date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DAY.fullmatch(value.strip()):
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise CastError(f"no such date {_show(value)}") from None
        if not 1900 <= day.year <= 2200:
            raise CastError(f"date {_show(value)} is out of range")
        return day
    moment = _datetime(value)
    return None if moment is None else moment.date()


def normalize_domain(value: Any) -> str | None:
    """``https://www.Acme.com/about`` -> ``acme.com``; None when there is no domain."""
    text = _str(value)
    if not text:
        return None
    if "@" in text and "//" not in text:
        text = text.rsplit("@", 1)[1]
    if "//" not in text:
        text = "//" + text
    plain = _PLAIN_URL.fullmatch(text)
    if plain is not None:
        host = plain.group(1)
    else:
        try:
            host = urlsplit(text).hostname or ""
        except ValueError:
            return None
    host = host.strip(".").lower()
    if host.startswith("www."):
        host = host[4:]
    if "." not in host or len(host) > 253 or not _HOST.fullmatch(host):
        return None
    return host


def _email(value: Any) -> str | None:
    text = _str(value)
    if not text:
        return None
    text = text.lower()
    if "@" not in text:
        raise CastError(f"not an email address: {_show(value)}")
    return text


def _currency(value: Any) -> str | None:
    text = _str(value)
    if text is None:
        return None
    code = text.upper()
    if not _CURRENCY.fullmatch(code):
        raise CastError(f"not a currency code: {_show(value)}")
    return code


def _lower(value: Any) -> str | None:
    text = _str(value)
    return None if text is None else text.lower()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


CASTS: dict[str, Callable[[Any], Any]] = {
    "str": _str,
    "text": clean_text,
    "int": _int,
    "float": _float,
    "decimal": _decimal,
    "money": _money,
    "bool": _bool,
    "date": _date,
    "datetime": _datetime,
    "domain": normalize_domain,
    "email": _email,
    "currency": _currency,
    "lower": _lower,
}


to_bool = _bool
to_date = _date
to_datetime = _datetime
