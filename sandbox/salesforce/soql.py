"""A SOQL subset: the query forms a sync connector sends, parsed and type-checked the way Salesforce does.

Supported: ``SELECT f1, Rel.f2 | COUNT() FROM Obj [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...]
[LIMIT n] [OFFSET n]`` where cond combines ``field op literal``, ``field [NOT] IN (...)`` and ``field LIKE '...'``
with AND / OR / NOT and parentheses. Literals follow SOQL: quoted strings, numbers, TRUE / FALSE / NULL, date
(``2026-01-31``) and datetime literals with a zone (``2026-01-31T00:00:00Z``, ``...+01:00``), never quoted.

Anything else answers MALFORMED_QUERY; unknown fields INVALID_FIELD; unknown objects INVALID_TYPE; a literal of
the wrong type INVALID_FIELD with Salesforce's own wording. Being strict here is the point: a connector bug such
as a quoted datetime or a missing time zone fails against the sandbox as it would against a real org.

This module is the tokenizer and the recursive-descent parser, kept whole at over 400 lines because its parts
(token table, grammar rules, literal typing, field resolution) are one grammar and only make sense read together;
running a parsed query over records is soql_match.py's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sandbox.salesforce.sobjects import NUMERIC_TYPES, FieldDef, ObjectDef

KEYWORDS = frozenset(
    {
        "select",
        "from",
        "where",
        "and",
        "or",
        "not",
        "order",
        "by",
        "asc",
        "desc",
        "nulls",
        "first",
        "last",
        "limit",
        "offset",
        "in",
        "like",
        "true",
        "false",
        "null",
        "count",
    }
)

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<baddatetime>\d{4}-\d{2}-\d{2}T[\d:.]*)
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<other>.)
    """,
    re.VERBOSE,
)


class SoqlError(Exception):
    """A query Salesforce would refuse: errorCode plus the message it would send (HTTP 400)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int

    @property
    def keyword(self) -> str | None:
        return self.text.lower() if self.kind == "ident" and self.text.lower() in KEYWORDS else None


@dataclass(frozen=True)
class FieldPath:
    """A selected or filtered field: a plain field, or one hop through a parent relationship (Owner.Email)."""

    names: tuple[str, ...]  # canonical names as the response keys them, e.g. ("Owner", "Email")
    relationship: FieldDef | None  # the reference field followed (OwnerId), None for a plain field
    target: FieldDef  # the field read at the end

    @property
    def dotted(self) -> str:
        return ".".join(self.names)


@dataclass
class Condition:
    path: FieldPath
    op: str  # = != < <= > >= in notin like
    value: Any


@dataclass
class BoolNode:
    op: str  # and / or / not
    children: list[Any]


@dataclass
class Query:
    sobject: ObjectDef
    fields: list[FieldPath]
    count_only: bool = False
    where: Any = None
    order: list[tuple[FieldPath, bool, bool]] = field(default_factory=list)  # (path, descending, nulls_first)
    limit: int | None = None
    offset: int = 0


def tokenize(soql: str) -> list[Token]:
    tokens = []
    for match in _TOKEN.finditer(soql):
        kind = match.lastgroup or "other"
        if kind == "ws":
            continue
        tokens.append(Token(kind, match.group(), match.start()))
    return tokens


def _located(soql: str, pos: int, text: str) -> str:
    """Salesforce's error layout: the query, a caret under the culprit, its row and column, then the reason."""
    line_start = soql.rfind("\n", 0, pos) + 1
    row = soql.count("\n", 0, pos) + 1
    column = pos - line_start + 1
    line_end = soql.find("\n", pos)
    line = soql[line_start : line_end if line_end >= 0 else len(soql)]
    return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{text}"


