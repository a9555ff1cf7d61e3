"""`POST /v1/payouts` and the signed no-op `POST /v1/noop` on the lean HTTP server
(gateway/http1_server.py), ahead of aiohttp.

A merchant's one request per payout is the gateway's hottest, and the no-op is the bench's
bare ceiling for the same signed path (so both are measured on the same front). Here each
meets, in this order, what front.py's middleware and the routes do for it: the request id,
the signature, the nonce and the rate limit (auth.authenticate_signed), the JSON body and the
accept (routes_payouts.accept_payout), the SPEC 11 error body for whatever was raised
(middleware.error_answer), the rate-limit headers and `X-Request-Id` on every answer, the
replica's read-your-writes mark, the request counted by method, route and status. It does so
without aiohttp's request, response, router and middleware objects. Any other request, or one
the lean server does not read itself (a query string, a chunked body, `Expect`), is handed
with its connection to aiohttp (`gateway/server.py` LeanSite), where the same code answers it
the usual way.

Registered on the app under LEAN_FRONT_KEY when `Settings.lean_front` is on (the default;
`PAYGATE_LEAN_FRONT=0` serves everything through aiohttp, for comparison).
"""

from __future__ import annotations

import time
from typing import Final

import orjson

from gateway.api.auth import authenticate_signed
from gateway.api.front import UNMATCHED, Front
from gateway.api.jsonio import decode_typed
from gateway.api.middleware import error_answer, request_id_from
from gateway.api.routes_payouts import accept_payout
from gateway.contract.requests import PayoutRequest
from gateway.http1_server import Request, Response
from gateway.metrics import in_hop
from gateway.storage.pools import postgres_down

PAYOUTS: Final = "/v1/payouts"
NOOP: Final = "/v1/noop"
ROUTES: Final = frozenset({PAYOUTS, NOOP})
OK_BODY: Final = orjson.dumps({"ok": True})


class LeanRoutes:
    """The lean server's `wants`, `handle` and `error_answer` for the gateway."""

    def __init__(self, front: Front, max_body_bytes: int) -> None:
        self._front = front
        self.max_body_bytes = max_body_bytes

    @staticmethod
    def wants(method: str, target: str) -> bool:
        return method == "POST" and target in ROUTES

    async def handle(self, request: Request) -> Response:
        in_hop("api")
        started = time.perf_counter()
        services = self._front.services
        assert services is not None, "a request before start-up"
        headers = request.headers
        route = request.target
        request_id = request_id_from(headers.get("x-request-id"))
        answer_headers: dict[str, str] = {}
        writer: str | None = None  # a merchant whose write the replica must see
        try:
            settings = services.settings
            merchant = await authenticate_signed(
                request.header, "POST", route, request.body,
                services.merchants, services.admissions, settings.signature_window_s,
                settings.rate_limit_fail_open, answer_headers,
            )  # fmt: skip
            if services.reads.replica is not None:
                writer = merchant.id
            if route == NOOP:
                status, body = 200, OK_BODY
            else:
                content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
                req = decode_typed(request.body, content_type, PayoutRequest)
                result = await accept_payout(services, merchant.id, req)
                if result.error is not None:
                    raise result.error
                status, body = result.http_status, orjson.dumps(result.payout)
        except Exception as exc:
            if postgres_down(exc):
                # None of the pool's connections is to be trusted (app.replace_connections).
                await services.pool.expire_connections()
            status, error, extra = error_answer(exc, request_id, "POST", route)
            body = orjson.dumps(error)
            answer_headers.update(extra)
        if writer is not None:
            await services.reads.wrote(writer)  # never raises
        answer_headers["X-Request-Id"] = request_id
        services.metrics.request("POST", route, status, time.perf_counter() - started)
        return Response(status, body, tuple(answer_headers.items()))

    def error_answer(self, request: Request | None, exc: Exception) -> Response:
        """What the lean server itself refused (a body over the cap) or `handle` could not
        (it catches everything it raises; this is the server's last resort)."""
        given = None if request is None else request.headers.get("x-request-id")
        request_id = request_id_from(given)
        route = UNMATCHED if request is None else request.target  # None: its head was unread
        status, error, extra = error_answer(exc, request_id, "POST", route)
        services = self._front.services
        if services is not None:
            services.metrics.request("POST", route, status, 0.0)
        headers = (*extra.items(), ("X-Request-Id", request_id))
        return Response(status, orjson.dumps(error), headers)
