"""The gateway aiohttp application: its one middleware (front.py), routes and the services
lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.api import (
    openapi,
    routes_accounts,
    routes_admin,
    routes_b2b,
    routes_callbacks,
    routes_channels,
    routes_clock,
    routes_collections,
    routes_events,
    routes_merchant,
    routes_noop,
    routes_payouts,
    routes_recon,
    routes_reviews,
    routes_risk,
    routes_service,
    routes_transfers,
)
from gateway.api.front import Front
from gateway.api.lean_front import LeanRoutes
from gateway.api.services import SERVICES, open_services
from gateway.console.app import build_console
from gateway.server import LEAN_FRONT_KEY
from gateway.settings import Settings
from gateway.storage.pools import postgres_down


async def replace_connections(request: web.Request, exc: BaseException) -> None:
    """PostgreSQL went down under a request: none of the pool's connections is to be trusted."""
    services = request.app.get(SERVICES)
    if services is not None and postgres_down(exc):
        await services.pool.expire_connections()


def build_app(settings: Settings) -> web.Application:
    front = Front(openapi.OPERATIONS, settings.max_body_bytes, replace_connections)
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[front.middleware])  # fmt: skip

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            app[SERVICES] = services
            front.services = services
            try:
                yield
            finally:
                front.services = None

    app.cleanup_ctx.append(lifecycle)
    if settings.lean_front:
        app[LEAN_FRONT_KEY] = LeanRoutes(front, settings.max_body_bytes)
    app.add_routes(routes_service.routes)
    app.add_routes(openapi.routes)
    app.add_routes(routes_admin.routes)
    app.add_routes(routes_merchant.routes)
    app.add_routes(routes_noop.routes)
    app.add_routes(routes_payouts.routes)
    app.add_routes(routes_reviews.routes)
    app.add_routes(routes_channels.routes)
    app.add_routes(routes_risk.routes)
    app.add_routes(routes_events.routes)
    app.add_routes(routes_b2b.routes)
    app.add_routes(routes_clock.routes)
    app.add_routes(routes_callbacks.routes)
    app.add_routes(routes_recon.routes)
    app.add_routes(routes_accounts.routes)
    app.add_routes(routes_transfers.routes)
    app.add_routes(routes_collections.routes)
    # The operator console (SPEC 17): HTML pages over the same services, its own middleware.
    app.add_subapp("/console/", build_console())
    return app
