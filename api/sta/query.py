"""SensorThings query options: ``$top``, ``$skip``, ``$count``, ``$orderby``, ``$filter``,
``$expand`` (pure).

``$filter`` is a small OData subset: comparisons of ``phenomenonTime`` with an ISO 8601 time
(offset required) and of ``result`` with a number, by ``eq ne gt ge lt le``, joined by
``and`` (binds tighter) and ``or``, grouped with parentheses. Anything else is a
:class:`~api.params.BadQuery` that says what was not understood. The parser builds a tree of
fixed names and operators plus typed values; it never hands text on, so a filter can only
ever become Flux through :mod:`api.sta.flux`, which writes values as parameters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from api.params import EARLIEST, LATEST, BadQuery

Op = Literal["eq", "ne", "gt", "ge", "lt", "le"]
Prop = Literal["phenomenonTime", "result"]
OPS: tuple[Op, ...] = ("eq", "ne", "gt", "ge", "lt", "le")
_OP_NAMES: dict[str, Op] = {op: op for op in OPS}
MAX_FILTER_CHARS = 2000
MAX_COMPARISONS = 32
MAX_DEPTH = 16


@dataclass(frozen=True)
class Comparison:
    """``prop op value``: a time for phenomenonTime, a number for result."""

    prop: Prop
    op: Op
    value: datetime | float


@dataclass(frozen=True)
class Logical:
    """``left and right`` or ``left or right``."""

    op: Literal["and", "or"]
    left: Expr
    right: Expr


Expr = Comparison | Logical

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<lparen>\()
    | (?P<rparen>\))
    | (?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?P<offset>Z|[+-]\d{2}:\d{2})?)
    | (?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?)
    | (?P<word>[A-Za-z_@][A-Za-z0-9_/.@]*)
    | (?P<string>'(?:[^']|'')*')
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    """One lexical token of a filter and where it starts."""

    kind: str
    text: str
    at: int


def tokens(text: str) -> list[Token]:
    """Split a filter into tokens; BadQuery at the first character that starts none."""
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        found = _TOKEN.match(text, pos)
        if found is None or found.lastgroup is None:
            raise BadQuery(f"$filter: cannot read {text[pos : pos + 20].strip()!r} at {pos}")
        kind = "time" if found.group("time") else found.lastgroup
        out.append(Token(kind, found.group(kind), found.start(kind)))
        pos = found.end()
    return out


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with an offset (fractions beyond microseconds are cut)."""
    head, dot, rest = text.partition(".")
    if dot:
        digits = re.match(r"\d+", rest)
        frac = digits.group(0) if digits else ""
        text = f"{head}.{frac[:6]}{rest[len(frac) :]}"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:  # 2026-02-30, hour 24, an offset of +25:00
        raise BadQuery(f"$filter: {text!r} is not a valid time: {err}") from None
    if moment.tzinfo is None:
        raise BadQuery(f"$filter: the time {text!r} needs an offset, e.g. 2026-11-27T10:00:00Z")
    # Compared before converting: year 1 at +01:00 has no UTC form in Python (OverflowError).
    if not EARLIEST <= moment < LATEST:
        raise BadQuery(
            f"$filter: {text!r} must lie in the years 1678 to 2261 (what InfluxDB stores)"
        )
    return moment.astimezone(UTC)


