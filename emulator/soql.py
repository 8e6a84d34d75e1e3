"""A SOQL subset for the emulator: parse a query once, then filter, order and limit rows like Salesforce."""

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from emulator import ids

__all__ = ["Query", "SoqlError", "execute", "invalid_type", "parse"]

_WSDL_HINT = "Please reference your WSDL or the describe call for the appropriate names."


class SoqlError(Exception):
    """A query Salesforce would refuse: MALFORMED_QUERY, INVALID_FIELD or INVALID_TYPE, with its message."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


# --------------------------------------------------------------------------------------------------
# The syntax tree: small frozen values, so that a parsed Query can be cached and shared between threads.


@dataclass(frozen=True)
class FieldRef:
    name: str  # as written
    pos: int  # offset in the query text, for the caret of INVALID_FIELD


@dataclass(frozen=True)
class Literal:
    kind: str  # string | number | boolean | null | date | datetime | range
    value: Any  # str, float, bool, None, date, datetime, or (range name, n)
    pos: int
    raw: str  # as written, for error messages
    like_pattern: str | None = None  # regex, for the pattern of a LIKE only (there \% and \_ are literal)


@dataclass(frozen=True)
class Compare:
    op: str  # = != < <= > >=
    field: FieldRef
    literal: Literal


@dataclass(frozen=True)
class InList:
    field: FieldRef
    literals: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    field: FieldRef
    literal: Literal


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    operands: tuple["Condition", ...]


@dataclass(frozen=True)
class Not:
    operand: "Condition"


Condition = Compare | InList | Like | BoolOp | Not


@dataclass(frozen=True)
class OrderKey:
    field: FieldRef
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class Query:
    """A parsed query; `execute` resolves its field names against an object's fields."""

    text: str
    sobject: str  # as written in FROM
    fields: tuple[str, ...]  # as written in SELECT (empty for COUNT())
    is_count: bool
    limit: int | None
    offset: int | None = None
    where: Condition | None = None
    order_by: tuple[OrderKey, ...] = ()
    field_refs: tuple[FieldRef, ...] = ()  # the SELECT list with positions
    sobject_pos: int = 0


# --------------------------------------------------------------------------------------------------
# Grammar. Keywords are regexes with a word boundary so that a field such as `Industry` is not lexed as
# the keyword IN followed by `dustry`; their priority puts them ahead of NAME. SOQL refuses AND and OR
# mixed at one level without parentheses ("unexpected token: 'OR'"), and so does this grammar. NAME
# excludes SOQL's reserved words, so `SELECT Id, FROM Lead` fails at FROM as it does in Salesforce.

_GRAMMAR = r"""
start: _SELECT select_list _FROM NAME where? order_by? limit? offset?

select_list: _COUNT "(" ")"          -> count
           | NAME ("," NAME)*        -> field_list

where: _WHERE condition
?condition: simple
          | simple (_AND simple)+    -> and_
          | simple (_OR simple)+     -> or_
?simple: _NOT simple                 -> not_
       | "(" condition ")"
       | NAME OPERATOR value                           -> compare
       | NAME _IN "(" value ("," value)* ")"           -> in_
       | NAME _NOT _IN "(" value ("," value)* ")"      -> not_in
       | NAME _LIKE value                              -> like

order_by: _ORDER _BY order_key ("," order_key)*
order_key: NAME DIRECTION? (_NULLS NULLS_POSITION)?
limit: _LIMIT INT
offset: _OFFSET INT

?value: STRING | NUMBER | DATETIME | DATE | TRUE | FALSE | NULL | DATE_RANGE | DATE_RANGE_N

_SELECT.2: /select\b/i
_FROM.2: /from\b/i
_WHERE.2: /where\b/i
_COUNT.2: /count\b/i
_AND.2: /and\b/i
_OR.2: /or\b/i
_NOT.2: /not\b/i
_IN.2: /in\b/i
_LIKE.2: /like\b/i
_ORDER.2: /order\b/i
_BY.2: /by\b/i
_NULLS.2: /nulls\b/i
_LIMIT.2: /limit\b/i
_OFFSET.2: /offset\b/i
DIRECTION.2: /(asc|desc)\b/i
NULLS_POSITION.2: /(first|last)\b/i
TRUE.2: /true\b/i
FALSE.2: /false\b/i
NULL.2: /null\b/i
DATE_RANGE_N.3: /(@RANGES_N@):\d+\b/i
DATE_RANGE.2: /(@RANGES@)\b/i

OPERATOR: "=" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
NAME: /(?!(@RESERVED@)\b)[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*/i
STRING: /'(?:[^'\\]|\\.)*'/s
DATETIME.4: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})/
DATE.3: /\d{4}-\d{2}-\d{2}(?![\dT])/
NUMBER.2: /[+-]?(\d+(\.\d*)?|\.\d+)/
INT: /\d+/

%ignore /\s+/
"""
# SOQL's reserved words (Salesforce's list); ORDER and BY are not reserved: `FROM Order` is a real object.
_RESERVED = (
    "and asc desc excludes first from group having in includes last like limit not null nulls or select "
    "where with"
)
_RANGES = (
    "today yesterday tomorrow last_week this_week next_week last_month this_month next_month last_90_days "
    "next_90_days this_year last_year next_year"
)
_RANGES_N = (
    "last_n_days next_n_days n_days_ago last_n_weeks next_n_weeks last_n_months next_n_months last_n_years "
    "next_n_years"
)
_GRAMMAR = (
    _GRAMMAR.replace("@RESERVED@", "|".join(_RESERVED.split()))
    .replace("@RANGES_N@", "|".join(_RANGES_N.split()))
    .replace("@RANGES@", "|".join(_RANGES.split()))
)

