"""Operator risk controls: the payee blocklist (SPEC 8) at /admin/blocklist."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.api import answers
from gateway.api.jsonio import json_response, read_json
from gateway.api.operations import LIMIT, NEXT_CURSOR, Op, schema_of
from gateway.api.paging import cursor, page, page_limit
from gateway.api.params import Param
from gateway.api.services import SERVICES
from gateway.contract.requests import BlockedAccountNo, BlocklistEntry
from protocol.errors import NotFound

routes = web.RouteTableDef()

BLOCKED = Param("account_no", schema_of(BlockedAccountNo), "path")
BLOCKLIST_CURSOR = Param("cursor", schema_of(BlockedAccountNo), description=NEXT_CURSOR)

OPERATIONS: Final[tuple[Op, ...]] = (
    Op(
        "post",
        "/admin/blocklist",
        "Block a payee account",
        "admin",
        {201: None, 200: None},
        BlocklistEntry,
    ),
    Op(
        "get",
        "/admin/blocklist",
        "Blocked payee accounts",
        "admin",
        {200: answers.Page},
        params=(LIMIT, BLOCKLIST_CURSOR),
    ),
    Op(
        "delete",
        "/admin/blocklist/{account_no}",
        "Unblock a payee account",
        "admin",
        {200: None, 204: None},
        params=(BLOCKED,),
        errors=(404,),
    ),
)


@routes.post("/admin/blocklist")
async def block_payee(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    entry = await read_json(request, BlocklistEntry)
    row = await services.pool.fetchrow(
        """INSERT INTO payee_blocklist (account_no, reason) VALUES ($1, $2)
           ON CONFLICT (account_no) DO UPDATE SET reason = excluded.reason
           RETURNING account_no, reason, created_at""",
        entry.account_no,
        entry.reason,
    )
    return json_response(dict(row) if row else {}, status=201)


@routes.get("/admin/blocklist")
async def list_blocked(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    limit = page_limit(request)
    rows = await services.pool.fetch(
        """SELECT account_no, reason, created_at FROM payee_blocklist
           WHERE account_no > $1 ORDER BY account_no LIMIT $2""",
        cursor(request) or "",
        limit + 1,
    )
    return page([dict(r) for r in rows], limit, key="account_no")


@routes.delete("/admin/blocklist/{account_no}")
async def unblock_payee(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    account_no = request.match_info["account_no"]
    deleted = await services.pool.fetchval(
        "DELETE FROM payee_blocklist WHERE account_no = $1 RETURNING account_no", account_no
    )
    if deleted is None:
        raise NotFound(f"{account_no} is not blocked")
    return web.Response(status=204)