class _Parser:
    """Recursive descent: or_expr := and_expr ('or' and_expr)*; and_expr := term ('and' term)*;
    term := '(' or_expr ')' | property op literal."""

    def __init__(self, items: list[Token]) -> None:
        self.items = items
        self.pos = 0
        self.comparisons = 0

    def peek(self) -> Token | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise BadQuery("$filter ends too early: a comparison or ')' is missing")
        self.pos += 1
        return token

    def is_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text == word

    def or_expr(self, depth: int) -> Expr:
        expr = self.and_expr(depth)
        while self.is_word("or"):
            self.take()
            expr = Logical("or", expr, self.and_expr(depth))
        return expr

    def and_expr(self, depth: int) -> Expr:
        expr = self.term(depth)
        while self.is_word("and"):
            self.take()
            expr = Logical("and", expr, self.term(depth))
        return expr

    def term(self, depth: int) -> Expr:
        token = self.take()
        if token.kind == "lparen":
            if depth >= MAX_DEPTH:
                raise BadQuery(f"$filter: at most {MAX_DEPTH} levels of parentheses")
            expr = self.or_expr(depth + 1)
            close = self.take()
            if close.kind != "rparen":
                raise BadQuery(f"$filter: expected ')' at {close.at}, found {close.text!r}")
            return expr
        return self.comparison(token)

    def comparison(self, name: Token) -> Comparison:
        if name.kind != "word" or name.text not in ("phenomenonTime", "result"):
            raise BadQuery(
                f"$filter: {name.text!r} at {name.at} is not supported; filter on "
                "phenomenonTime or result"
            )
        word = self.take()
        op = _OP_NAMES.get(word.text) if word.kind == "word" else None
        if op is None:
            names = ", ".join(OPS)
            raise BadQuery(f"$filter: expected one of {names} at {word.at}, got {word.text!r}")
        value = self.take()
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise BadQuery(f"$filter: at most {MAX_COMPARISONS} comparisons")
        prop: Prop = "phenomenonTime" if name.text == "phenomenonTime" else "result"
        return Comparison(prop, op, _value(prop, value))


def _value(prop: Prop, token: Token) -> datetime | float:
    if prop == "phenomenonTime":
        if token.kind != "time":
            raise BadQuery(
                f"$filter: phenomenonTime compares with an ISO 8601 time such as "
                f"2026-11-27T10:00:00Z; got {token.text!r} at {token.at}"
            )
        return parse_time(token.text)
    if token.kind != "number":
        raise BadQuery(f"$filter: result compares with a number; got {token.text!r} at {token.at}")
    number = float(token.text)
    if not math.isfinite(number):
        raise BadQuery(f"$filter: {token.text!r} is not a finite number")
    return number


def parse_filter(text: str) -> Expr:
    """Parse a ``$filter`` value into a tree; BadQuery with the reason otherwise."""
    if len(text) > MAX_FILTER_CHARS:
        raise BadQuery(f"$filter may be at most {MAX_FILTER_CHARS} characters")
    parser = _Parser(tokens(text))
    if parser.peek() is None:
        raise BadQuery("$filter is empty")
    expr = parser.or_expr(0)
    rest = parser.peek()
    if rest is not None:
        raise BadQuery(f"$filter: unexpected {rest.text!r} at {rest.at}")
    return expr


@dataclass(frozen=True)
class Bounds:
    """A half-open time interval ``[start, stop)``; None is unbounded on that side."""

    start: datetime | None = None
    stop: datetime | None = None


_TICK = timedelta(microseconds=1)


def time_bounds(expr: Expr | None) -> Bounds:
    """An interval that holds every phenomenonTime the filter can accept (maybe more).

    It becomes the Flux ``range``; the filter itself still decides each row, so a wider
    interval is never wrong, only slower.
    """
    if expr is None:
        return Bounds()
    if isinstance(expr, Comparison):
        if expr.prop != "phenomenonTime" or expr.op == "ne":
            return Bounds()
        assert isinstance(expr.value, datetime)
        moment = expr.value
        return {
            "eq": Bounds(moment, moment + _TICK),
            "gt": Bounds(moment, None),
            "ge": Bounds(moment, None),
            "lt": Bounds(None, moment),
            "le": Bounds(None, moment + _TICK),
        }[expr.op]
    left, right = time_bounds(expr.left), time_bounds(expr.right)
    if expr.op == "and":
        # Both must hold: the later start and the earlier stop.
        return Bounds(_known(max, left.start, right.start), _known(min, left.stop, right.stop))
    # Either may hold: unbounded on a side as soon as one branch is.
    start = None if left.start is None or right.start is None else min(left.start, right.start)
    stop = None if left.stop is None or right.stop is None else max(left.stop, right.stop)
    return Bounds(start, stop)


def _known(
    pick: Callable[[datetime, datetime], datetime], a: datetime | None, b: datetime | None
) -> datetime | None:
    """``pick`` of the bounds that exist (an absent bound does not limit)."""
    if a is None or b is None:
        return a or b
    return pick(a, b)


