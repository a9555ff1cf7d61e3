"""Query and path parameters (SPEC 11): each operation declares its own beside its handler
(the `OPERATIONS` of its `routes_*.py`), the document shows those declarations, and one
check (`Declared.check`, run by the front middleware, gateway/api/front.py) reads every
request against them before its handler runs. Whatever an endpoint
cannot use is `400 invalid_request` naming the parameter: a name it does not declare, a name
given twice, a value that is not UTF-8, holds NUL, is too long, is not an ASCII integer in
range, or is outside its pattern or enum. Handlers read the checked values through
`query(request)`, never `request.query`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import unquote_to_bytes

from aiohttp import web

from gateway.api.jsonio import NUL_MESSAGE
from protocol.errors import InvalidRequest

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# ASCII digits only: `str.isdigit` and `int()` also take '²', '٣' or '１２'.
_INTEGER_RE = re.compile(r"-?[0-9]{1,19}")
Value = int | str


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: its JSON schema is both what `/openapi.json` shows and what is read.
    Supported: `integer` (`minimum`, `maximum`) and `string` (`maxLength` or `enum`
    required; `minLength`, `pattern`, `enum`); `default` for an absent query parameter."""

    name: str
    schema: dict[str, Any]
    where: Literal["query", "path"] = "query"
    description: str = ""

    def __post_init__(self) -> None:
        kind = self.schema.get("type")
        assert kind in ("integer", "string"), (self.name, self.schema)
        # A limit on everything: a string parameter without a length cap is a declaration bug.
        assert kind == "integer" or "maxLength" in self.schema or "enum" in self.schema, self.name

    def read(self, raw: str) -> Value:
        """The value a handler can use, or `InvalidRequest` naming this parameter."""
        schema = self.schema
        if "\x00" in raw:
            raise InvalidRequest(NUL_MESSAGE, field=self.name)
        if schema["type"] == "integer":
            low = schema.get("minimum", INT64_MIN)
            high = schema.get("maximum", INT64_MAX)
            if not _INTEGER_RE.fullmatch(raw) or not low <= int(raw) <= high:
                raise InvalidRequest(f"{self.name} must be an integer {low}..{high}",
                                     field=self.name)  # fmt: skip
            return int(raw)
        if "enum" in schema:
            if raw not in schema["enum"]:
                raise InvalidRequest(f"{self.name} must be one of {', '.join(schema['enum'])}",
                                     field=self.name)  # fmt: skip
            return raw
        if not schema.get("minLength", 0) <= len(raw) <= schema["maxLength"]:
            raise InvalidRequest(
                f"{self.name} must be {schema.get('minLength', 0)}..{schema['maxLength']} "
                "characters",
                field=self.name,
            )
        # fullmatch: a pattern's `$` would let a trailing newline through with `match`.
        if "pattern" in schema and not re.fullmatch(schema["pattern"], raw):
            raise InvalidRequest(f"{self.name} is malformed", field=self.name)
        return raw


class Operation(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def params(self) -> tuple[Param, ...]: ...


@dataclass(frozen=True, slots=True)
class Query:
    """One request's query parameters, checked; defaults filled in."""

    values: dict[str, Value]
    declared: frozenset[str]

    def _get(self, name: str) -> Value | None:
        # Reading a parameter the operation does not declare is a bug in the route: the
        # document would not list it and the middleware would have refused it.
        assert name in self.declared, f"{name} is not a declared query parameter"
        return self.values.get(name)

    def text(self, name: str) -> str | None:
        value = self._get(name)
        assert value is None or isinstance(value, str), name
        return value

    def integer(self, name: str) -> int | None:
        value = self._get(name)
        assert value is None or isinstance(value, int), name
        return value


QUERY_KEY = web.RequestKey("query", Query)


def query(request: web.Request) -> Query:
    return request[QUERY_KEY]


def _unquote(raw: str, field: str | None) -> str:
    try:
        return unquote_to_bytes(raw.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("query parameters must be UTF-8", field=field) from None


def read_query(raw_query: str, declared: dict[str, Param]) -> dict[str, Value]:
    """The query string as sent (still percent-encoded), read against the declarations."""
    values: dict[str, Value] = {}
    for pair in raw_query.split("&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition("=")
        name = _unquote(raw_name, raw_name)
        param = declared.get(name)
        if param is None:
            raise InvalidRequest(f"unknown query parameter {name}", field=name)
        if name in values:
            raise InvalidRequest(f"{name} is given more than once", field=name)
        values[name] = param.read(_unquote(raw_value, name))
    for name, param in declared.items():
        if name not in values and "default" in param.schema:
            values[name] = param.schema["default"]
    return values


@dataclass(frozen=True, slots=True)
class Declared:
    """One operation's parameters, ready for requests (built once at start-up)."""

    query: dict[str, Param]
    path: tuple[Param, ...]
    no_query: Query  # the answer for an empty query string (most requests), built once

    def check(self, request: web.Request) -> None:
        """Read the path and query parameters: `InvalidRequest` naming one that is not
        usable, else the checked query kept for `query(request)`."""
        for param in self.path:
            param.read(request.match_info[param.name])
        raw_query = request.rel_url.raw_query_string
        if raw_query:
            request[QUERY_KEY] = Query(read_query(raw_query, self.query), self.no_query.declared)
        else:
            request[QUERY_KEY] = self.no_query


def declarations(operations: Iterable[Operation]) -> dict[tuple[str, str], Declared]:
    """(METHOD, path template) -> its parameters, for every operation."""
    table: dict[tuple[str, str], Declared] = {}
    for op in operations:
        in_query = {p.name: p for p in op.params if p.where == "query"}
        defaults = {n: p.schema["default"] for n, p in in_query.items() if "default" in p.schema}
        table[(op.method.upper(), op.path)] = Declared(
            in_query,
            tuple(p for p in op.params if p.where == "path"),
            Query(defaults, frozenset(in_query)),
        )
    return table
