"""Merchant customers and accounts (三户, SPEC 16): POST/GET /v1/customers,
GET /v1/customers/{id}; POST/GET /v1/accounts, GET /v1/accounts/{id} (with the rollup)."""

from __future__ import annotations

from aiohttp import web

from gateway.accounts import customers
from gateway.accounts import repo as accounts
from gateway.api.auth import current_merchant
from gateway.api.jsonio import json_response, read_json
from gateway.api.paging import cursor, found_page, page, page_limit
from gateway.api.params import query
from gateway.api.services import SERVICES
from gateway.contract.requests import AccountOpen, CustomerCreate
from protocol.errors import NotFound

routes = web.RouteTableDef()


@routes.post("/v1/customers")
async def create_customer(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    req = await read_json(request, CustomerCreate)
    status, customer = await customers.create(services.pool, current_merchant(request).id, req)
    return json_response(customer, status)


@routes.get("/v1/customers")
async def list_customers(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    merchant = current_merchant(request)
    external_id = query(request).text("external_id")
    if external_id is not None:
        found = await customers.by_external_id(services.pool, merchant.id, external_id)
        return found_page(found)
    limit = page_limit(request)
    return page(
        await customers.list_page(services.pool, merchant.id, cursor(request), limit + 1), limit
    )


@routes.get("/v1/customers/{customer_id}")
async def get_customer(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    found = await customers.get(
        services.pool, current_merchant(request).id, request.match_info["customer_id"]
    )
    if found is None:
        raise NotFound("no such customer")
    return json_response(found)


@routes.post("/v1/accounts")
async def open_account(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    req = await read_json(request, AccountOpen)
    async with services.pool.acquire() as conn:
        status, opened = await accounts.open_account(conn, current_merchant(request).id, req)
    return json_response(opened, status)


@routes.get("/v1/accounts")
async def list_accounts(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    merchant = current_merchant(request)
    limit = page_limit(request)
    rows = await accounts.list_page(
        services.pool, merchant.id, query(request).text("customer_id"), cursor(request), limit + 1
    )
    return page(rows, limit)


@routes.get("/v1/accounts/{account_id}")
async def get_account(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    found = await accounts.get(
        services.pool, current_merchant(request).id, request.match_info["account_id"]
    )
    if found is None:
        raise NotFound("no such account")
    return json_response(found)
