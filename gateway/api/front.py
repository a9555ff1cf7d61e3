"""The gateway's one middleware: everything a request meets before and after its handler.

In order: the request id; the body cap and NUL in the path; authentication (`/v1/`: the
merchant's signature, then nonce + rate limit; `/admin/`: the admin token); the operation's
query and path parameters (params.py); the handler; the SPEC 11 error body for whatever was
raised (aiohttp's own 404, 405 and 413 included); the rate-limit headers and `X-Request-Id`
on every answer; the request counted by method, route and status with its latency.

One layer, not four: each aiohttp middleware is another coroutine per request, and what is
known per route (its metric label, its parameters) is worked out once per resource, not per
request. The services arrive once, at start-up (`Front.services`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource

from gateway.api.auth import authenticate_merchant, check_admin, current_merchant
from gateway.api.middleware import (
    REQUEST_ID_KEY,
    Handler,
    StorageDown,
    error_response,
    refuse_before_handler,
    request_id_of,
)
from gateway.api.params import Declared, Operation, declarations
from gateway.api.services import Services
from gateway.metrics import in_hop

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a request no resource matched


@dataclass(frozen=True, slots=True)
class _Route:
    """What a request to one resource needs, worked out on its first request."""

    label: str  # the canonical path: the metrics' route label
    declared: dict[str, Declared]  # method -> the operation's parameters


class Front:
    """The middleware (`front.middleware`) and what it holds between requests."""

    def __init__(
        self,
        operations: Iterable[Operation],
        max_body_bytes: int,
        on_storage_down: StorageDown | None = None,
    ) -> None:
        self._table = declarations(operations)
        self._max_body_bytes = max_body_bytes
        self._on_storage_down = on_storage_down
        self._routes: dict[AbstractResource | None, _Route] = {}
        self.services: Services | None = None  # set by the app's lifecycle at start-up

    def _route(self, resource: AbstractResource | None) -> _Route:
        route = self._routes.get(resource)
        if route is None:
            if resource is None:
                route = _Route(UNMATCHED, {})
            else:
                label = resource.canonical
                declared = {m: d for (m, path), d in self._table.items() if path == label}
                route = _Route(label, declared)
            self._routes[resource] = route
        return route

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        in_hop("api")
        started = time.perf_counter()
        services = self.services
        assert services is not None, "a request before start-up"
        request_id = request_id_of(request)
        request[REQUEST_ID_KEY] = request_id
        answer_headers: dict[str, str] = {}
        route = self._route(request.match_info.route.resource)
        method = request.method
        writer: str | None = None  # a merchant whose writing request the replica must see
        try:
            refuse_before_handler(request, self._max_body_bytes)
            path = request.path
            if path.startswith("/v1/"):
                settings = services.settings
                await authenticate_merchant(
                    request,
                    services.merchants,
                    services.admissions,
                    settings.signature_window_s,
                    settings.rate_limit_fail_open,
                    answer_headers,
                )
                if method not in READ_METHODS and services.reads.replica is not None:
                    writer = current_merchant(request).id
            elif path.startswith("/admin/"):
                check_admin(request, services.settings.admin_token)
            declared = route.declared.get("GET" if method == "HEAD" else method)
            if declared is not None:  # else no such route or method: the router's 404/405
                declared.check(request)
            response = await handler(request)
        except Exception as exc:
            response = await error_response(
                request, exc, request_id, answer_headers, self._on_storage_down
            )
        else:
            if answer_headers:
                response.headers.update(answer_headers)
        if writer is not None:
            # After the write has answered: this merchant's lists stay on the primary until
            # the replica has it (storage/replica.py; never raises).
            await services.reads.wrote(writer)
        response.headers["X-Request-Id"] = request_id
        services.metrics.request(
            method if method in KNOWN_METHODS else "other",  # bounded labels
            route.label,
            response.status,
            time.perf_counter() - started,
        )
        return response