class _Parser:
    def __init__(self, soql: str, schema: dict[str, ObjectDef]) -> None:
        self.soql = soql
        self.schema = schema
        self.tokens = tokenize(soql)
        self.i = 0
        self.sobject: ObjectDef | None = None

    # -- token helpers -------------------------------------------------------------------------------------
    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise self.malformed(None, "unexpected end of query")
        self.i += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.keyword in words

    def expect_keyword(self, word: str) -> Token:
        token = self.next()
        if token.keyword != word:
            raise self.malformed(token)
        return token

    def expect(self, kind: str, text: str | None = None) -> Token:
        token = self.next()
        if token.kind != kind or (text is not None and token.text != text):
            raise self.malformed(token)
        return token

    def malformed(self, token: Token | None, text: str | None = None) -> SoqlError:
        if token is None:
            return SoqlError("MALFORMED_QUERY", _located(self.soql, len(self.soql), text or "unexpected end"))
        return SoqlError("MALFORMED_QUERY", _located(self.soql, token.pos, text or f"unexpected token: {token.text}"))

    # -- grammar ------------------------------------------------------------------------------------------
    def parse(self) -> Query:
        self.expect_keyword("select")
        raw_fields: list[Token] = []
        count_only = False
        if self.at_keyword("count"):
            self.next()
            self.expect("punct", "(")
            self.expect("punct", ")")
            count_only = True
        else:
            while True:
                token = self.next()
                if token.kind != "ident" or token.keyword:
                    raise self.malformed(token)
                raw_fields.append(token)
                if not (self.peek() and self.peek().text == ","):
                    break
                self.next()
        self.expect_keyword("from")
        obj_token = self.next()
        if obj_token.kind != "ident" or obj_token.keyword:
            raise self.malformed(obj_token)
        self.sobject = self._object(obj_token)
        query = Query(self.sobject, [self.resolve(t) for t in raw_fields], count_only=count_only)
        seen: set[str] = set()
        for path, token in zip(query.fields, raw_fields, strict=True):
            if path.dotted.lower() in seen:
                raise SoqlError(
                    "MALFORMED_QUERY", _located(self.soql, token.pos, f"duplicate field selected: {path.dotted}")
                )
            seen.add(path.dotted.lower())
        if self.at_keyword("where"):
            self.next()
            query.where = self.parse_or()
        if self.at_keyword("order"):
            self.next()
            self.expect_keyword("by")
            while True:
                path = self.resolve(self.next())
                descending = False
                if self.at_keyword("asc", "desc"):
                    descending = self.next().keyword == "desc"
                nulls_first = not descending
                if self.at_keyword("nulls"):
                    self.next()
                    word = self.next()
                    if word.keyword not in {"first", "last"}:
                        raise self.malformed(word)
                    nulls_first = word.keyword == "first"
                query.order.append((path, descending, nulls_first))
                if not (self.peek() and self.peek().text == ","):
                    break
                self.next()
        if self.at_keyword("limit"):
            self.next()
            query.limit = self._integer(self.next())
        if self.at_keyword("offset"):
            self.next()
            query.offset = self._integer(self.next())
            if query.offset > 2000:
                raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000")
        if self.peek() is not None:
            raise self.malformed(self.peek())
        return query

    def _integer(self, token: Token) -> int:
        if token.kind != "number" or "." in token.text or token.text.startswith("-"):
            raise self.malformed(token)
        return int(token.text)

    def _object(self, token: Token) -> ObjectDef:
        obj = self.schema.get(token.text) or next(
            (o for o in self.schema.values() if o.name.lower() == token.text.lower()), None
        )
        if obj is None:
            raise SoqlError(
                "INVALID_TYPE",
                _located(
                    self.soql,
                    token.pos,
                    f"sObject type '{token.text}' is not supported. If you are attempting to use a custom object, "
                    "be sure to append the '__c' after the entity name. Please reference your WSDL or the describe "
                    "call for the appropriate names.",
                ),
            )
        return obj

    def resolve(self, token: Token) -> FieldPath:
        """Resolve a (possibly dotted) field name on the FROM object, as INVALID_FIELD explains when it can't."""
        assert self.sobject is not None
        if token.kind != "ident" or token.keyword:
            raise self.malformed(token)
        parts = token.text.split(".")
        if len(parts) > 2:
            raise self.malformed(token, "relationship queries deeper than one level are not supported here")
        if len(parts) == 1:
            target = self.sobject.field(parts[0])
            if target is None:
                raise self._no_such_column(token, parts[0], self.sobject.name)
            return FieldPath((target.name,), None, target)
        rel = self.sobject.relationship(parts[0])
        if rel is None:
            raise SoqlError(
                "INVALID_FIELD",
                _located(
                    self.soql,
                    token.pos,
                    f"Didn't understand relationship '{parts[0]}' in field path. If you are attempting to use a "
                    "custom relationship, be sure to append the '__r' after the custom relationship name. Please "
                    "reference your WSDL or the describe call for the appropriate names.",
                ),
            )
        candidates = [self.schema[name].field(parts[1]) for name in rel.reference_to if name in self.schema]
        target = next((c for c in candidates if c is not None), None)
        if target is None:
            raise self._no_such_column(token, parts[1], rel.reference_to[0])
        assert rel.relationship_name is not None
        return FieldPath((rel.relationship_name, target.name), rel, target)

    def _no_such_column(self, token: Token, name: str, entity: str) -> SoqlError:
        return SoqlError(
            "INVALID_FIELD",
            _located(
                self.soql,
                token.pos,
                f"No such column '{name}' on entity '{entity}'. If you are attempting to use a custom field, be sure "
                "to append the '__c' after the custom field name. Please reference your WSDL or the describe call "
                "for the appropriate names.",
            ),
        )

    def parse_or(self) -> Any:
        node = self.parse_and()
        children = [node]
        while self.at_keyword("or"):
            self.next()
            children.append(self.parse_and())
        return node if len(children) == 1 else BoolNode("or", children)

    def parse_and(self) -> Any:
        node = self.parse_not()
        children = [node]
        while self.at_keyword("and"):
            self.next()
            children.append(self.parse_not())
        return node if len(children) == 1 else BoolNode("and", children)

    def parse_not(self) -> Any:
        if self.at_keyword("not"):
            self.next()
            return BoolNode("not", [self.parse_not()])
        token = self.peek()
        if token is not None and token.text == "(":
            self.next()
            node = self.parse_or()
            self.expect("punct", ")")
            return node
        return self.parse_condition()

    def parse_condition(self) -> Condition:
        field_token = self.next()
        path = self.resolve(field_token)
        if not path.target.filterable:
            raise SoqlError(
                "INVALID_FIELD",
                _located(self.soql, field_token.pos, f"field '{path.target.name}' can not be filtered in a query call"),
            )
        op_token = self.next()
        if op_token.keyword == "not" and self.at_keyword("in"):
            self.next()
            return Condition(path, "notin", self._value_list(path))
        if op_token.keyword == "in":
            return Condition(path, "in", self._value_list(path))
        if op_token.keyword == "like":
            value_token = self.next()
            if value_token.kind != "string":
                raise self.malformed(value_token)
            return Condition(path, "like", _unquote(value_token.text))
        if op_token.kind != "op":
            raise self.malformed(op_token)
        op = "!=" if op_token.text == "<>" else op_token.text
        return Condition(path, op, self._literal(path, self.next()))

    def _value_list(self, path: FieldPath) -> list[Any]:
        self.expect("punct", "(")
        values = [self._literal(path, self.next())]
        while self.peek() is not None and self.peek().text == ",":
            self.next()
            values.append(self._literal(path, self.next()))
        self.expect("punct", ")")
        return values

    def _literal(self, path: FieldPath, token: Token) -> Any:
        """Parse a literal and check it against the field's type, with Salesforce's messages for mismatches."""
        ftype = path.target.type
        if token.keyword == "null":
            return None
        if token.kind == "baddatetime":
            raise self.malformed(token, f"line 1:{token.pos} no viable alternative at character '{token.text}'")
        if ftype == "datetime":
            if token.kind != "datetime":
                raise self._wrong_type(token, path, "dateTime", quoted=False)
            return parse_datetime(token.text)
        if ftype == "date":
            if token.kind != "date":
                raise self._wrong_type(token, path, "date", quoted=False)
            return date.fromisoformat(token.text)
        if ftype == "boolean":
            if token.keyword not in {"true", "false"}:
                raise self._wrong_type(token, path, "boolean", quoted=False)
            return token.keyword == "true"
        if ftype in NUMERIC_TYPES:
            if token.kind != "number":
                raise self._wrong_type(token, path, "double" if ftype != "int" else "int", quoted=False)
            return float(token.text)
        if token.kind != "string":
            if token.kind in {"number", "datetime", "date", "ident"}:
                raise self._wrong_type(token, path, "string", quoted=True)
            raise self.malformed(token)
        return _unquote(token.text)

    def _wrong_type(self, token: Token, path: FieldPath, type_name: str, quoted: bool) -> SoqlError:
        enclosure = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
        return SoqlError(
            "INVALID_FIELD",
            _located(
                self.soql,
                token.pos,
                f"value of filter criterion for field '{path.target.name}' must be of type {type_name} and {enclosure}",
            ),
        )


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), body)


def parse_datetime(text: str) -> datetime:
    """Parse a SOQL / REST datetime (Z, +hh:mm or +hhmm zone) into an aware UTC datetime."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"datetime without a time zone: {text}")
    return parsed.astimezone(UTC)


def parse(soql: str, schema: dict[str, ObjectDef]) -> Query:
    """Parse `soql` against the org's schema; raises SoqlError as Salesforce would answer it."""
    return _Parser(soql, schema).parse()
