"""Pager strategies: how a list endpoint is walked page by page.

A pager knows only the paging parameters and when to stop. The client gives
it ``fetch(params) -> page``, which merges ``params`` into the request (a
query, a JSON body, a nested ``pager`` object: the client decides) and
returns the decoded response; the pager yields each page's items.

- ``CursorPager``: the response names the next cursor; absent means done
  (DingTalk old ``next_cursor``, WeCom ``next_cursor``/``new_next_cursor``).
- ``PageTokenPager``: an opaque token plus, on some systems, ``has_more``
  (DingTalk v1.0 ``nextToken``, Feishu ``page_token``/``has_more``).
- ``OffsetLimitPager``: a start row and a limit; a short page means done, or
  a total when the system sends one (Kingdee ``StartRow``/``Limit``, Ekuaibao
  ``start``/``count``).
- ``PageIndexPager``: a page number and a record count (Yonyou ``pageIndex``
  from 1 plus ``recordCount``).

source-systems.md §9 lists the systems' paging styles side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Fetch = Callable[[dict[str, Any]], Any]
Extract = Callable[[Any], Any]


class PagingError(RuntimeError):
    """The server's paging does not advance (it would loop forever)."""


class CursorPager:
    """Send ``cursor_param``; the response's next cursor, when absent, ends the walk."""

    def __init__(
        self,
        *,
        items: Extract,
        next_cursor: Extract,
        cursor_param: str = "cursor",
        start: Any = 0,
        size_param: str | None = "size",
        size: int = 20,
        max_pages: int = 100_000,
    ) -> None:
        self.items = items
        self.next_cursor = next_cursor
        self.cursor_param = cursor_param
        self.start = start
        self.size_param = size_param
        self.size = size
        self.max_pages = max_pages

    def pages(self, fetch: Fetch) -> Iterator[list[Any]]:
        cursor = self.start
        seen = {cursor}
        for _ in range(self.max_pages):
            params = {self.cursor_param: cursor}
            if self.size_param:
                params[self.size_param] = self.size
            page = fetch(params)
            yield list(self.items(page) or [])
            cursor = self.next_cursor(page)
            if cursor is None or cursor == "":
                return
            if cursor in seen:
                raise PagingError(f"cursor {cursor!r} came back twice")
            seen.add(cursor)
        raise PagingError(f"more than {self.max_pages} pages")


class PageTokenPager:
    """An opaque page token; done when the token is absent or ``has_more`` is false."""

    def __init__(
        self,
        *,
        items: Extract,
        next_token: Extract,
        has_more: Extract | None = None,
        token_param: str = "page_token",
        start: Any = None,
        size_param: str | None = "page_size",
        size: int = 20,
        max_pages: int = 100_000,
    ) -> None:
        self.items = items
        self.next_token = next_token
        self.has_more = has_more
        self.token_param = token_param
        self.start = start
        self.size_param = size_param
        self.size = size
        self.max_pages = max_pages

    def pages(self, fetch: Fetch) -> Iterator[list[Any]]:
        token = self.start
        for _ in range(self.max_pages):
            params: dict[str, Any] = {}
            if token is not None:
                params[self.token_param] = token
            if self.size_param:
                params[self.size_param] = self.size
            page = fetch(params)
            yield list(self.items(page) or [])
            following = self.next_token(page)
            if following in (None, "") or (self.has_more is not None and not self.has_more(page)):
                return
            if following == token:
                raise PagingError(f"page token {following!r} came back twice")
            token = following
        raise PagingError(f"more than {self.max_pages} pages")


class OffsetLimitPager:
    """A start offset and a limit: ``start += limit`` until a short page (or ``total`` is reached).

    Kingdee ExecuteBillQuery has no total: a page shorter than ``Limit`` is the
    last (source-systems.md §7.3). An empty full-size-looking page cannot
    happen, so the walk also stops on an empty page.
    """

    def __init__(
        self,
        *,
        items: Extract = lambda page: page,
        start_param: str = "StartRow",
        limit_param: str = "Limit",
        limit: int = 2000,
        start: int = 0,
        total: Extract | None = None,
        max_pages: int = 1_000_000,
    ) -> None:
        if limit <= 0:
            raise ValueError("limit must be positive")
        self.items = items
        self.start_param = start_param
        self.limit_param = limit_param
        self.limit = limit
        self.start = start
        self.total = total
        self.max_pages = max_pages

    def pages(self, fetch: Fetch) -> Iterator[list[Any]]:
        offset = self.start
        for _ in range(self.max_pages):
            page = fetch({self.start_param: offset, self.limit_param: self.limit})
            rows = list(self.items(page) or [])
            yield rows
            offset += len(rows)
            total = self.total(page) if self.total is not None else None
            if len(rows) < self.limit or not rows or (total is not None and offset >= int(total)):
                return
        raise PagingError(f"more than {self.max_pages} pages")


class PageIndexPager:
    """A page number (from ``first``) and a page size; done at the record count or an empty page."""

    def __init__(
        self,
        *,
        items: Extract,
        total: Extract,
        index_param: str = "pageIndex",
        size_param: str = "pageSize",
        size: int = 100,
        first: int = 1,
        max_pages: int = 100_000,
    ) -> None:
        self.items = items
        self.total = total
        self.index_param = index_param
        self.size_param = size_param
        self.size = size
        self.first = first
        self.max_pages = max_pages

    def pages(self, fetch: Fetch) -> Iterator[list[Any]]:
        seen = 0
        for index in range(self.first, self.first + self.max_pages):
            page = fetch({self.index_param: index, self.size_param: self.size})
            rows = list(self.items(page) or [])
            yield rows
            seen += len(rows)
            if not rows or seen >= int(self.total(page)):
                return
        raise PagingError(f"more than {self.max_pages} pages")
