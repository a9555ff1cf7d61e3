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
from gateway.operators import audit
from gateway.operators.model import API_ACTOR
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
    async with services.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """INSERT INTO payee_blocklist (account_no, reason) VALUES ($1, $2)
               ON CONFLICT (account_no) DO UPDATE SET reason = excluded.reason
               RETURNING account_no, reason, created_at""",
            entry.account_no,
            entry.reason,
        )
        await audit.record(conn, API_ACTOR, "blocklist.add", "payee", entry.account_no,
                           after={"blocked": True}, reason=entry.reason or None,
                           sim_at=services.clock.now())  # fmt: skip
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
    async with services.pool.acquire() as conn, conn.transaction():
        deleted = await conn.fetchval(
            "DELETE FROM payee_blocklist WHERE account_no = $1 RETURNING account_no", account_no
        )
        if deleted is None:
            raise NotFound(f"{account_no} is not blocked")
        await audit.record(conn, API_ACTOR, "blocklist.remove", "payee", account_no,
                           before={"blocked": True}, after={"blocked": False},
                           sim_at=services.clock.now())  # fmt: skip
    return web.Response(status=204)