_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.S)


class _PositionedError(Exception):
    """Raised while building the tree; `parse` turns it into a SoqlError with the caret at `pos`."""

    def __init__(self, pos: int, length: int, detail: str) -> None:
        super().__init__(detail)
        self.pos, self.length, self.detail = pos, length, detail


def _decode_string(token: Token, like: bool = False) -> tuple[str, str | None]:
    """The literal's value and, for LIKE, its regex; an escape SOQL does not define is MALFORMED_QUERY."""
    body = token.value[1:-1]
    if "\\" not in body:  # the common case, and the one a 300-value IN list is made of
        return body, _like_regex(body) if like else None
    value: list[str] = []
    pattern: list[str] = []
    last = 0
    for m in _ESCAPE.finditer(body):
        plain = body[last : m.start()]
        value.append(plain)
        if like:
            pattern.append(_like_regex(plain))
        esc = m.group(1)
        if esc in ("%", "_"):
            # Only in LIKE do \% and \_ differ from % and _: they match the character itself.
            char = esc
        elif esc in _ESCAPES:
            char = _ESCAPES[esc]
        elif esc[0] == "u" and len(esc) == 5:
            char = chr(int(esc[1:], 16))
        else:
            raise _PositionedError(
                token.start_pos,
                len(token.value),
                f"Invalid string literal '{body}'. "
                f"Illegal character sequence '\\{esc[0]}' in string literal.",
            )
        value.append(char)
        if like:
            pattern.append(re.escape(char))
        last = m.end()
    value.append(body[last:])
    if not like:
        return "".join(value), None
    pattern.append(_like_regex(body[last:]))
    return "".join(value), "".join(pattern)


def _like_regex(plain: str) -> str:
    return "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in plain)


def _parse_datetime(text: str) -> datetime:
    # Salesforce writes `+0000` and accepts `Z`, `+00:00` and `.000` milliseconds; Python 3.11 reads all.
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text)


# Salesforce reads a LIMIT, an OFFSET and the n of LAST_N_DAYS:n as a Java int.
_MAX_COUNT = 2**31 - 1
# "Requesting an offset greater than 2,000 results in a NUMBER_OUTSIDE_VALID_RANGE error" (SOQL reference).
MAX_OFFSET = 2000


def _java_int(digits: str) -> int | None:
    """`digits` as the Java int Salesforce reads, None beyond one (int() itself fails past 4,300 digits)."""
    if len(digits.lstrip("0")) > len(str(_MAX_COUNT)):
        return None
    n = int(digits)
    return n if n <= _MAX_COUNT else None


def _count(token: Token) -> int:
    """A LIMIT or OFFSET; MALFORMED_QUERY beyond a Java int."""
    n = _java_int(token.value)
    if n is None:
        raise _PositionedError(token.start_pos, len(token.value), f"unexpected token: '{token.value}'")
    return n


