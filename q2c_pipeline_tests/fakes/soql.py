"""A restricted SOQL parser and evaluator for the Salesforce fake.

Grammar (keywords case-insensitive):
    SELECT (COUNT() | field {, field}) FROM object
    [WHERE condition] [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST] {, ...}] [LIMIT n]
    condition := term {OR term};  term := factor {AND factor}
    factor := '(' condition ')' | NOT factor | field op literal
            | field [NOT] IN '(' literal {, literal} ')'
    op := = | != | <> | < | <= | > | >=
    literal := 'string' | number | true | false | null | YYYY-MM-DD
             | YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm|+hhmm)
Fields may be dotted one level (`Account.Name`). Anything else raises SoqlError (MALFORMED_QUERY).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any


class SoqlError(ValueError):
    """A query outside the supported grammar (HTTP 400 MALFORMED_QUERY)."""


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)

_KEYWORDS = {
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "ORDER", "BY", "ASC", "DESC", "NULLS",
    "FIRST", "LAST", "LIMIT", "COUNT", "TRUE", "FALSE", "NULL",
}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str

    @property
    def keyword(self) -> str | None:
        if self.kind == "ident" and self.text.upper() in _KEYWORDS:
            return self.text.upper()
        return None


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: Any  # a python literal, or a tuple of literals for IN / NOT IN


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND, OR, NOT
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class OrderKey:
    field: str
    descending: bool
    nulls_last: bool


@dataclass
class Query:
    object_name: str
    fields: list[str] = field(default_factory=list)
    is_count: bool = False
    where: Any = None
    order_by: list[OrderKey] = field(default_factory=list)
    limit: int | None = None

    def referenced_fields(self) -> list[str]:
        names = list(self.fields) + [key.field for key in self.order_by]
        stack = [self.where] if self.where is not None else []
        while stack:
            node = stack.pop()
            if isinstance(node, Comparison):
                names.append(node.field)
            else:
                stack.extend(node.parts)
        return names


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise SoqlError(f"unexpected character at {position}: {text[position:position + 10]!r}")
        position = match.end()
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group()))
    return tokens


def parse_datetime_literal(text: str) -> datetime:
    """Parse a SOQL or REST datetime (`...Z`, `...+0000`, `...+00:00`) to an aware datetime."""
    normalised = text[:-1] + "+00:00" if text.endswith("Z") else text
    if re.search(r"[+-]\d{4}$", normalised):
        normalised = normalised[:-2] + ":" + normalised[-2:]
    return datetime.fromisoformat(normalised).astimezone(timezone.utc)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise SoqlError("unexpected end of query")
        self.index += 1
        return token

    def expect_keyword(self, keyword: str) -> None:
        token = self.take()
        if token.keyword != keyword:
            raise SoqlError(f"expected {keyword}, found {token.text!r}")

    def expect_punct(self, text: str) -> None:
        token = self.take()
        if token.kind != "punct" or token.text != text:
            raise SoqlError(f"expected {text!r}, found {token.text!r}")

    def at_keyword(self, keyword: str) -> bool:
        token = self.peek()
        return token is not None and token.keyword == keyword

    def at_punct(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "punct" and token.text == text

    def identifier(self) -> str:
        token = self.take()
        if token.kind != "ident" or token.keyword is not None:
            raise SoqlError(f"expected a field or object name, found {token.text!r}")
        if token.text.count(".") > 1:
            raise SoqlError(f"only one level of parent relationship is supported: {token.text}")
        return token.text

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        query = Query(object_name="")
        if self.at_keyword("COUNT"):
            self.take()
            self.expect_punct("(")
            self.expect_punct(")")
            query.is_count = True
        else:
            query.fields.append(self.identifier())
            while self.at_punct(","):
                self.take()
                query.fields.append(self.identifier())
        self.expect_keyword("FROM")
        query.object_name = self.identifier()
        if self.at_keyword("WHERE"):
            self.take()
            query.where = self.condition()
        if self.at_keyword("ORDER"):
            self.take()
            self.expect_keyword("BY")
            query.order_by.append(self.order_key())
            while self.at_punct(","):
                self.take()
                query.order_by.append(self.order_key())
        if self.at_keyword("LIMIT"):
            self.take()
            token = self.take()
            if token.kind != "number" or "." in token.text:
                raise SoqlError("LIMIT needs an integer")
            query.limit = int(token.text)
        leftover = self.peek()
        if leftover is not None:
            raise SoqlError(f"unexpected token {leftover.text!r}")
        return query

    def order_key(self) -> OrderKey:
        name = self.identifier()
        descending = False
        if self.at_keyword("ASC") or self.at_keyword("DESC"):
            descending = self.take().keyword == "DESC"
        nulls_last = descending  # Salesforce default: NULLS FIRST ascending, NULLS LAST descending
        if self.at_keyword("NULLS"):
            self.take()
            position = self.take().keyword
            if position not in ("FIRST", "LAST"):
                raise SoqlError("NULLS needs FIRST or LAST")
            nulls_last = position == "LAST"
        return OrderKey(name, descending, nulls_last)

    def condition(self) -> Any:
        parts = [self.term()]
        while self.at_keyword("OR"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else BoolOp("OR", tuple(parts))

    def term(self) -> Any:
        parts = [self.factor()]
        while self.at_keyword("AND"):
            self.take()
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else BoolOp("AND", tuple(parts))

    def factor(self) -> Any:
        if self.at_punct("("):
            self.take()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        if self.at_keyword("NOT"):
            self.take()
            return BoolOp("NOT", (self.factor(),))
        name = self.identifier()
        negate = False
        if self.at_keyword("NOT"):
            self.take()
            negate = True
            if not self.at_keyword("IN"):
                raise SoqlError("NOT must be followed by IN here")
        if self.at_keyword("IN"):
            self.take()
            self.expect_punct("(")
            values = [self.literal()]
            while self.at_punct(","):
                self.take()
                values.append(self.literal())
            self.expect_punct(")")
            return Comparison(name, "NOT IN" if negate else "IN", tuple(values))
        token = self.take()
        if token.kind != "op":
            raise SoqlError(f"expected a comparison operator, found {token.text!r}")
        return Comparison(name, "!=" if token.text == "<>" else token.text, self.literal())

    def literal(self) -> Any:
        token = self.take()
        if token.kind == "string":
            return re.sub(r"\\(.)", r"\1", token.text[1:-1])
        if token.kind == "number":
            return Decimal(token.text)
        if token.kind == "datetime":
            return parse_datetime_literal(token.text)
        if token.kind == "date":
            return date.fromisoformat(token.text)
        keyword = token.keyword
        if keyword in ("TRUE", "FALSE"):
            return keyword == "TRUE"
        if keyword == "NULL":
            return None
        raise SoqlError(f"unsupported literal {token.text!r}")


def parse_soql(text: str) -> Query:
    """Parse `text` into a Query, or raise SoqlError."""
    return _Parser(text).parse()


def coerce_value(value: Any, field_type: str) -> Any:
    """A record value as a comparable Python value for its Salesforce field type."""
    if value is None:
        return None
    if field_type == "datetime":
        return parse_datetime_literal(value) if isinstance(value, str) else value
    if field_type == "date":
        return date.fromisoformat(value) if isinstance(value, str) else value
    if field_type in ("double", "currency", "percent", "int"):
        try:
            return Decimal(str(value))
        except InvalidOperation as error:
            raise SoqlError(f"not a number: {value!r}") from error
    return value


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "IN":
        return left in right
    if op == "NOT IN":
        return left not in right
    if right is None or left is None:
        if op == "=":
            return left is right
        if op == "!=":
            return (left is None) != (right is None)
        return False
    if isinstance(right, datetime) and isinstance(left, date) and not isinstance(left, datetime):
        raise SoqlError("a date field cannot be compared to a datetime literal")
    try:
        if op == "=":
            return left == right
        if op == "!=":
            return left != right
        if op == "<":
            return left < right
        if op == "<=":
            return left <= right
        if op == ">":
            return left > right
        if op == ">=":
            return left >= right
    except TypeError as error:
        raise SoqlError(f"cannot compare {left!r} {op} {right!r}") from error
    raise SoqlError(f"unknown operator {op}")


def evaluate(node: Any, lookup: Any) -> bool:
    """Evaluate a WHERE tree; `lookup(field)` returns the record's coerced value."""
    if isinstance(node, Comparison):
        return _compare(lookup(node.field), node.op, node.value)
    if node.op == "AND":
        return all(evaluate(part, lookup) for part in node.parts)
    if node.op == "OR":
        return any(evaluate(part, lookup) for part in node.parts)
    return not evaluate(node.parts[0], lookup)
