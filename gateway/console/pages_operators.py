"""`/console/operators`: who may use the console, and (admin) "Add operator", whose one-time
password is shown once on the answer page (never in a URL or a log line)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from gateway.console.access import form_text, require, services_of
from gateway.operators import actions, passwords, repo
from gateway.operators.model import ROLES

routes = web.RouteTableDef()


async def _page(request: web.Request, added: dict[str, str] | None, status: int) -> web.Response:
    pool = services_of(request).pool
    return aiohttp_jinja2.render_template(
        "operators.html", request,
        {"rows": await repo.list_all(pool), "roles": ROLES, "added": added}, status=status,
    )  # fmt: skip


@routes.get("/operators")
async def operators(request: web.Request) -> web.Response:
    return await _page(request, None, 200)


@routes.post("/operators")
async def add(request: web.Request) -> web.Response:
    actor = require(request, "admin")
    name = await form_text(request, "name", max_len=64)
    role = await form_text(request, "role", max_len=16)
    password = passwords.new_password()
    services = services_of(request)
    try:
        async with services.pool.acquire() as conn:
            await actions.add_operator(conn, name, role, password, actor, services.clock.now())
    except (ValueError, repo.OperatorExists) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    response: web.Response = await _page(
        request, {"name": name, "role": role, "password": password}, 201
    )
    return response