def _literal(token: Token, like: bool = False) -> Literal:
    kind = token.type
    raw = token.value
    pos = token.start_pos
    if kind == "STRING":
        value, pattern = _decode_string(token, like)
        return Literal("string", value, pos, raw, pattern)
    if kind == "NUMBER":
        return Literal("number", float(raw), pos, raw)
    if kind in ("TRUE", "FALSE"):
        return Literal("boolean", kind == "TRUE", pos, raw)
    if kind == "NULL":
        return Literal("null", None, pos, raw)
    try:
        if kind == "DATE":
            return Literal("date", date.fromisoformat(raw), pos, raw)
        if kind == "DATETIME":
            return Literal("datetime", _parse_datetime(raw), pos, raw)
    except ValueError:
        # Well-formed but impossible, e.g. 2026-02-30.
        raise _PositionedError(pos, len(raw), f"unexpected token: '{raw}'") from None
    if kind == "DATE_RANGE_N":
        name, digits = raw.split(":")
        n = _java_int(digits)
        if n is None:
            raise _PositionedError(pos, len(raw), f"unexpected token: '{raw}'")
        return Literal("range", (name.upper(), n), pos, raw)
    return Literal("range", (raw.upper(), 0), pos, raw)


@v_args(inline=True)
class _Build(Transformer):
    """Builds the Query pieces during the LALR parse (no intermediate parse tree)."""

    def start(self, select_list, sobject, *clauses):
        parts: dict[str, Any] = {}
        for name, value in clauses:
            parts[name] = value
        is_count, refs = select_list
        return {"is_count": is_count, "refs": refs, "sobject": sobject, **parts}

    def count(self):
        return True, ()

    def field_list(self, *names):
        return False, tuple(FieldRef(n.value, n.start_pos) for n in names)

    def where(self, condition):
        return "where", condition

    def and_(self, *operands):
        return BoolOp("and", operands)

    def or_(self, *operands):
        return BoolOp("or", operands)

    def not_(self, operand):
        return Not(operand)

    def compare(self, name, operator, value):
        op = "!=" if operator.value == "<>" else operator.value
        return Compare(op, FieldRef(name.value, name.start_pos), _literal(value))

    def in_(self, name, *values):
        return InList(FieldRef(name.value, name.start_pos), tuple(_literal(v) for v in values), False)

    def not_in(self, name, *values):
        return InList(FieldRef(name.value, name.start_pos), tuple(_literal(v) for v in values), True)

    def like(self, name, value):
        literal = _literal(value, like=True)
        if literal.kind != "string":
            raise _PositionedError(value.start_pos, len(value.value), f"unexpected token: '{value.value}'")
        return Like(FieldRef(name.value, name.start_pos), literal)

    def order_by(self, *keys):
        return "order_by", keys

    def order_key(self, name, *rest):
        descending = False
        nulls_first: bool | None = None
        for token in rest:
            if token.type == "DIRECTION":
                descending = token.value.lower() == "desc"
            else:
                nulls_first = token.value.lower() == "first"
        if nulls_first is None:
            # Salesforce's default: nulls sort as the smallest value, so first ascending, last descending.
            nulls_first = not descending
        return OrderKey(FieldRef(name.value, name.start_pos), descending, nulls_first)

    def limit(self, n):
        return "limit", _count(n)

    def offset(self, n):
        return "offset", _count(n)


# The transformer runs inside the LALR parser, so a 300-value IN list never becomes a tree first.
_PARSER = Lark(_GRAMMAR, parser="lalr", lexer="contextual", transformer=_Build(), propagate_positions=False)


# --------------------------------------------------------------------------------------------------
# Error messages in Salesforce's shape: "\n<part of the query>\n<caret>\nERROR at Row:R:Column:C\n<detail>".

_WINDOW_TOKENS = re.compile(r"'(?:[^'\\\n]|\\.)*'?|\w+|\S")
_WINDOW_CHARS = 40  # Salesforce echoes only a few tokens either side of the error in long queries


