"""SOQL: a parser for the subset connectors use, and its translation to SQLite.

Supported: ``SELECT`` of plain fields, ``COUNT()``, ``COUNT(field) [alias]``
and ``FIELDS(ALL|STANDARD|CUSTOM)``; ``FROM`` one object; ``WHERE`` with
``AND``/``OR``/``NOT`` and parentheses, ``= != <> < <= > >=``, ``[NOT] IN``,
``LIKE``; literals of every type SOQL has (strings with escapes, numbers,
``true``/``false``/``null``, dates, datetimes with ``Z`` or an offset, and the
relative dates ``TODAY``, ``YESTERDAY``, ``TOMORROW``, ``LAST_N_DAYS:n``,
``NEXT_N_DAYS:n``); ``ORDER BY`` with ``ASC``/``DESC`` and ``NULLS
FIRST``/``LAST``; ``LIMIT``; ``OFFSET``. Relationship paths, ``GROUP BY`` and
sub-queries are outside the subset and answer Salesforce's own errors.

SOQL differs from SQL in ways a faithful emulator must keep:

- string comparisons are case-insensitive (Ids excepted);
- ``null`` is a value: ``Field != 'x'`` and ``NOT IN`` also match rows where
  the field is null, and no condition ever evaluates to "unknown";
- AND and OR may not be mixed at one level without parentheses;
- a filter value must have the field's type (``CreatedDate > '2024-01-01'``
  is an error, not a string comparison).

Every value reaches SQLite as a bound parameter; identifiers come from the
object catalogue, never from the query text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal as TypingLiteral

from clghub.sandbox.schema import SF_OBJECTS, SfField

__all__ = [
    "MAX_OFFSET",
    "NUMBER_TYPES",
    "STRING_TYPES",
    "And",
    "Compare",
    "CountItem",
    "Expr",
    "InList",
    "Like",
    "Literal",
    "Not",
    "Or",
    "OrderItem",
    "Query",
    "SoqlError",
    "TranslatedWhere",
    "canonical_object",
    "field_map",
    "normalize_id",
    "order_sql",
    "parse",
    "translate_where",
]

MAX_OFFSET = 2000
"""Salesforce refuses OFFSET above 2,000."""

_FIELDS_LIMIT = 200
"""FIELDS(ALL) and FIELDS(CUSTOM) need a LIMIT of at most 200."""

STRING_TYPES = frozenset(
    {"id", "string", "textarea", "picklist", "reference", "email", "url", "phone"}
)
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
_ID_TYPES = frozenset({"id", "reference"})

# The type names Salesforce uses in "must be of type ..." messages.
_TYPE_WORD = {
    "boolean": "boolean",
    "date": "date",
    "datetime": "dateTime",
    "int": "integer",
    "double": "double",
    "currency": "double",
    "percent": "double",
}


class SoqlError(Exception):
    """A query Salesforce would refuse: ``code`` is its errorCode."""

    def __init__(self, code: str, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.position = position

    def render(self, query: str) -> str:
        """The message as Salesforce words it: the query line, a caret, row and column."""
        if self.position is None:
            return self.message
        row = query.count("\n", 0, self.position) + 1
        line_start = query.rfind("\n", 0, self.position) + 1
        line_end = query.find("\n", self.position)
        line = query[line_start : line_end if line_end >= 0 else len(query)]
        column = self.position - line_start + 1
        # Salesforce shows a window around the error, not a whole long line.
        window_start = max(0, column - 1 - 60)
        excerpt = line[window_start : column - 1 + 60]
        caret = " " * (column - 1 - window_start) + "^"
        return f"\n{excerpt}\n{caret}\nERROR at Row:{row}:Column:{column}\n{self.message}"


# -- lexer -------------------------------------------------------------------

TokenKind = TypingLiteral[
    "ident", "string", "number", "date", "datetime", "op", "(", ")", ",", "eof"
]


@dataclass(frozen=True)
class _Token:
    kind: TokenKind
    text: str
    pos: int
    plain: str = ""
    """For strings: the decoded value."""
    like: str = ""
    """For strings: the value as a LIKE pattern with ``\\`` as the escape."""


_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})", re.ASCII
)
_ZONELESS_DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", re.ASCII)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\dT])", re.ASCII)
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])", re.ASCII)
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*(?::\d+)?", re.ASCII)
_OPERATORS = ("!=", "<>", "<=", ">=", "=", "<", ">")
_SIMPLE_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}


def _lex_string(text: str, start: int) -> _Token:
    plain: list[str] = []
    like: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "'":
            return _Token("string", text[start : i + 1], start, "".join(plain), "".join(like))
        if ch == "\\":
            if i + 1 >= len(text):
                break
            esc = text[i + 1]
            if esc in ("%", "_"):
                # LIKE escapes: a literal % or _ in a pattern; the character itself elsewhere.
                plain.append(esc)
                like.append("\\" + esc)
                i += 2
                continue
            if esc.lower() in _SIMPLE_ESCAPES:
                decoded = _SIMPLE_ESCAPES[esc.lower()]
            elif esc in ("u", "U") and re.fullmatch(r"[0-9A-Fa-f]{4}", text[i + 2 : i + 6]):
                decoded = chr(int(text[i + 2 : i + 6], 16))
                i += 4
            else:
                sequence = text[i : i + 2]
                raise SoqlError(
                    "MALFORMED_QUERY",
                    f"Invalid string literal '{sequence}'. Illegal character sequence "
                    f"'{sequence}' in string literal.",
                    i,
                )
            plain.append(decoded)
            like.append(_like_escape(decoded))
            i += 2
            continue
        plain.append(ch)
        # Unescaped % and _ are LIKE wildcards, as in SOQL.
        like.append(ch)
        i += 1
    raise SoqlError("MALFORMED_QUERY", "unexpected token: '<EOF>'", len(text))


def _like_escape(ch: str) -> str:
    return "\\" + ch if ch in ("\\", "%", "_") else ch


def _lex_word(text: str, i: int) -> _Token:
    """A datetime, date, number or identifier starting at ``i``."""
    match = _DATETIME_RE.match(text, i)
    if match:
        return _Token("datetime", match.group(), i)
    if _ZONELESS_DATETIME_RE.match(text, i):
        raise SoqlError(
            "MALFORMED_QUERY",
            "Datetime literals need a time zone: Z or an offset such as +00:00",
            i,
        )
    match = _DATE_RE.match(text, i)
    if match:
        return _Token("date", match.group(), i)
    match = _NUMBER_RE.match(text, i)
    if match:
        return _Token("number", match.group(), i)
    match = _IDENT_RE.match(text, i)
    if match:
        return _Token("ident", match.group(), i)
    raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[i]}'", i)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "'":
            token = _lex_string(text, i)
            tokens.append(token)
            i += len(token.text)
            continue
        if ch in "(),":
            punctuation: TokenKind = "(" if ch == "(" else ")" if ch == ")" else ","
            tokens.append(_Token(punctuation, ch, i))
            i += 1
            continue
        op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
        if op is not None:
            tokens.append(_Token("op", op, i))
            i += len(op)
            continue
        token = _lex_word(text, i)
        tokens.append(token)
        i += len(token.text)
    tokens.append(_Token("eof", "<EOF>", len(text)))
    return tokens


# -- syntax tree ---------------------------------------------------------------

LiteralKind = TypingLiteral["string", "number", "boolean", "null", "date", "datetime", "relative"]


@dataclass(frozen=True)
class Literal:
    kind: LiteralKind
    value: str | float | int | bool | None
    like: str = ""
    pos: int = 0
    days: int = 0
    """For relative dates: the N of LAST_N_DAYS:N / NEXT_N_DAYS:N."""


@dataclass(frozen=True)
class Compare:
    field: SfField
    op: str
    literal: Literal
    pos: int


@dataclass(frozen=True)
class InList:
    field: SfField
    negate: bool
    literals: tuple[Literal, ...]
    pos: int


@dataclass(frozen=True)
class Like:
    field: SfField
    literal: Literal
    pos: int


@dataclass(frozen=True)
class Not:
    expr: Expr


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


Expr = Compare | InList | Like | Not | And | Or


@dataclass(frozen=True)
class CountItem:
    field: SfField | None
    alias: str | None


@dataclass(frozen=True)
class OrderItem:
    field: SfField
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class Query:
    sobject: str
    fields: tuple[SfField, ...]
    """The selected fields, in SELECT order (empty for COUNT queries)."""
    count: CountItem | None
    """Set for ``COUNT()`` / ``COUNT(field)`` queries."""
    where: Expr | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None


# -- catalogue helpers -----------------------------------------------------------

_OBJECTS_BY_LOWER = {name.lower(): name for name in SF_OBJECTS}
_FIELD_MAPS: dict[str, dict[str, SfField]] = {
    name: {f.name.lower(): f for f in fields} for name, fields in SF_OBJECTS.items()
}
_ID_BODY_RE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?", re.ASCII)
_ID_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def canonical_object(name: str) -> str | None:
    """The catalogue spelling of an object name (SOQL names are case-insensitive)."""
    return _OBJECTS_BY_LOWER.get(name.lower())


def field_map(sobject: str) -> dict[str, SfField]:
    """Fields of ``sobject`` by lower-cased name."""
    return _FIELD_MAPS[sobject]


def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character Salesforce Id, or None if malformed."""
    if not _ID_BODY_RE.fullmatch(value):
        return None
    body = value[:15]
    suffix = ""
    for chunk in (body[0:5], body[5:10], body[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if ch.isupper())
        suffix += _ID_SUFFIX_CHARS[bits]
    if len(value) == 18 and value[15:].upper() != suffix:
        return None
    return body + suffix


# -- parser ----------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    # token helpers
    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def is_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == "ident" and token.text.upper() in words

    def expect_keyword(self, word: str) -> _Token:
        if not self.is_keyword(word):
            raise self.unexpected()
        return self.advance()

    def expect(self, kind: TokenKind) -> _Token:
        if self.peek().kind != kind:
            raise self.unexpected()
        return self.advance()

    def unexpected(self) -> SoqlError:
        token = self.peek()
        return SoqlError("MALFORMED_QUERY", f"unexpected token: '{token.text}'", token.pos)

    # grammar
    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        raw_items = self.select_items()
        self.expect_keyword("FROM")
        object_token = self.expect("ident")
        sobject = canonical_object(object_token.text)
        if sobject is None:
            raise SoqlError(
                "INVALID_TYPE",
                f"sObject type '{object_token.text}' is not supported. If you are attempting "
                "to use a custom object, be sure to append the '__c' after the entity name. "
                "Please reference your WSDL or the describe call for the appropriate names.",
                object_token.pos,
            )
        fields = _FIELD_MAPS[sobject]
        where = None
        if self.is_keyword("WHERE"):
            self.advance()
            where = self.condition(fields, sobject)
        order_by: list[OrderItem] = []
        if self.is_keyword("ORDER"):
            self.advance()
            self.expect_keyword("BY")
            order_by.append(self.order_item(fields, sobject))
            while self.peek().kind == ",":
                self.advance()
                order_by.append(self.order_item(fields, sobject))
        limit = offset = None
        if self.is_keyword("LIMIT"):
            self.advance()
            limit = self.non_negative_int()
        if self.is_keyword("OFFSET"):
            token = self.advance()
            offset = self.non_negative_int()
            if offset > MAX_OFFSET:
                raise SoqlError(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"Maximum SOQL offset allowed is {MAX_OFFSET}",
                    token.pos,
                )
        if self.peek().kind != "eof":
            raise self.unexpected()
        selected, count = self.resolve_select(raw_items, sobject, limit)
        return Query(sobject, selected, count, where, tuple(order_by), limit, offset)

    def non_negative_int(self) -> int:
        token = self.peek()
        if token.kind != "number" or not token.text.isdigit():
            raise self.unexpected()
        self.advance()
        return int(token.text)

    def select_items(self) -> list[tuple[str, _Token, _Token | None, str | None]]:
        """(kind, token, argument token, alias) per SELECT item, resolved after FROM."""
        items: list[tuple[str, _Token, _Token | None, str | None]] = []
        while True:
            token = self.peek()
            if token.kind != "ident" or token.text.upper() == "FROM":
                raise self.unexpected()
            self.advance()
            upper = token.text.upper()
            if upper in ("COUNT", "FIELDS") and self.peek().kind == "(":
                self.advance()
                argument = None
                if self.peek().kind == "ident":
                    argument = self.advance()
                self.expect(")")
                alias = None
                if upper == "COUNT" and self.peek().kind == "ident" and not self.is_keyword("FROM"):
                    alias = self.advance().text
                items.append((upper.lower(), token, argument, alias))
            else:
                if self.peek().kind == "(":
                    raise SoqlError(
                        "MALFORMED_QUERY",
                        f"unknown function: {token.text}",
                        token.pos,
                    )
                items.append(("field", token, None, None))
            if self.peek().kind != ",":
                return items
            self.advance()

    def resolve_select(
        self,
        raw_items: list[tuple[str, _Token, _Token | None, str | None]],
        sobject: str,
        limit: int | None,
    ) -> tuple[tuple[SfField, ...], CountItem | None]:
        fields = _FIELD_MAPS[sobject]
        selected: list[SfField] = []
        seen: set[str] = set()
        count: CountItem | None = None
        for kind, token, argument, alias in raw_items:
            if kind == "count":
                if len(raw_items) > 1:
                    if argument is None:
                        raise SoqlError(
                            "MALFORMED_QUERY",
                            "COUNT() can only be used alone in a query",
                            token.pos,
                        )
                    other = next(t for k, t, _, _ in raw_items if k != "count")
                    raise SoqlError(
                        "MALFORMED_QUERY",
                        f"Field must be grouped or aggregated: {other.text}",
                        other.pos,
                    )
                counted = self.resolve_field(argument, fields, sobject) if argument else None
                count = CountItem(counted, alias)
                continue
            if kind == "fields":
                group = argument.text.upper() if argument else ""
                if group not in ("ALL", "STANDARD", "CUSTOM"):
                    raise SoqlError(
                        "MALFORMED_QUERY",
                        "FIELDS() takes ALL, STANDARD or CUSTOM",
                        argument.pos if argument else token.pos,
                    )
                if group != "STANDARD" and (limit is None or limit > _FIELDS_LIMIT):
                    raise SoqlError(
                        "MALFORMED_QUERY",
                        f"The SOQL FIELDS function must have a LIMIT of at most {_FIELDS_LIMIT}",
                        token.pos,
                    )
                for candidate in SF_OBJECTS[sobject]:
                    wanted = (
                        group == "ALL"
                        or (group == "CUSTOM" and candidate.custom)
                        or (group == "STANDARD" and not candidate.custom)
                    )
                    if wanted and candidate.name not in seen:
                        seen.add(candidate.name)
                        selected.append(candidate)
                continue
            resolved = self.resolve_field(token, fields, sobject)
            if resolved.name in seen:
                raise SoqlError(
                    "MALFORMED_QUERY", f"duplicate field selected: {resolved.name}", token.pos
                )
            seen.add(resolved.name)
            selected.append(resolved)
        return tuple(selected), count

    def resolve_field(self, token: _Token, fields: dict[str, SfField], sobject: str) -> SfField:
        name = token.text
        if "." in name:
            head, _, rest = name.partition(".")
            if head.lower() == sobject.lower() and "." not in rest:
                name = rest
            else:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{head}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' "
                    "after the custom relationship name. Please reference your WSDL or the "
                    "describe call for the appropriate names.",
                    token.pos,
                )
        found = fields.get(name.lower())
        if found is None:
            raise SoqlError(
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{sobject}'. If you are attempting to use "
                "a custom field, be sure to append the '__c' after the custom field name. "
                "Please reference your WSDL or the describe call for the appropriate names.",
                token.pos,
            )
        return found

    def order_item(self, fields: dict[str, SfField], sobject: str) -> OrderItem:
        token = self.expect("ident")
        field = self.resolve_field(token, fields, sobject)
        descending = False
        if self.is_keyword("ASC", "DESC"):
            descending = self.advance().text.upper() == "DESC"
        # Salesforce puts nulls first unless told otherwise, in both directions.
        nulls_last = False
        if self.is_keyword("NULLS"):
            self.advance()
            if not self.is_keyword("FIRST", "LAST"):
                raise self.unexpected()
            nulls_last = self.advance().text.upper() == "LAST"
        return OrderItem(field, descending, nulls_last)

    def condition(self, fields: dict[str, SfField], sobject: str) -> Expr:
        first = self.unary(fields, sobject)
        items = [first]
        connector: str | None = None
        while self.is_keyword("AND", "OR"):
            word = self.peek().text.upper()
            if connector is not None and word != connector:
                # SOQL refuses "a AND b OR c": parentheses must say which is meant.
                raise self.unexpected()
            connector = word
            self.advance()
            items.append(self.unary(fields, sobject))
        if connector is None:
            return first
        return And(tuple(items)) if connector == "AND" else Or(tuple(items))

    def unary(self, fields: dict[str, SfField], sobject: str) -> Expr:
        if self.is_keyword("NOT"):
            self.advance()
            return Not(self.unary(fields, sobject))
        if self.peek().kind == "(":
            self.advance()
            inner = self.condition(fields, sobject)
            self.expect(")")
            return inner
        return self.comparison(fields, sobject)

    def comparison(self, fields: dict[str, SfField], sobject: str) -> Expr:
        token = self.peek()
        if token.kind != "ident" or token.text.upper() in ("AND", "OR", "NOT"):
            raise self.unexpected()
        self.advance()
        field = self.resolve_field(token, fields, sobject)
        if not field.filterable:
            raise SoqlError(
                "INVALID_FIELD",
                f"field '{field.name}' can not be filtered in a query call",
                token.pos,
            )
        if self.peek().kind == "op":
            op = self.advance().text
            literal = self.literal()
            return Compare(field, "!=" if op == "<>" else op, literal, token.pos)
        negate = False
        if self.is_keyword("NOT"):
            self.advance()
            negate = True
            if not self.is_keyword("IN"):
                raise self.unexpected()
        if self.is_keyword("IN"):
            self.advance()
            self.expect("(")
            literals = [self.literal()]
            while self.peek().kind == ",":
                self.advance()
                literals.append(self.literal())
            self.expect(")")
            return InList(field, negate, tuple(literals), token.pos)
        if self.is_keyword("LIKE"):
            self.advance()
            literal = self.literal()
            if literal.kind != "string":
                raise SoqlError(
                    "MALFORMED_QUERY",
                    "LIKE takes a string literal",
                    literal.pos,
                )
            return Like(field, literal, token.pos)
        raise self.unexpected()

    def literal(self) -> Literal:
        token = self.peek()
        if token.kind == "string":
            self.advance()
            return Literal("string", token.plain, token.like, token.pos)
        if token.kind == "number":
            self.advance()
            number: float | int = (
                int(token.text) if re.fullmatch(r"-?\d+", token.text) else float(token.text)
            )
            return Literal("number", number, pos=token.pos)
        if token.kind == "date":
            self.advance()
            try:
                date.fromisoformat(token.text)
            except ValueError:
                raise SoqlError(
                    "MALFORMED_QUERY", f"Invalid date: {token.text}", token.pos
                ) from None
            return Literal("date", token.text, pos=token.pos)
        if token.kind == "datetime":
            self.advance()
            try:
                return Literal("datetime", _datetime_storage(token.text), pos=token.pos)
            except ValueError:
                raise SoqlError(
                    "MALFORMED_QUERY", f"Invalid datetime: {token.text}", token.pos
                ) from None
        if token.kind == "ident":
            upper = token.text.upper()
            if upper in ("TRUE", "FALSE"):
                self.advance()
                return Literal("boolean", upper == "TRUE", pos=token.pos)
            if upper == "NULL":
                self.advance()
                return Literal("null", None, pos=token.pos)
            relative = _relative_literal(upper, token.pos)
            if relative is not None:
                self.advance()
                return relative
        raise self.unexpected()


