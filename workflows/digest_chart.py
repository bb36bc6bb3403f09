"""The ARR bridge as a waterfall chart (PNG), drawn with matplotlib's Agg backend.

A Figure with its own Agg canvas, never pyplot: no global state, no
display, safe in a scheduler thread.
"""

from __future__ import annotations

import io
from decimal import Decimal

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from clghub.workflows.digest_data import Bridge
from clghub.workflows.digest_text import format_money

__all__ = ["bridge_chart"]

_GREEN = "#2e7d32"
_RED = "#c62828"
_TOTAL = "#37474f"


def _short(amount: float, currency: str) -> str:
    return format_money(Decimal(str(round(amount, 2))), currency)


def bridge_chart(bridge: Bridge, currency: str, *, title: str) -> bytes:
    """The bridge start -> new -> expansion -> reactivation -> contraction -> churn -> end."""
    steps = [
        ("Start", float(bridge.start), "total"),
        ("New", float(bridge.new), "up"),
        ("Expansion", float(bridge.expansion), "up"),
        ("Reactivation", float(bridge.reactivation), "up"),
        ("Contraction", -float(bridge.contraction), "down"),
        ("Churn", -float(bridge.churn), "down"),
        ("End", float(bridge.end), "total"),
    ]
    figure = Figure(figsize=(8, 4.2), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    level = 0.0
    peak = max(1.0, float(bridge.start), float(bridge.end))
    for position, (_label, value, kind) in enumerate(steps):
        if kind == "total":
            bottom, height, color = 0.0, value, _TOTAL
            level = value
        else:
            bottom = level if value >= 0 else level + value
            height, color = abs(value), _GREEN if value >= 0 else _RED
            level += value
        peak = max(peak, bottom + height)
        axes.bar(position, height, bottom=bottom, color=color, width=0.6)
        text = _short(value if kind == "total" else abs(value), currency)
        sign = "" if kind == "total" else "+" if value >= 0 else "−"
        axes.annotate(
            sign + text,
            (position, bottom + height),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            fontsize=8,
        )
    axes.set_xticks(range(len(steps)), [label for label, _, _ in steps], fontsize=9)
    axes.set_ylim(0, peak * 1.12)
    axes.yaxis.set_major_formatter(lambda value, _pos: _short(value, currency))
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title(title, fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
