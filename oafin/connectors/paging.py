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
  from 1 plus ``recordCount``); without a count, a short page is the last (Seeyon CAP4
  export ``page``/``pageSize``, source-systems.md §5).

source-systems.md §9 lists the systems' paging styles side by side.

Every pager also watches for a server whose paging does not advance (issue #10 item 11: a
Kingdee that ignored ``StartRow`` answered 2,706 identical pages in 10 minutes) and raises
``PagingError`` naming the paging parameter on: the same page twice in a row; more than
``max_empty_pages`` empty pages in a row that each name a next page; more rows than the
reported total. The client turns it into a ``BadResponseError`` naming the system and call.

Nothing may be lost silently either: a page that says there is more but gives no way to go on
(``has_more`` with no page token; an empty page before the reported total is reached) is a
``PagingError`` naming the page number, never the end of the walk; so is a reported total that
falls during the walk (the rows behind the removed ones moved onto pages already read). Every message names the page
(``page 3 (page_token=...)``), counted from 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

Fetch = Callable[[dict[str, Any]], Any]
Extract = Callable[[Any], Any]


DEFAULT_MAX_EMPTY_PAGES = 10
# A single-row page repeated can be two identical entry lines (Kingdee returns one row per line);
# a repeated page of several rows cannot.
SINGLE_ROW_REPEATS = 50


class PagingError(RuntimeError):
    """The server's paging does not advance (it would loop forever)."""