_RELATIVE_FIXED = {"TODAY": (0, 1), "YESTERDAY": (-1, 0), "TOMORROW": (1, 2)}


def _relative_literal(upper: str, pos: int) -> Literal | None:
    if upper in _RELATIVE_FIXED:
        return Literal("relative", upper, pos=pos)
    name, _, number = upper.partition(":")
    if name in ("LAST_N_DAYS", "NEXT_N_DAYS") and number.isdigit():
        return Literal("relative", name, pos=pos, days=int(number))
    return None


def _relative_range(literal: Literal, today: date) -> tuple[date, date]:
    """[start, end) in days for a relative date literal."""
    name = literal.value
    if name in _RELATIVE_FIXED:
        start, end = _RELATIVE_FIXED[str(name)]
        return today + timedelta(days=start), today + timedelta(days=end)
    if name == "LAST_N_DAYS":
        return today - timedelta(days=literal.days), today + timedelta(days=1)
    return today, today + timedelta(days=literal.days + 1)


def _datetime_storage(text: str) -> str:
    """A SOQL datetime literal in the sandbox's storage form (UTC, milliseconds, Z)."""
    normalized = text.replace("Z", "+00:00")
    match = re.fullmatch(r"(.*[T]\d{2}:\d{2}:\d{2})(\.\d+)?([+-]\d{2}):?(\d{2})", normalized)
    if match is None:
        raise ValueError(text)
    head, fraction, tz_hours, tz_minutes = match.groups()
    micros = (fraction or ".0")[1:7].ljust(6, "0")
    moment = datetime.fromisoformat(f"{head}.{micros}{tz_hours}:{tz_minutes}")
    return _storage(moment)


