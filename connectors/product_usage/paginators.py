"""Paginators for the declarative REST source: cursor, page, offset and Link header.

Each takes the response of one page and says how to ask for the next (or
that there is none). A paginator that is handed the same "next" twice raises
instead of spinning forever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from clghub.errors import ClghubError

__all__ = [
    "CursorPaginator",
    "LinkPaginator",
    "OffsetPaginator",
    "PagePaginator",
    "PaginationLoop",
    "Paginator",
    "dig",
    "make_paginator",
]


class PaginationLoop(ClghubError):
    """The API pointed at a page it had already served."""


def dig(body: Any, path: str) -> Any:
    """The value at a dotted path (``data.items``); an empty path is the body itself."""
    value = body
    for part in [p for p in path.split(".") if p]:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


class Paginator(Protocol):
    def first(self, state: dict[str, Any]) -> dict[str, Any]:
        """Query parameters (or ``{"url": ...}``) of the first request, resuming from ``state``."""
        ...

    def next(self, body: Any, headers: dict[str, str], count: int) -> dict[str, Any] | None:
        """The next request after a page of ``count`` records, or None at the end."""
        ...

    def state(self) -> dict[str, Any]:
        """What to store to resume at the next request."""
        ...


@dataclass
class _LoopGuard:
    seen: set[str] = field(default_factory=set)

    def check(self, token: str) -> None:
        if token in self.seen:
            raise PaginationLoop(f"pagination loop: the API returned {token!r} twice")
        self.seen.add(token)


@dataclass
class CursorPaginator:
    param: str
    next_path: str
    _token: str | None = None
    _guard: _LoopGuard = field(default_factory=_LoopGuard)

    def first(self, state: dict[str, Any]) -> dict[str, Any]:
        self._token = state.get("cursor")
        return {self.param: self._token} if self._token else {}

    def next(self, body: Any, headers: dict[str, str], count: int) -> dict[str, Any] | None:
        token = dig(body, self.next_path)
        if token in (None, "", False):
            return None
        self._token = str(token)
        self._guard.check(self._token)
        return {self.param: self._token}

    def state(self) -> dict[str, Any]:
        return {"cursor": self._token}


@dataclass
class PagePaginator:
    param: str
    size_param: str
    size: int
    total_pages_path: str = "total_pages"
    _page: int = 1

    def first(self, state: dict[str, Any]) -> dict[str, Any]:
        self._page = int(state.get("page", 1))
        return {self.param: self._page, self.size_param: self.size}

    def next(self, body: Any, headers: dict[str, str], count: int) -> dict[str, Any] | None:
        total = dig(body, self.total_pages_path)
        if count == 0 or (isinstance(total, int) and self._page >= total):
            return None
        self._page += 1
        return {self.param: self._page, self.size_param: self.size}

    def state(self) -> dict[str, Any]:
        return {"page": self._page}


@dataclass
class OffsetPaginator:
    param: str
    limit_param: str
    size: int
    total_path: str = "total"
    _offset: int = 0

    def first(self, state: dict[str, Any]) -> dict[str, Any]:
        self._offset = int(state.get("offset", 0))
        return {self.param: self._offset, self.limit_param: self.size}

    def next(self, body: Any, headers: dict[str, str], count: int) -> dict[str, Any] | None:
        total = dig(body, self.total_path)
        self._offset += count
        if count == 0 or (isinstance(total, int) and self._offset >= total):
            return None
        return {self.param: self._offset, self.limit_param: self.size}

    def state(self) -> dict[str, Any]:
        return {"offset": self._offset}


_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?', re.IGNORECASE)


@dataclass
class LinkPaginator:
    """RFC 8288 ``Link: <url>; rel="next"``; the URL carries every parameter."""

    _url: str | None = None
    _guard: _LoopGuard = field(default_factory=_LoopGuard)

    def first(self, state: dict[str, Any]) -> dict[str, Any]:
        self._url = state.get("url")
        return {"url": self._url} if self._url else {}

    def next(self, body: Any, headers: dict[str, str], count: int) -> dict[str, Any] | None:
        link = next((v for k, v in headers.items() if k.lower() == "link"), "")
        match = _LINK.search(link)
        if not match:
            return None
        self._url = match.group(1)
        self._guard.check(self._url)
        return {"url": self._url}

    def state(self) -> dict[str, Any]:
        return {"url": self._url}


def make_paginator(
    style: str,
    *,
    cursor_param: str,
    next_cursor_path: str,
    page_param: str,
    per_page_param: str,
    offset_param: str,
    limit_param: str,
    page_size: int,
) -> Paginator:
    if style == "cursor":
        return CursorPaginator(cursor_param, next_cursor_path)
    if style == "page":
        return PagePaginator(page_param, per_page_param, page_size)
    if style == "offset":
        return OffsetPaginator(offset_param, limit_param, page_size)
    return LinkPaginator()