@dataclass(frozen=True)
class OrderKey:
    """One ``$orderby`` item."""

    prop: str
    desc: bool = False


def parse_orderby(text: str, allowed: tuple[str, ...]) -> tuple[OrderKey, ...]:
    """``prop [asc|desc], ...`` over the ``allowed`` properties."""
    keys = []
    for item in text.split(","):
        words = item.split()
        if not 1 <= len(words) <= 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise BadQuery(f"$orderby: expected 'property [asc|desc]', got {item.strip()!r}")
        prop = "id" if words[0] == "@iot.id" else words[0]
        if prop not in allowed:
            raise BadQuery(
                f"$orderby: {words[0]!r} is not supported here; use {', '.join(allowed)}"
            )
        keys.append(OrderKey(prop, len(words) == 2 and words[1] == "desc"))
    return tuple(keys)


@dataclass(frozen=True)
class Options:
    """The query options of one request (or of one ``$expand`` item)."""

    top: int
    skip: int = 0
    count: bool = False
    orderby: str | None = None
    filter: Expr | None = None
    expand: tuple[ExpandItem, ...] = ()


@dataclass(frozen=True)
class ExpandItem:
    """``Name`` or ``Name($top=..;$skip=..;$orderby=..;$filter=..;$count=..)``."""

    name: str
    raw: dict[str, str] = field(default_factory=dict)


KNOWN = ("$top", "$skip", "$count", "$orderby", "$filter", "$expand")


def _int(name: str, text: str, low: int, high: int) -> int:
    if not text.isdigit() or len(text) > 9:
        raise BadQuery(f"{name} must be a whole number, got {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise BadQuery(f"{name} must be between {low} and {high}")
    return value


def parse_options(
    raw: Mapping[str, str], *, default_top: int, max_top: int, nested: bool = False
) -> Options:
    """Check and read the ``$`` options; unknown ``$`` options are a 400, not ignored."""
    for name in raw:
        if name.startswith("$") and name not in KNOWN:
            raise BadQuery(f"query option {name} is not supported ({', '.join(KNOWN)} are)")
    top = _int("$top", raw["$top"], 0, max_top) if "$top" in raw else default_top
    skip = _int("$skip", raw["$skip"], 0, 10**9) if "$skip" in raw else 0
    count = raw.get("$count", "false")
    if count not in ("true", "false"):
        raise BadQuery("$count is true or false")
    flt = parse_filter(raw["$filter"]) if "$filter" in raw else None
    expand = parse_expand(raw["$expand"]) if "$expand" in raw else ()
    if nested and expand:
        raise BadQuery("$expand goes one level deep only")
    return Options(top, skip, count == "true", raw.get("$orderby"), flt, expand)


def _split_top_level(text: str, sep: str) -> list[str]:
    parts, depth, start, quoted = [], 0, 0, False
    for i, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
            if depth < 0:
                raise BadQuery("$expand: unbalanced parentheses")
        elif not quoted and depth == 0 and char == sep:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise BadQuery("$expand: unbalanced parentheses")
    parts.append(text[start:])
    return parts


_EXPAND_ITEM = re.compile(r"^\s*([A-Za-z]+)\s*(?:\((.*)\))?\s*$", re.DOTALL)


def parse_expand(text: str) -> tuple[ExpandItem, ...]:
    """``A,B($top=3;$orderby=phenomenonTime desc)``: names with their own options."""
    items = []
    for part in _split_top_level(text, ","):
        if "/" in part.split("(")[0]:
            raise BadQuery("$expand goes one level deep only (no paths like A/B)")
        found = _EXPAND_ITEM.match(part)
        if found is None:
            raise BadQuery(f"$expand: cannot read {part.strip()!r}")
        name, inner = found.groups()
        raw: dict[str, str] = {}
        for option in _split_top_level(inner, ";") if inner else []:
            key, eq, value = option.partition("=")
            if not eq or key.strip() in raw:
                raise BadQuery(f"$expand: cannot read option {option.strip()!r} of {name}")
            raw[key.strip()] = value
        items.append(ExpandItem(name, raw))
    return tuple(items)
