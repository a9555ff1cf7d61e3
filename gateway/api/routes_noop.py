"""`POST /v1/noop`: a signed no-op, the bare ceiling `paygate bench` compares against."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.api import answers
from gateway.api.jsonio import json_response
from gateway.api.operations import Op

routes = web.RouteTableDef()

OPERATIONS: Final[tuple[Op, ...]] = (
    Op(
        "post",
        "/v1/noop",
        "A signed no-op (the benchmark's ceiling)",
        "merchant",
        {200: answers.Ok},
    ),
)


@routes.post("/v1/noop")
async def noop(request: web.Request) -> web.Response:
    """A signed no-op: the whole request path (signature, nonce + rate limit in Redis,
    middleware) and nothing else — the bare ceiling `paygate bench` compares against."""
    return json_response({"ok": True})
