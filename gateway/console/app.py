"""The console's aiohttp sub-application, mounted at /console/: templates, static files, the
session and CSRF checks, the safety headers and the HTML error pages.

Every page needs a signed-in operator (else a redirect to the login); every POST carries the
session's CSRF token (else 403); each action handler checks the role it needs on the server
(`require`), and the templates show only the buttons the role may press.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.console import (
    overview,
    pages_merchants,
    pages_money,
    pages_operators,
    pages_ops,
    signin,
)
from gateway.console.access import COOKIE, SESSION_KEY, services_of, sessions_of
from gateway.console.format import FILTERS
from gateway.console.sampler import SAMPLER, Sampler
from gateway.operators.model import may
from protocol.errors import ApiError

log = logging.getLogger("paygate.console")

HERE: Final = Path(__file__).resolve().parent
OPEN_PATHS: Final = ("/console/login", "/console/static/")
HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    # Rendered outside the context processors' middleware (a refusal may come before it).
    context = {**_base(request), "status": status, "message": message}
    return aiohttp_jinja2.render_template("error.html", request, context, status=status)


@web.middleware
async def safety_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPRedirection as redirect:
        redirect.headers.update(HEADERS)
        raise
    except web.HTTPException as exc:
        response = error_page(request, exc.status, exc.text or exc.reason)
    except ApiError as exc:  # a refusal from the domain (409, 404, 422 ...): shown, not a 500
        response = error_page(request, exc.status, exc.message)
    response.headers.update(HEADERS)
    return response


@web.middleware
async def signed_in(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(OPEN_PATHS):
        return await handler(request)
    token = request.cookies.get(COOKIE, "")
    session = await sessions_of(request).find(token) if token else None
    if session is None:
        if request.method == "POST":
            raise web.HTTPForbidden(text="not signed in (or the session expired)")
        raise web.HTTPSeeOther("/console/login")
    request[SESSION_KEY] = session
    if request.method == "POST":
        form = await request.post()
        given = form.get("csrf")
        if not isinstance(given, str) or not hmac.compare_digest(given, session.csrf):
            log.warning("console POST without a valid CSRF token",
                        extra={"operator": session.name, "path": request.path})  # fmt: skip
            raise web.HTTPForbidden(text="missing or wrong CSRF token")
    await request.config_dict[SAMPLER].watched(services_of(request))
    return await handler(request)


def build_console() -> web.Application:
    app = web.Application(middlewares=[safety_headers, signed_in])
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # everything a merchant or payer typed is escaped
        undefined=jinja2.StrictUndefined,
        context_processors=[_context],
    )
    env.filters.update(FILTERS)
    app[SAMPLER] = Sampler()

    async def stop(app: web.Application) -> None:
        await app[SAMPLER].stop()

    app.on_shutdown.append(stop)
    app.router.add_static("/static/", HERE / "static", name="static")
    for module in (signin, overview, pages_money, pages_merchants, pages_ops, pages_operators):
        app.add_routes(module.routes)
    return app


def _base(request: web.Request) -> dict[str, Any]:
    session = request.get(SESSION_KEY)
    return {"session": session, "csrf": session.csrf if session else "", "path": request.path,
            "may": (lambda role: session is not None and may(session.role, role))}  # fmt: skip


async def _context(request: web.Request) -> dict[str, Any]:
    return _base(request)