def _located(text: str, pos: int, length: int, detail: str) -> str:
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    if line_end < 0:
        line_end = len(text)
    line = text[line_start:line_end]
    col = pos - line_start
    start, end = col, col + length
    for m in _WINDOW_TOKENS.finditer(line):
        if m.start() >= col - _WINDOW_CHARS and m.start() < start:
            start = m.start()
        if m.end() <= col + length + _WINDOW_CHARS and m.end() > end:
            end = m.end()
    row = text.count("\n", 0, pos) + 1
    return f"\n{line[start:end]}\n{' ' * (col - start)}^\nERROR at Row:{row}:Column:{col + 1}\n{detail}"


def _syntax_error(text: str, exc: UnexpectedInput) -> SoqlError:
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        row = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1)
        if text[pos] == "'":
            # An unterminated string: Salesforce's lexer reports reaching the end looking for the quote.
            end_row = text.count("\n") + 1
            end_col = len(text) - (text.rfind("\n") + 1)
            return SoqlError(
                "MALFORMED_QUERY", f"line {end_row}:{end_col} mismatched character '<EOF>' expecting '''"
            )
        return SoqlError(
            "MALFORMED_QUERY", f"line {row}:{col} no viable alternative at character '{text[pos]}'"
        )
    token = exc.token if isinstance(exc, UnexpectedToken) else None
    if token is None or token.type == "$END" or isinstance(exc, UnexpectedEOF):
        pos = len(text.rstrip())
        return SoqlError("MALFORMED_QUERY", _located(text, pos, 0, "unexpected token: '<EOF>'"))
    return SoqlError(
        "MALFORMED_QUERY",
        _located(text, token.start_pos, len(token.value), f"unexpected token: '{token.value}'"),
    )


def _field_error(query: Query, ref: FieldRef, detail: str) -> SoqlError:
    return SoqlError("INVALID_FIELD", _located(query.text, ref.pos, len(ref.name), detail))


def parse(text: str) -> Query:
    """Parse a SOQL query; a syntax error raises SoqlError("MALFORMED_QUERY", <Salesforce's message>)."""
    return _parse_cached(text)


@functools.lru_cache(maxsize=512)
def _parse_cached(text: str) -> Query:
    # Cached because clients page and retry the same query text; Query is immutable.
    try:
        parts = _PARSER.parse(text)
    except _PositionedError as exc:
        raise SoqlError("MALFORMED_QUERY", _located(text, exc.pos, exc.length, exc.detail)) from None
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    if parts.get("offset", 0) > MAX_OFFSET:
        raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}")
    refs: tuple[FieldRef, ...] = parts["refs"]
    sobject: Token = parts["sobject"]
    return Query(
        text=text,
        sobject=sobject.value,
        fields=tuple(r.name for r in refs),
        is_count=parts["is_count"],
        limit=parts.get("limit"),
        offset=parts.get("offset"),
        where=parts.get("where"),
        order_by=parts.get("order_by", ()),
        field_refs=refs,
        sobject_pos=sobject.start_pos,
    )


def invalid_type(query: Query) -> SoqlError:
    """The INVALID_TYPE error Salesforce answers when the FROM object does not exist."""
    detail = (
        f"sObject type '{query.sobject}' is not supported. If you are attempting to use a custom object, "
        f"be sure to append the '__c' after the entity name. {_WSDL_HINT}"
    )
    return SoqlError("INVALID_TYPE", _located(query.text, query.sobject_pos, len(query.sobject), detail))


# --------------------------------------------------------------------------------------------------
# Evaluation. Each field type maps to a family that says how values compare; WHERE compiles once into
# a closure over normalised literals, so a row costs one dict lookup and one normalisation per test.

_NUMBER_TYPES = {"int", "double", "currency", "percent", "long"}
_ID_TYPES = {"id", "reference"}
_SOQL_TYPE_NAMES = {  # as Salesforce names them in "must be of type ..." messages
    "string": "string",
    "id": "id",
    "number": "double",
    "int": "integer",
    "boolean": "boolean",
    "date": "date",
    "datetime": "dateTime",
}
_LITERAL_KINDS = {  # literal kinds each family accepts (null goes with all)
    "string": ("string",),
    "id": ("string",),
    "number": ("number",),
    "boolean": ("boolean",),
    "date": ("date", "range"),
    "datetime": ("datetime", "range"),
}


def family(field_type: str) -> str:
    """The family of a field type whose values compare alike: string, id, number, boolean, date, datetime."""
    t = field_type.lower()
    if t in _NUMBER_TYPES:
        return "number"
    if t in _ID_TYPES:
        return "id"
    if t in ("boolean", "date", "datetime"):
        return t
    return "string"  # string, email, picklist, textarea, phone, url, combobox, ...


