"""Signing in and out: `GET/POST /console/login` (fields `username`, `password`), `POST
/console/logout`. Five failures for one name in a minute lock it for a minute (429)."""

from __future__ import annotations

import logging

import aiohttp_jinja2
from aiohttp import web

from gateway.console.access import (
    COOKIE,
    services_of,
    session_of,
    sessions_of,
    throttle_of,
)
from gateway.operators import repo

log = logging.getLogger("paygate.console")
routes = web.RouteTableDef()


def _login_page(request: web.Request, message: str | None, status: int) -> web.Response:
    return aiohttp_jinja2.render_template(
        "login.html", request, {"message": message}, status=status
    )


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    return _login_page(request, None, 200)


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))
    throttle = throttle_of(request)
    if await throttle.locked_for_s(name):
        log.warning("console login refused: locked", extra={"operator": name})
        return _login_page(request, "Too many failed sign-ins: try again in a minute.", 429)
    operator = None
    if repo.NAME_RE.match(name) and password:
        operator = await repo.check_login(services_of(request).pool, name, password)
    if operator is None:
        locked = await throttle.failed(name)
        log.warning("console login failed", extra={"operator": name, "locked": locked})
        if locked:
            return _login_page(request, "Too many failed sign-ins: try again in a minute.", 429)
        return _login_page(request, "Wrong name or password.", 401)
    await throttle.succeeded(name)
    token, _ = await sessions_of(request).open(operator)
    log.info("console sign-in", extra={"operator": operator.name, "role": operator.role})
    response = web.HTTPSeeOther("/console/")
    response.set_cookie(COOKIE, token, path="/console/", httponly=True, samesite="Strict")
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    log.info("console sign-out", extra={"operator": session_of(request).name})
    await sessions_of(request).close(request.cookies.get(COOKIE, ""))
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(COOKIE, path="/console/")
    raise response
