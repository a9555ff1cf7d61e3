"""The gateway aiohttp application: middleware chain, routes and the services lifecycle."""

from __future__ import annotations

import time
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
from gateway.api.auth import authenticate_merchant, check_admin, current_merchant
from gateway.api.middleware import Handler, make_error_middleware
from gateway.api.params import make_params_middleware
from gateway.api.services import SERVICES, open_services
from gateway.console.app import build_console
from gateway.metrics import in_hop
from gateway.settings import Settings
from gateway.storage.pools import postgres_down

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def count_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Requests by route and status, and their latency (the outermost layer, so error
    answers count too). The route is the resource's canonical path, never the raw URL."""
    in_hop("api")
    started = time.perf_counter()
    response = await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    method = request.method if request.method in KNOWN_METHODS else "other"  # bounded labels
    request.app[SERVICES].metrics.request(
        method, route, response.status, time.perf_counter() - started
    )
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Merchant routes are signed; operator routes carry the admin token."""
    services = request.app[SERVICES]
    path = request.path
    if path.startswith("/v1/"):
        settings = services.settings
        await authenticate_merchant(
            request,
            services.merchants,
            services.admissions,
            settings.signature_window_s,
            settings.rate_limit_fail_open,
        )
        if request.method not in READ_METHODS and services.reads.replica is not None:
            try:
                return await handler(request)
            finally:
                # After the write has answered: this merchant's lists stay on the primary
                # until the replica has it (storage/replica.py; nothing without a replica).
                await services.reads.wrote(current_merchant(request).id)
    elif path.startswith("/admin/"):
        check_admin(request, services.settings.admin_token)
    return await handler(request)


async def replace_connections(request: web.Request, exc: BaseException) -> None:
    """PostgreSQL went down under a request: none of the pool's connections is to be trusted."""
    services = request.app.get(SERVICES)
    if services is not None and postgres_down(exc):
        await services.pool.expire_connections()


def build_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            count_middleware,
            make_error_middleware(settings.max_body_bytes, replace_connections),
            auth_middleware,
            make_params_middleware(openapi.OPERATIONS),
        ],
    )

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            app[SERVICES] = services
            yield

    app.cleanup_ctx.append(lifecycle)
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