def _norm_string(v: Any) -> str:
    return v.lower() if isinstance(v, str) else str(v).lower()


def _norm_id(v: Any) -> str:
    # 15- and 18-character ids name the same record; the 15 case-sensitive characters identify it.
    return str(v)[:15]


def _canonical_id(value: str) -> str | None:
    """The 15 characters an id literal names (an 18-character id's suffix restores the case of a
    case-insensitive copy), or None if it is no id."""
    try:
        return ids.to18(value)[:15]
    except ValueError:
        return None


def _norm_number(v: Any) -> float:
    return float(v)


def _norm_boolean(v: Any) -> bool:
    return v if isinstance(v, bool) else str(v).lower() == "true"


def _norm_datetime(v: Any) -> datetime:
    return v if isinstance(v, datetime) else _datetime_from_text(v)


def _norm_date(v: Any) -> date:
    return v if isinstance(v, date) else _date_from_text(v)


# Cached: a table scan meets the same stored timestamps over and over, and parsing them is the cost.
@functools.lru_cache(maxsize=65536)
def _datetime_from_text(v: str) -> datetime:
    return _parse_datetime(v)


@functools.lru_cache(maxsize=65536)
def _date_from_text(v: str) -> date:
    return date.fromisoformat(v[:10])


_NORMALISE: dict[str, Callable[[Any], Any]] = {
    "string": _norm_string,
    "id": _norm_id,
    "number": _norm_number,
    "boolean": _norm_boolean,
    "date": _norm_date,
    "datetime": _norm_datetime,
}