def _storage(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse(text: str) -> Query:
    """Parse and check a SOQL query against the object catalogue."""
    if not text.strip():
        raise SoqlError("MALFORMED_QUERY", "unexpected token: '<EOF>'", 0)
    return _Parser(text).parse()


# -- translation -----------------------------------------------------------------


@dataclass(frozen=True)
class TranslatedWhere:
    sql: str
    params: tuple[object, ...]


def _column(field: SfField) -> str:
    return f'"{field.name}"'


def _type_error(field: SfField, literal: Literal) -> SoqlError:
    if field.type in STRING_TYPES:
        message = (
            f"value of filter criterion for field '{field.name}' must be of type string "
            "and should be enclosed in quotes"
        )
    else:
        word = _TYPE_WORD.get(field.type, field.type)
        message = (
            f"value of filter criterion for field '{field.name}' must be of type {word} "
            "and should not be enclosed in quotes"
        )
    return SoqlError("INVALID_FIELD", message, literal.pos)


class _Translator:
    def __init__(self, now: datetime) -> None:
        self.params: list[object] = []
        self.today = now.astimezone(UTC).date()

    def bind(self, value: object) -> str:
        self.params.append(value)
        return "?"

    def value(self, field: SfField, literal: Literal) -> object:
        """The storage value of a (non-null, non-relative) literal for ``field``."""
        kind = literal.kind
        if field.type in STRING_TYPES:
            if kind != "string":
                raise _type_error(field, literal)
            text = str(literal.value)
            if field.type in _ID_TYPES:
                normalized = normalize_id(text)
                if normalized is None:
                    raise SoqlError(
                        "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {text}", literal.pos
                    )
                return normalized
            return text
        if field.type in NUMBER_TYPES:
            if kind != "number":
                raise _type_error(field, literal)
            return literal.value
        if field.type == "boolean":
            if kind != "boolean":
                raise _type_error(field, literal)
            return 1 if literal.value else 0
        if field.type == "date":
            if kind != "date":
                raise _type_error(field, literal)
            return literal.value
        if field.type == "datetime":
            if kind != "datetime":
                raise _type_error(field, literal)
            return literal.value
        raise _type_error(field, literal)

    def collate(self, field: SfField) -> str:
        # SOQL compares text without regard to case; Ids are the exception.
        return " COLLATE NOCASE" if field.type in STRING_TYPES - _ID_TYPES else ""

    def relative_bounds(self, field: SfField, literal: Literal) -> tuple[str, str]:
        if field.type not in ("date", "datetime"):
            raise _type_error(field, literal)
        start, end = _relative_range(literal, self.today)
        if field.type == "date":
            return start.isoformat(), end.isoformat()
        return start.isoformat() + "T00:00:00.000Z", end.isoformat() + "T00:00:00.000Z"

    def expr(self, node: Expr) -> str:
        if isinstance(node, And):
            return "(" + " AND ".join(self.expr(item) for item in node.items) + ")"
        if isinstance(node, Or):
            return "(" + " OR ".join(self.expr(item) for item in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.expr(node.expr)})"
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, InList):
            return self.in_list(node)
        return self.like(node)

    def compare(self, node: Compare) -> str:
        column = _column(node.field)
        literal = node.literal
        op = node.op
        if literal.kind == "null":
            if op == "=":
                return f"({column} IS NULL)"
            if op == "!=":
                return f"({column} IS NOT NULL)"
            raise SoqlError("MALFORMED_QUERY", f"invalid operator on null value: {op}", literal.pos)
        if literal.kind == "relative":
            start, end = self.relative_bounds(node.field, literal)
            if op == "<":
                return f"({column} IS NOT NULL AND {column} < {self.bind(start)})"
            if op == "<=":
                return f"({column} IS NOT NULL AND {column} < {self.bind(end)})"
            if op == ">":
                return f"({column} IS NOT NULL AND {column} >= {self.bind(end)})"
            if op == ">=":
                return f"({column} IS NOT NULL AND {column} >= {self.bind(start)})"
            inside = f"({column} >= {self.bind(start)} AND {column} < {self.bind(end)})"
            return inside if op == "=" else f"({column} IS NULL OR NOT {inside})"
        placeholder = self.bind(self.value(node.field, literal))
        collate = self.collate(node.field)
        if op == "=":
            # IS: never "unknown", so NOT around it keeps SOQL's two-valued logic.
            return f"({column}{collate} IS {placeholder})"
        if op == "!=":
            return f"({column}{collate} IS NOT {placeholder})"
        if node.field.type == "boolean":
            raise SoqlError(
                "INVALID_FIELD",
                f"invalid operator on boolean field '{node.field.name}': {op}",
                literal.pos,
            )
        return f"({column} IS NOT NULL AND {column}{collate} {op} {placeholder})"

    def in_list(self, node: InList) -> str:
        column = _column(node.field)
        values: list[str] = []
        has_null = False
        for literal in node.literals:
            if literal.kind == "null":
                has_null = True
                continue
            if literal.kind == "relative":
                raise _type_error(node.field, literal)
            values.append(self.bind(self.value(node.field, literal)))
        collate = self.collate(node.field)
        members = f"{column}{collate} IN ({', '.join(values)})" if values else "0"
        if node.negate:
            if has_null:
                return f"({column} IS NOT NULL AND NOT ({members}))"
            return f"({column} IS NULL OR NOT ({members}))"
        if has_null:
            return f"({column} IS NULL OR ({column} IS NOT NULL AND {members}))"
        return f"({column} IS NOT NULL AND {members})"

    def like(self, node: Like) -> str:
        if node.field.type not in STRING_TYPES:
            raise SoqlError(
                "INVALID_FIELD",
                f"invalid operator on field '{node.field.name}': LIKE works on text fields only",
                node.literal.pos,
            )
        column = _column(node.field)
        placeholder = self.bind(node.literal.like)
        # SQLite's LIKE ignores ASCII case, as SOQL's does.
        return f"({column} IS NOT NULL AND {column} LIKE {placeholder} ESCAPE '\\')"


