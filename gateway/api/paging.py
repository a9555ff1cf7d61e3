"""List endpoints: `limit` and keyset `cursor` from the query string, and the list shape
`{"data": [...], "next_cursor": ...}` (SPEC 11) they all answer with."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from gateway.api.jsonio import json_response
from gateway.errors import InvalidRequest

MAX_PAGE = 200
_CURSOR_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def page_limit(request: web.Request, default: int = 50) -> int:
    raw = request.query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidRequest(f"limit must be 1..{MAX_PAGE}", field="limit")
    return int(raw)


def cursor(request: web.Request) -> str | None:
    raw = request.query.get("cursor")
    if raw is None or raw == "":
        return None
    if not _CURSOR_RE.match(raw):
        raise InvalidRequest("malformed cursor", field="cursor")
    return raw


def int_cursor(request: web.Request) -> int | None:
    raw = cursor(request)
    if raw is None:
        return None
    if not raw.isdigit():
        raise InvalidRequest("malformed cursor", field="cursor")
    return int(raw)


def refuse_unknown_params(request: web.Request, allowed: set[str]) -> None:
    unknown = set(request.query) - allowed
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequest(f"unknown query parameter {name}", field=name)


def page(rows: list[dict[str, Any]], limit: int, key: str = "id") -> web.Response:
    """One page from `limit + 1` rows read: the extra row only says another page follows."""
    more = len(rows) > limit
    rows = rows[:limit]
    return json_response({"data": rows, "next_cursor": rows[-1][key] if more else None})


def found_page(found: dict[str, Any] | None) -> web.Response:
    """A lookup by a unique key (e.g. `merchant_order_id`) in the list shape: 0 or 1 item."""
    return json_response({"data": [found] if found else [], "next_cursor": None})