def unique_ids(pages: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Each id of a paged id list once, as text, in page order: a list that shifts while it is
    walked shows a record on two pages, and it is read once. A ``PagingError`` passes through."""
    seen: set[str] = set()
    for ids in pages:
        for raw in ids:
            text = str(raw)
            if text not in seen:
                seen.add(text)
                yield text


class Progress:
    """Watches one walk for pages that do not advance: the same page again, endless empty pages."""

    def __init__(self, max_empty_pages: int = DEFAULT_MAX_EMPTY_PAGES) -> None:
        self.max_empty_pages = max_empty_pages
        self._previous: list[Any] | None = None
        self._previous_at = ""
        self._repeats = 0
        self._empty = 0

    def check(self, rows: list[Any], at: str) -> None:
        """``rows`` is the page just fetched; ``at`` says which (``page 3 (StartRow=4000, Limit=2000)``)."""
        if rows:
            self._empty = 0
            if rows == self._previous:
                self._repeats += 1
                if len(rows) > 1 or self._repeats >= SINGLE_ROW_REPEATS:
                    raise PagingError(
                        f"{at} is the same {len(rows)} rows as {self._previous_at}: "
                        "the server does not advance (does it ignore the paging parameter?)"
                    )
            else:
                self._repeats = 0
        else:
            self._empty += 1
            if self._empty > self.max_empty_pages:
                raise PagingError(
                    f"{self._empty} empty pages in a row, the last {at}, each naming a next page: "
                    "the server's cursor advances over nothing"
                )
        self._previous, self._previous_at = rows, at


def _at(number: int, params: dict[str, Any]) -> str:
    """Where a walk is: ``page 3 (StartRow=4000, Limit=2000)``, pages counted from 1."""
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    return f"page {number} ({shown})" if shown else f"page {number}"


def _fallen_total(at: str, before: int | None, total: int) -> PagingError | None:
    """A total lower than the highest an earlier page reported: rows left the list while it was
    walked, every later row moved back onto pages already read, and as many are never served.
    (A total that grows repeats a row instead, and a repeated row is read once.)"""
    if before is None or total >= before:
        return None
    return PagingError(
        f"{at}: the reported total fell from {before} to {total} during the walk, so rows moved "
        "onto pages already read and would be skipped; read the list again"
    )


def _short_of_total(at: str, seen: int, total: int) -> PagingError:
    return PagingError(
        f"{at} came back empty after {seen} of the reported total of {total} rows: "
        "the rest cannot be read, and ending the walk here would drop them silently"
    )


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
        max_empty_pages: int = DEFAULT_MAX_EMPTY_PAGES,
    ) -> None:
        self.items = items
        self.next_cursor = next_cursor
        self.max_empty_pages = max_empty_pages
        self.cursor_param = cursor_param
        self.start = start
        self.size_param = size_param
        self.size = size
        self.max_pages = max_pages

    def pages(self, fetch: Fetch) -> Iterator[list[Any]]:
        cursor = self.start
        seen = {cursor}
        progress = Progress(self.max_empty_pages)
        for number in range(1, self.max_pages + 1):
            params = {self.cursor_param: cursor}
            if self.size_param:
                params[self.size_param] = self.size
            page = fetch(params)
            rows = list(self.items(page) or [])
            yield rows
            cursor = self.next_cursor(page)
            if cursor is None or cursor == "":
                return
            progress.check(rows, _at(number, params))
            if cursor in seen:
                raise PagingError(f"{_at(number, params)} names cursor {cursor!r}, which came back twice")
            seen.add(cursor)
        raise PagingError(f"more than {self.max_pages} pages")


class PageTokenPager:
    """An opaque page token; done when ``has_more`` is false, or (without ``has_more``) the token is absent.

    ``has_more`` true with no token is an error, not the end: Feishu sends the two together and
    ends with ``has_more: false, page_token: ""`` (source-systems.md §3.2, real-clients.md §2.2);
    neither says a page may carry ``has_more`` without a token, so such a page is not retried.
    A token seen before (not only the last one) is an error too: the walk would loop.
    """

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
        max_empty_pages: int = DEFAULT_MAX_EMPTY_PAGES,
    ) -> None:
        self.items = items
        self.next_token = next_token
        self.max_empty_pages = max_empty_pages
        self.has_more = has_more
        self.token_param = token_param
        self.start = start
        self.size_param = size_param
        self.size = size
        self.max_pages = max_pages

    def pages(self, fetch: Fetch) -> Iterator[list[Any]]:
        token = self.start
        seen = {token}
        progress = Progress(self.max_empty_pages)
        for number in range(1, self.max_pages + 1):
            params: dict[str, Any] = {}
            if token is not None:
                params[self.token_param] = token
            if self.size_param:
                params[self.size_param] = self.size
            page = fetch(params)
            rows = list(self.items(page) or [])
            yield rows
            following = self.next_token(page)
            if self.has_more is not None and not self.has_more(page):
                return
            if following in (None, ""):
                if self.has_more is None:
                    return
                raise PagingError(
                    f"{_at(number, params)} says has_more but gives no page token ({following!r}): "
                    "the rest cannot be read, and ending the walk here would drop them silently"
                )
            progress.check(rows, _at(number, params))
            if following in seen:
                raise PagingError(
                    f"{_at(number, params)} names page token {following!r}, which came back twice"
                )
            seen.add(following)
            token = following
        raise PagingError(f"more than {self.max_pages} pages")


class OffsetLimitPager:
    """A start offset and a limit: ``start += limit`` until a short page (or ``total`` is reached).

    Kingdee ExecuteBillQuery has no total: a page shorter than ``Limit`` is the
    last (source-systems.md §7.3). An empty full-size-looking page cannot
    happen, so the walk also stops on an empty page. With a ``total`` (Ekuaibao ``count``), an
    empty page before the total is reached is an error: the rest would be lost silently.
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
        progress = Progress()
        highest: int | None = None
        for number in range(1, self.max_pages + 1):
            params = {self.start_param: offset, self.limit_param: self.limit}
            page = fetch(params)
            rows = list(self.items(page) or [])
            at = _at(number, params)
            progress.check(rows, at)
            total = self.total(page) if self.total is not None else None
            if total is not None:
                if (fallen := _fallen_total(at, highest, int(total))) is not None:
                    raise fallen
                highest = int(total) if highest is None else max(highest, int(total))
            if total is not None and offset + len(rows) > int(total):
                raise PagingError(
                    f"{offset + len(rows)} rows by {at}, more than the reported total of {total}"
                )
            if total is not None and not rows and offset < int(total):
                raise _short_of_total(at, offset, int(total))
            yield rows
            offset += len(rows)
            if len(rows) < self.limit or not rows or (total is not None and offset >= int(total)):
                return
        raise PagingError(f"more than {self.max_pages} pages")


class PageIndexPager:
    """A page number (from ``first``) and a page size; done at the record count or an empty page.

    ``total`` None: the system reports no count, so a page shorter than ``size`` is the last.
    With a count, an empty page before it is reached is an error: the rest would be lost silently.
    """

    def __init__(
        self,
        *,
        items: Extract,
        total: Extract | None = None,
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
        progress = Progress()
        highest: int | None = None
        for index in range(self.first, self.first + self.max_pages):
            params = {self.index_param: index, self.size_param: self.size}
            page = fetch(params)
            rows = list(self.items(page) or [])
            at = _at(index - self.first + 1, params)
            progress.check(rows, at)
            if self.total is None:
                yield rows
                if len(rows) < self.size:
                    return
                continue
            total = int(self.total(page))
            if (fallen := _fallen_total(at, highest, total)) is not None:
                raise fallen
            highest = total if highest is None else max(highest, total)
            if seen + len(rows) > total:
                raise PagingError(f"{seen + len(rows)} rows by {at}, more than the reported total of {total}")
            if not rows and seen < total:
                raise _short_of_total(at, seen, total)
            yield rows
            seen += len(rows)
            if seen >= total:
                return
        raise PagingError(f"more than {self.max_pages} pages")
