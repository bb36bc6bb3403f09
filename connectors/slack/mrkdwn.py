"""Slack mrkdwn: text from CRM data shown as text, never as markup.

Slack reads ``<...>`` as links and mentions (``<!channel>`` pings everyone,
``<https://x|click>`` is a link) and ``&`` as the start of an entity, so
those three become ``&amp; &lt; &gt;``. Mrkdwn has no escape for its style
markers, so ``*``, ``_``, ``~`` and a backtick become look-alike characters:
a customer named ``*URGENT*`` cannot make the message bold. See
https://docs.slack.dev/messaging/formatting-message-text#escaping
"""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["bold", "clip", "escape", "link", "plain"]

_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_STYLE_MARKERS = str.maketrans(
    {
        "*": "\u2217",  # ASTERISK OPERATOR
        "_": "\u02cd",  # MODIFIER LETTER LOW MACRON
        "~": "\u223c",  # TILDE OPERATOR
        "`": "\u02cb",  # MODIFIER LETTER GRAVE ACCENT
    }
)
# Control characters other than newline and tab have no place in a message.
_CONTROLS = {c: None for c in range(32) if c not in (9, 10)} | {127: None}


def escape(text: object) -> str:
    """Any value as mrkdwn that shows exactly its text."""
    return str(text).translate(_CONTROLS).translate(_ENTITIES).translate(_STYLE_MARKERS)


def plain(text: object, limit: int | None = None) -> str:
    """Text for a ``plain_text`` object (Slack shows it as is): controls removed, cut to ``limit``."""
    value = " ".join(str(text).translate(_CONTROLS).split())
    if limit is not None and len(value) > limit:
        value = value[: max(0, limit - 1)].rstrip() + "…"
    return value


def bold(text: str) -> str:
    """Already escaped text in bold."""
    return f"*{text}*"


def link(url: str, label: object) -> str:
    """A link with an escaped label; the URL's own ``|``, ``<`` and ``>`` are percent-encoded."""
    safe_url = quote(url, safe=":/?#[]@!$&'()*+,;=%-._~")
    safe_url = safe_url.replace("&", "&amp;")
    # The first "|" ends the URL; one in the label is made a look-alike so no
    # parser can read the label as a second target.
    return f"<{safe_url}|{escape(label).replace('|', '∣')}>"


def clip(text: str, limit: int) -> str:
    """Mrkdwn cut to ``limit`` characters without leaving half an entity or half a link."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    opening = cut.rfind("<")
    if opening != -1 and ">" not in cut[opening:]:
        cut = cut[:opening]
    return cut + "…"
