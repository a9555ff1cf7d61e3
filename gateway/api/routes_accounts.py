"""Merchant customers and accounts (三户, SPEC 16): POST/GET /v1/customers,
GET /v1/customers/{id}; POST/GET /v1/accounts, GET /v1/accounts/{id} (with the rollup)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.accounts import customers
from gateway.accounts import repo as accounts
from gateway.api import answers
from gateway.api.auth import current_merchant
from gateway.api.jsonio import json_response, read_json
from gateway.api.operations import CURSOR, LIMIT, Op, path_id, schema_of
from gateway.api.paging import cursor, found_page, page, page_limit
from gateway.api.params import Param, query
from gateway.api.services import SERVICES
from gateway.contract.requests import AccountOpen, CustomerCreate, ObjectId, OrderId
from protocol.errors import NotFound

routes = web.RouteTableDef()

OPERATIONS: Final[tuple[Op, ...]] = (
    Op(
        "post",
        "/v1/customers",
        "Create a personal customer (客户), idempotent by external_id",
        "merchant",
        {201: answers.Customer, 200: answers.Customer},
        CustomerCreate,
        errors=(409,),
        example={"external_id": "user-42", "name": "Zhang San"},
    ),
    Op(
        "get",
        "/v1/customers",
        "Customers: by external_id, or a page",
        "merchant",
        {200: answers.CustomerPage},
        params=(
            Param("external_id", schema_of(OrderId)),
            LIMIT,
            CURSOR,
        ),
    ),
    Op(
        "get",
        "/v1/customers/{customer_id}",
        "One customer",
        "merchant",
        {200: answers.Customer},
        params=(path_id("customer_id"),),
        errors=(404,),
    ),
    Op(
        "post",
        "/v1/accounts",
        "Open a personal account (金账户) or a sub-account (parent_id)",
        "merchant",
        {201: answers.Account, 200: answers.Account},
        AccountOpen,
        errors=(404, 409),
        example={
            "customer_id": "cus_0123456789abcdefghjkmnpqrs",
            "purpose": "wallet",
            "currency": "CNY",
        },
    ),
    Op(
        "get",
        "/v1/accounts",
        "Accounts (the settlement account too), optionally one customer's",
        "merchant",
        {200: answers.AccountPage},
        params=(
            Param("customer_id", schema_of(ObjectId)),
            LIMIT,
            CURSOR,
        ),
    ),
    Op(
        "get",
        "/v1/accounts/{account_id}",
        "One account with its balance and its subtree's rollup",
        "merchant",
        {200: answers.Account},
        params=(path_id("account_id"),),
        errors=(404,),
    ),
)


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
    limit, after = page_limit(request), cursor(request)
    rows = await services.reads.read_list(
        merchant.id, lambda pool: customers.list_page(pool, merchant.id, after, limit + 1)
    )
    return page(rows, limit)


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
    limit, customer_id, after = (
        page_limit(request),
        query(request).text("customer_id"),
        cursor(request),
    )
    rows = await services.reads.read_list(
        merchant.id,
        lambda pool: accounts.list_page(pool, merchant.id, customer_id, after, limit + 1),
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
