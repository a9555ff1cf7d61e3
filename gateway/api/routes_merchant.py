"""Merchant endpoints (signed with `paygate-hmac-v1`): the balance."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.api import answers
from gateway.api.auth import current_merchant
from gateway.api.jsonio import json_response
from gateway.api.operations import Op
from gateway.api.services import SERVICES
from gateway.ledger.balances import read_balance

routes = web.RouteTableDef()

OPERATIONS: Final[tuple[Op, ...]] = (
    Op(
        "get",
        "/v1/balance",
        "Balance: available, held, pending_in, advance",
        "merchant",
        {200: answers.Balance},
    ),
)


@routes.get("/v1/balance")
async def balance(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return json_response(await read_balance(services.pool, current_merchant(request).id))
