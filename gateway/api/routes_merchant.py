"""Merchant endpoints (signed with `paygate-hmac-v1`): balance and ledger."""

from __future__ import annotations

from aiohttp import web

from gateway.api.auth import current_merchant
from gateway.api.jsonio import json_response
from gateway.api.services import SERVICES
from gateway.ledger.balances import read_balance

routes = web.RouteTableDef()


@routes.get("/v1/balance")
async def balance(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return json_response(await read_balance(services.pool, current_merchant(request)))
