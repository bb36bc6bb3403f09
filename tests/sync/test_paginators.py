"""Paginators on bare responses, including loop detection."""

from __future__ import annotations

import pytest

from clghub.connectors.product_usage.paginators import (
    CursorPaginator,
    LinkPaginator,
    OffsetPaginator,
    PagePaginator,
    PaginationLoop,
    dig,
)


def test_dig() -> None:
    assert dig({"a": {"b": [1, {"c": 3}]}}, "a.b.1.c") == 3
    assert dig({"a": 1}, "") == {"a": 1}
    assert dig({"a": 1}, "x.y") is None


def test_cursor_pages_until_empty_and_resumes() -> None:
    paginator = CursorPaginator("cursor", "meta.next")
    assert paginator.first({}) == {}
    assert paginator.next({"meta": {"next": "abc"}}, {}, 10) == {"cursor": "abc"}
    assert paginator.state() == {"cursor": "abc"}
    assert paginator.next({"meta": {"next": None}}, {}, 3) is None
    resumed = CursorPaginator("cursor", "meta.next")
    assert resumed.first({"cursor": "abc"}) == {"cursor": "abc"}


def test_cursor_loop_is_detected() -> None:
    paginator = CursorPaginator("cursor", "next")
    paginator.next({"next": "same"}, {}, 1)
    with pytest.raises(PaginationLoop):
        paginator.next({"next": "same"}, {}, 1)


def test_page_and_offset() -> None:
    pages = PagePaginator("page", "per_page", 50)
    assert pages.first({}) == {"page": 1, "per_page": 50}
    assert pages.next({"total_pages": 2}, {}, 50) == {"page": 2, "per_page": 50}
    assert pages.next({"total_pages": 2}, {}, 50) is None
    offsets = OffsetPaginator("offset", "limit", 100)
    assert offsets.first({"offset": 200}) == {"offset": 200, "limit": 100}
    assert offsets.next({"total": 350}, {}, 100) == {"offset": 300, "limit": 100}
    assert offsets.next({"total": 350}, {}, 50) is None
    assert offsets.next({}, {}, 0) is None


def test_link_header() -> None:
    paginator = LinkPaginator()
    headers = {
        "Link": '<https://api.example/u?page=2>; rel="next", <https://api.example/u?page=9>; rel="last"'
    }
    assert paginator.next([], headers, 10) == {"url": "https://api.example/u?page=2"}
    assert paginator.next([], {"Link": '<https://api.example/u?page=9>; rel="last"'}, 10) is None
    with pytest.raises(PaginationLoop):
        paginator.next([], headers, 10)
