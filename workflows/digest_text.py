"""Numbers as the digest and alerts show them: compact money, percentages, changes."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["format_money", "percent", "points"]

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def format_money(amount: Decimal | None, currency: str, *, signed: bool = False) -> str:
    """Compact money for people: $1.24M, €312K, 950 CHF."""
    if amount is None:
        return "n/a"
    value = abs(amount)
    for size, suffix in (
        (Decimal(1_000_000_000), "B"),
        (Decimal(1_000_000), "M"),
        (Decimal(1_000), "K"),
    ):
        if value >= size:
            scaled = value / size
            number = (
                f"{scaled:.2f}"
                if scaled < 10
                else f"{scaled:.1f}"
                if scaled < 100
                else f"{scaled:.0f}"
            )
            text = number + suffix
            break
    else:
        text = f"{value:.0f}"
    symbol = _SYMBOLS.get(currency)
    text = f"{symbol}{text}" if symbol else f"{text} {currency}"
    sign = "−" if amount < 0 else "+" if signed and amount > 0 else ""
    return sign + text


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f}%"


def points(now: float | None, before: float | None) -> str | None:
    if now is None or before is None:
        return None
    change = (now - before) * 100
    arrow = "▲" if change > 0.05 else "▼" if change < -0.05 else "■"
    return f"{arrow} {change:+.1f} pts"