def _range(name: str, n: int, today: date) -> tuple[date, date]:
    """The [start, end) days a relative date literal covers (weeks start on Sunday, as in en_US orgs)."""
    week = today - timedelta(days=(today.weekday() + 1) % 7)
    month = today.replace(day=1)

    def add_months(d: date, k: int) -> date:
        m = d.month - 1 + k
        return date(d.year + m // 12, m % 12 + 1, 1)

    def year(k: int) -> date:
        return date(today.year + k, 1, 1)

    day = timedelta(days=1)
    fixed = {
        "TODAY": (today, today + day),
        "YESTERDAY": (today - day, today),
        "TOMORROW": (today + day, today + 2 * day),
        "LAST_WEEK": (week - 7 * day, week),
        "THIS_WEEK": (week, week + 7 * day),
        "NEXT_WEEK": (week + 7 * day, week + 14 * day),
        "LAST_MONTH": (add_months(month, -1), month),
        "THIS_MONTH": (month, add_months(month, 1)),
        "NEXT_MONTH": (add_months(month, 1), add_months(month, 2)),
        "LAST_90_DAYS": (today - 90 * day, today + day),
        "NEXT_90_DAYS": (today + day, today + 91 * day),
        "THIS_YEAR": (year(0), year(1)),
        "LAST_YEAR": (year(-1), year(0)),
        "NEXT_YEAR": (year(1), year(2)),
    }
    if name in fixed:
        return fixed[name]
    # Made for the one literal asked for: another's bounds may lie beyond the years a date holds.
    per_n = {
        "LAST_N_DAYS": (lambda: today - n * day, lambda: today + day),
        "NEXT_N_DAYS": (lambda: today + day, lambda: today + (n + 1) * day),
        "N_DAYS_AGO": (lambda: today - n * day, lambda: today - (n - 1) * day),
        "LAST_N_WEEKS": (lambda: week - 7 * n * day, lambda: week),
        "NEXT_N_WEEKS": (lambda: week + 7 * day, lambda: week + 7 * (n + 1) * day),
        "LAST_N_MONTHS": (lambda: add_months(month, -n), lambda: month),
        "NEXT_N_MONTHS": (lambda: add_months(month, 1), lambda: add_months(month, n + 1)),
        "LAST_N_YEARS": (lambda: year(-n), lambda: year(0)),
        "NEXT_N_YEARS": (lambda: year(1), lambda: year(n + 1)),
    }
    # A bound before year 1 or after 9999 is the first or last day there is (LAST_N_DAYS:1000000 is every
    # day up to today).
    limit = date.max if name.startswith("NEXT") else date.min
    return tuple(_or(bound, limit) for bound in per_n[name])  # type: ignore[return-value]


def _or(bound: Callable[[], date], limit: date) -> date:
    try:
        return bound()
    except (OverflowError, ValueError):
        return limit


class _Compiler:
    """Resolves field names and turns the WHERE tree into a predicate for one query and object."""

    def __init__(self, query: Query, field_types: Mapping[str, str], now: datetime) -> None:
        self.query = query
        self.types = {name.lower(): (name, t) for name, t in field_types.items()}
        self.now = now

    def error(self, code: str, literal: Literal, detail: str) -> SoqlError:
        return SoqlError(code, _located(self.query.text, literal.pos, len(literal.raw), detail))

    def type_error(self, field: str, field_type: str, family: str, literal: Literal) -> SoqlError:
        type_name = _SOQL_TYPE_NAMES["int" if field_type.lower() == "int" else family]
        should = "should" if family in ("string", "id") else "should not"
        return self.error(
            "INVALID_FIELD",
            literal,
            f"value of filter criterion for field '{field}' must be of type {type_name} and {should} "
            f"be enclosed in quotes",
        )

    def resolve(self, ref: FieldRef) -> tuple[str, str]:
        """(canonical name, describe type); INVALID_FIELD as Salesforce words it for an unknown name."""
        name = ref.name
        if "." in name:
            head, rest = name.split(".", 1)
            if head.lower() != self.query.sobject.lower() or "." in rest:
                raise _field_error(
                    self.query,
                    ref,
                    f"Didn't understand relationship '{head}' in field path. If you are attempting to use "
                    f"a custom relationship, be sure to append the '__r' after the custom relationship "
                    f"name. {_WSDL_HINT}",
                )
            name = rest  # `Lead.Email` in a query on Lead is Email
        found = self.types.get(name.lower())
        if found is None:
            raise _field_error(
                self.query,
                ref,
                f"No such column '{name}' on entity '{self.query.sobject}'. If you are attempting to use a "
                f"custom field, be sure to append the '__c' after the custom field name. {_WSDL_HINT}",
            )
        return found

    def value(self, field: str, field_type: str, family: str, literal: Literal) -> Any:
        """The literal normalised for comparison with the field, or a (start, end) for a date range."""
        kind = literal.kind
        if kind == "null":
            return None
        if kind not in _LITERAL_KINDS[family]:
            raise self.type_error(field, field_type, family, literal)
        if kind == "range":
            start, end = _range(*literal.value, self.now.date())
            if family == "datetime":
                tz = self.now.tzinfo
                return (datetime.combine(start, time(), tz), datetime.combine(end, time(), tz))
            return (start, end)
        if family == "id":
            canonical = _canonical_id(literal.value)
            if canonical is None:
                raise self.error("MALFORMED_QUERY", literal, f"invalid ID field: {literal.value}")
            return canonical
        if family == "string":
            return _norm_string(literal.value)
        return literal.value

    def compile(self, cond: Condition) -> Callable[[Mapping[str, Any]], bool]:
        if isinstance(cond, BoolOp):
            parts = tuple(self.compile(c) for c in cond.operands)
            if cond.op == "and":
                return lambda row: all(p(row) for p in parts)
            return lambda row: any(p(row) for p in parts)
        if isinstance(cond, Not):
            inner = self.compile(cond.operand)
            return lambda row: not inner(row)
        field, field_type = self.resolve(cond.field)
        kind = family(field_type)
        norm = _NORMALISE[kind]
        if isinstance(cond, Like):
            if kind not in ("string", "id"):
                raise self.type_error(field, field_type, kind, cond.literal)
            match = re.compile(cond.literal.like_pattern or "", re.IGNORECASE | re.DOTALL).fullmatch
            return lambda row: (v := row.get(field)) is not None and match(str(v)) is not None
        if isinstance(cond, InList):
            for lit in cond.literals:
                if lit.kind == "range":  # Salesforce takes relative dates only with comparison operators
                    raise self.error("MALFORMED_QUERY", lit, f"unexpected token: '{lit.raw}'")
            values = [self.value(field, field_type, kind, lit) for lit in cond.literals]
            with_null = None in values
            members = frozenset(v for v in values if v is not None)
            if cond.negated:
                return lambda row: not with_null if (v := row.get(field)) is None else norm(v) not in members
            return lambda row: with_null if (v := row.get(field)) is None else norm(v) in members
        return self.compare(cond, field, self.value(field, field_type, kind, cond.literal), norm)

    @staticmethod
    def compare(
        cond: Compare, field: str, target: Any, norm: Callable[[Any], Any]
    ) -> Callable[[Mapping[str, Any]], bool]:
        op = cond.op
        if target is None:
            # `= null` and `!= null` test presence; an ordering against null matches nothing.
            if op == "=":
                return lambda row: row.get(field) is None
            if op == "!=":
                return lambda row: row.get(field) is not None
            return lambda row: False
        if isinstance(target, tuple):  # a relative date literal covers a range of days
            start, end = target
            tests: dict[str, Callable[[Any], bool]] = {
                "=": lambda x: start <= x < end,
                "!=": lambda x: not start <= x < end,
                "<": lambda x: x < start,
                "<=": lambda x: x < end,
                ">": lambda x: x >= end,
                ">=": lambda x: x >= start,
            }
        else:
            tests = {
                "=": lambda x: x == target,
                "!=": lambda x: x != target,
                "<": lambda x: x < target,
                "<=": lambda x: x <= target,
                ">": lambda x: x > target,
                ">=": lambda x: x >= target,
            }
        test = tests[op]
        if op == "!=":
            # Salesforce counts a null field as different from any value.
            return lambda row: (v := row.get(field)) is None or test(norm(v))
        return lambda row: (v := row.get(field)) is not None and test(norm(v))


def required_values(query: Query) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(field, text values) pairs such that every row the WHERE clause matches has that field equal to
    one of the values: `f = 'v'` and `f IN ('v', ...)` at its top level or inside ANDs. The field is as
    written, without the object's name before it. A store with an index on the field can look the rows
    up instead of scanning them all; the query's own filter still decides which match."""
    stack = [query.where] if query.where is not None else []
    while stack:
        cond = stack.pop()
        if isinstance(cond, BoolOp):
            if cond.op == "and":
                stack.extend(cond.operands)
            continue
        if isinstance(cond, Compare) and cond.op == "=":
            literals: tuple[Literal, ...] = (cond.literal,)
        elif isinstance(cond, InList) and not cond.negated:
            literals = cond.literals
        else:
            continue
        if not literals or any(lit.kind != "string" for lit in literals):
            continue  # a null (or no value at all) is not in the index
        head, dot, rest = cond.field.name.partition(".")
        if dot and head.lower() != query.sobject.lower():
            continue
        yield (rest if dot else head), tuple(lit.value for lit in literals)


def execute(
    query: Query,
    rows: Iterable[Mapping[str, Any]],
    field_types: Mapping[str, str],
    now: datetime | None = None,
) -> list[dict[str, Any]] | int:
    """Run `query` over `rows` (keyed by canonical field name; missing = null).

    Returns the selected fields (canonical names, SELECT order) of the matching rows, ordered, offset and
    limited; or, for COUNT(), the number of matching rows. `now` fixes TODAY and friends (default: UTC now).
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)  # stored datetimes are all UTC-aware
    compiler = _Compiler(query, field_types, now)
    # Fields resolve in the order Salesforce reports them: SELECT, then WHERE, then ORDER BY.
    selected = [compiler.resolve(ref)[0] for ref in query.field_refs]
    predicate = compiler.compile(query.where) if query.where is not None else None
    order = [(compiler.resolve(k.field), k) for k in query.order_by]

    matched = [r for r in rows if predicate(r)] if predicate is not None else list(rows)
    # Sort by the last key first: each pass is stable, so earlier keys take precedence.
    for (field, field_type), key in reversed(order):
        norm = _NORMALISE[family(field_type)]
        present = [r for r in matched if r.get(field) is not None]
        nulls = [r for r in matched if r.get(field) is None]
        present.sort(key=lambda r, f=field, n=norm: n(r[f]), reverse=key.descending)
        matched = nulls + present if key.nulls_first else present + nulls
    if query.offset:
        matched = matched[query.offset :]
    if query.limit is not None:
        matched = matched[: query.limit]
    if query.is_count:
        return len(matched)
    return [{f: r.get(f) for f in selected} for r in matched]
