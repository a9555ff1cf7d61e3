"""List endpoints: `limit` and keyset `cursor` (declared in `operations.py`, checked by the
parameters middleware, `params.py`), and the list shape `{"data": [...], "next_cursor": ...}`
(SPEC 11) they all answer with."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.jsonio import json_response
from gateway.api.params import query

MAX_PAGE = 200
DEFAULT_PAGE = 50


def page_limit(request: web.Request) -> int:
    limit = query(request).integer("limit")
    assert limit is not None, "limit is declared with a default"
    return limit


def cursor(request: web.Request) -> str | None:
    return query(request).text("cursor")


def int_cursor(request: web.Request) -> int | None:
    return query(request).integer("cursor")


def page(rows: list[dict[str, Any]], limit: int, key: str = "id") -> web.Response:
    """One page from `limit + 1` rows read: the extra row only says another page follows."""
    more = len(rows) > limit
    rows = rows[:limit]
    return json_response({"data": rows, "next_cursor": rows[-1][key] if more else None})


def found_page(found: dict[str, Any] | None) -> web.Response:
    """A lookup by a unique key (e.g. `merchant_order_id`) in the list shape: 0 or 1 item."""
    return json_response({"data": [found] if found else [], "next_cursor": None})
