"""The part of Kingdee's ``FilterString`` / ``OrderString`` the fake server understands.

``FilterString`` is SQL-WHERE-like on field keys (source-systems.md §7.3), e.g.
``FDate >= '2026-10-01 00:00:00' AND FDate < '2026-11-01 00:00:00'``. Supported here:
comparisons (``= <> != > >= < <=``) of a field key with a quoted text or a number,
``AND``, ``OR`` and parentheses. Text that looks like a date compares as a date-time
(``'2026-10-01'`` is midnight), numbers compare as decimals. Anything else is refused
with ``FilterError`` (the server answers it as a Kingdee error).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<text>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)(?![\w.])"
    r"|(?P<op>>=|<=|<>|!=|=|>|<)|(?P<paren>[()])|(?P<word>[A-Za-z_][\w.]*))"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\Z")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class FilterError(ValueError):
    """A filter or order the sandbox cannot read; ``field`` names an unknown field key."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"过滤条件无法解析: {text[pos:]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, str) and _DATE.match(value.strip()):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


def _comparison(field: str, op: str, literal: Any) -> Predicate:
    compare = _OPS[op]
    if isinstance(literal, Decimal):

        def numeric(row: Row) -> bool:
            value = _as_decimal(row[field])
            return value is not None and compare(value, literal)

        return numeric
    moment = _as_datetime(literal)
    if moment is not None:

        def dated(row: Row) -> bool:
            value = _as_datetime(row[field])
            return value is not None and compare(value, moment)

        return dated
    return lambda row: compare(str(row[field]), literal)


class _Parser:
    def __init__(self, text: str, resolve: Callable[[str], str]) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.resolve = resolve

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("过滤条件无法解析: 条件不完整")
        self.pos += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() == word:
            self.pos += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        leftover = self.peek()
        if leftover is not None:
            raise FilterError(f"过滤条件无法解析: 多余的 {leftover[1]!r}")
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.keyword("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.atom()]
        while self.keyword("AND"):
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def atom(self) -> Predicate:
        kind, value = self.next()
        if (kind, value) == ("paren", "("):
            inner = self.disjunction()
            if self.next() != ("paren", ")"):
                raise FilterError("过滤条件无法解析: 括号不匹配")
            return inner
        if kind != "word":
            raise FilterError(f"过滤条件无法解析: 应为字段标识, 得到 {value!r}")
        field = self.resolve(value)
        op_kind, op = self.next()
        if op_kind != "op":
            raise FilterError(f"过滤条件无法解析: 应为比较运算符, 得到 {op!r}")
        lit_kind, lit = self.next()
        if lit_kind == "text":
            return _comparison(field, op, lit[1:-1].replace("''", "'"))
        if lit_kind == "number":
            return _comparison(field, op, Decimal(lit))
        raise FilterError(f"过滤条件无法解析: 应为常量, 得到 {lit!r}")


def parse_filter(text: str, resolve: Callable[[str], str]) -> Predicate:
    """A row predicate for ``text``; ``resolve`` maps a field key as written to the row's key
    (raising ``FilterError`` for an unknown one). An empty filter keeps every row."""
    if not text or not text.strip():
        return lambda row: True
    return _Parser(text, resolve).parse()


def parse_order(text: str, resolve: Callable[[str], str]) -> list[tuple[str, bool]]:
    """``"FDate DESC, FID"`` → ``[("FDate", True), ("FID", False)]`` (field, descending)."""
    order = []
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        words = part.split()
        if len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise FilterError(f"排序条件无法解析: {part!r}")
        order.append((resolve(words[0]), len(words) == 2 and words[1].upper() == "DESC"))
    return order


def sort_key(value: Any) -> tuple[int, Any]:
    """Order mixed values: numbers as decimals, date-like text as dates, other text as text."""
    if value is None or value == "":
        return (0, "")
    number = _as_decimal(value)
    if number is not None and number.is_finite():
        return (1, number)
    moment = _as_datetime(value)
    if moment is not None:
        return (2, moment)
    return (3, str(value))
