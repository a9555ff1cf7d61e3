"""JSON in (msgspec, strict: unknown fields refused) and out (orjson)."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
import orjson
from aiohttp import web

from protocol.errors import InvalidRequest, UnsupportedMediaType

T = TypeVar("T")

_AT_RE = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_FIELD_RE = re.compile(r"(?:unknown|required) field `(?P<name>[^`]+)`")
# A JSON `\u0000` escape (not an escaped backslash followed by "u0000"): PostgreSQL cannot
# store NUL in text or jsonb, so it is refused at the edge, never a 500 later.
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
NUL_MESSAGE = "text must not contain NUL characters (\\u0000)"


def _field_from_message(message: str) -> str | None:
    path = ""
    at = _AT_RE.search(message)
    if at:
        # msgspec names a dict value `[...]`: report the dict itself.
        path = at.group("path").lstrip(".").replace("[...]", "")
        message = message[: at.start()]
    named = _FIELD_RE.search(message)
    if named:
        path = f"{path}.{named.group('name')}" if path else named.group("name")
    return path or None


def decode(body: bytes, type_: type[T]) -> T:
    """Decode and validate; every failure is a 400 naming the field when there is one."""
    if not body.strip():
        raise InvalidRequest("request body must be a JSON object")
    if b"\\u0000" in body and _NUL_ESCAPE.search(body):
        raise InvalidRequest(NUL_MESSAGE)
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        message = str(exc)
        raise InvalidRequest(message, field=_field_from_message(message)) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from None


async def read_body(request: web.Request) -> bytes:
    """The raw body, read once (the signature check and the handler share it: aiohttp keeps
    what `read` read, and gives the same bytes again)."""
    return await request.read()


async def read_json(request: web.Request, type_: type[T]) -> T:
    return decode_typed(await read_body(request), request.content_type, type_)


def decode_typed(body: bytes, content_type: str, type_: type[T]) -> T:
    """`decode`, for a body sent as JSON (`content_type`: the media type alone, lower case;
    none, or octet-stream, is taken as JSON too)."""
    if body and content_type not in ("application/json", "application/octet-stream", ""):
        raise UnsupportedMediaType("Content-Type must be application/json")
    return decode(body, type_)


def dumps(data: Any) -> bytes:
    return orjson.dumps(data)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json"
    )