def translate_where(query: Query, *, include_deleted: bool, now: datetime) -> TranslatedWhere:
    """The WHERE clause (without the keyword) and its parameters for ``query``."""
    translator = _Translator(now)
    parts: list[str] = []
    if query.where is not None:
        parts.append(translator.expr(query.where))
    has_deleted = any(f.name == "IsDeleted" for f in SF_OBJECTS[query.sobject])
    if has_deleted and not include_deleted:
        parts.append('"IsDeleted" = 0')
    return TranslatedWhere(" AND ".join(parts) or "1", tuple(translator.params))


def order_sql(query: Query) -> str:
    """ORDER BY terms (without the keywords), ending in Id so the order is total.

    Salesforce puts nulls first in both directions unless told otherwise;
    SQLite puts them first ascending and last descending. Only the
    differences are spelled out, which keeps SQLite's use of indexes.
    """
    terms: list[str] = []
    for item in query.order_by:
        term = f'"{item.field.name}"'
        if item.field.type in STRING_TYPES - _ID_TYPES:
            term += " COLLATE NOCASE"
        term += " DESC" if item.descending else " ASC"
        if item.descending and not item.nulls_last:
            term += " NULLS FIRST"
        elif not item.descending and item.nulls_last:
            term += " NULLS LAST"
        terms.append(term)
    if not query.order_by or query.order_by[-1].field.name != "Id":
        terms.append('"Id" ASC')
    return ", ".join(terms)
