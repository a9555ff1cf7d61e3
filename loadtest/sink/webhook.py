"""The demo merchants' notification endpoints (SPEC 10): verifies each signed notification,
records it, and answers ok, with an error, slowly or never, as the test or demo asks.

Signed by the gateway:  POST /notify/{merchant_id}
Control (unsigned):     PUT /merchants/{merchant_id}              {"secret": "..."}
                        GET|PUT /merchants/{merchant_id}/behaviour
                        GET /merchants/{merchant_id}/received
                        GET /stats, GET /healthz
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import orjson

from gateway.api.auth import check_signature, signed_headers
from gateway.api.jsonio import decode
from gateway.api.middleware import error_body, request_id_from
from gateway.http1_server import Http1Server, Request, Response
from gateway.server import run, settle_heap, stop_event
from loadtest.sink.state import (
    SIGNATURE_WINDOW_S,
    Answer,
    Behaviour,
    Event,
    MerchantInbox,
    Registration,
    SinkState,
)
from protocol.errors import (
    ApiError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)

log = logging.getLogger("paygate.webhook_sink")

MAX_BODY_BYTES: Final = 1024 * 1024
# How often a held request checks whether its client has hung up.
HOLD_POLL_S: Final = 0.1
MERCHANT_ID_RE: Final = re.compile(r"^[\x21-\x7e]{1,64}$")

# The answer to a delivery the merchant takes (nearly every one under load): made once.
OK: Final = Response(200, orjson.dumps({"ok": True}))

Answered = Response | Awaitable[Response]


def json_answer(data: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(data))


class Sink:
    """The sink's routes over the lean HTTP server (gateway/http1_server.py): a verified
    notification the merchant takes is answered synchronously, with no task per request."""

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        self.state = SinkState()
        for merchant_id, secret in (secrets or {}).items():
            if not MERCHANT_ID_RE.match(merchant_id) or not secret:
                raise ValueError(f"bad merchant id or empty secret for {merchant_id!r}")
            self.state.register(merchant_id, secret)
        self.closing = asyncio.Event()  # releases held requests at shutdown
        self.server = Http1Server(self.handle, self.error_answer, max_body_bytes=MAX_BODY_BYTES)

    async def start(self, host: str, port: int) -> int:
        return await self.server.start(host, port)

    async def close(self) -> None:
        self.closing.set()  # release held requests before the server waits for handlers
        await self.server.close()

    def handle(self, request: Request) -> Answered:
        parts = request.path.split("/")
        match parts[1:]:
            case ["notify", merchant_id]:
                return self._route(request, {"POST": self.notify}, unquote(merchant_id))
            case ["merchants", merchant_id]:
                return self._route(request, {"PUT": self.put_merchant}, unquote(merchant_id))
            case ["merchants", merchant_id, "behaviour"]:
                methods = {"GET": self.get_behaviour, "PUT": self.put_behaviour}
                return self._route(request, methods, unquote(merchant_id))
            case ["merchants", merchant_id, "received"]:
                return self._route(request, {"GET": self.get_received}, unquote(merchant_id))
            case ["stats"]:
                return self._route(request, {"GET": self.stats}, "")
            case ["healthz"]:
                return self._route(request, {"GET": self.healthz}, "")
        raise NotFound("Not Found")

    @staticmethod
    def _route(request: Request, methods: Mapping[str, Callable[[Request, str], Answered]],
               merchant_id: str) -> Answered:  # fmt: skip
        method = methods.get("GET" if request.method == "HEAD" else request.method)
        if method is None:
            raise _NotAllowed(", ".join(methods))
        return method(request, merchant_id)

    def error_answer(self, request: Request | None, exc: Exception) -> Response:
        """The SPEC 11 error body, naming a request id (the client's when it sent a sane one)."""
        given = request.headers.get("x-request-id") if request is not None else None
        request_id = request_id_from(given)
        headers = [("X-Request-Id", request_id)]
        if isinstance(exc, ApiError):
            headers += exc.headers().items()
            if isinstance(exc, _NotAllowed):
                headers.append(("Allow", exc.allow))
            body = error_body(exc.code, exc.message, request_id, exc.field)
            return Response(exc.status, orjson.dumps(body), tuple(headers))
        where = {"request_id": request_id}
        if request is not None:
            where |= {"path": request.path, "method": request.method}
        log.error("unhandled error", extra=where, exc_info=exc)
        body = error_body("internal_error", "internal error", request_id)
        return Response(500, orjson.dumps(body), tuple(headers))

    def notify(self, request: Request, merchant_id: str) -> Answered:
        inbox = self.state.inboxes.get(merchant_id)
        if inbox is None:
            self.state.unknown_merchant_rejected += 1
            raise Unauthorized(f"no merchant {merchant_id!r} registered at this sink")
        try:
            signed = signed_headers(request.header, SIGNATURE_WINDOW_S)
            # Only this endpoint's merchant may sign for it.
            secret = inbox.secret if signed.key == merchant_id else None
            check_signature(signed, secret, request.method, request.target, request.body)
            if not self.state.nonces.first_use(signed.key, signed.nonce):
                raise Unauthorized("nonce already used", code="replayed_request")
            event = decode(request.body, Event)
        except ApiError as exc:
            inbox.reject(exc.code)
            log.info("notification rejected", extra={"merchant_id": merchant_id, "code": exc.code})
            raise
        _, answer = inbox.accept(event)
        if answer.status == 200 and answer.delay_ms == 0:
            return OK
        return self._answer(request, answer)

    async def _answer(self, request: Request, answer: Answer) -> Response:
        if answer.status is None:
            await self._hold(request, None)
            raise ServiceUnavailable("held until the client left or the sink stopped", code="hung")
        if answer.delay_ms > 0 and not await self._hold(request, answer.delay_ms / 1000):
            raise ServiceUnavailable("the sink stopped during the delay", code="shutting_down")
        if answer.status == 200:
            return OK
        return json_answer({"ok": False, "status": answer.status}, answer.status)

    async def _hold(self, request: Request, delay_s: float | None) -> bool:
        """Wait `delay_s` (None: for ever); True when it ran out, False when cut short because
        the sink is shutting down or the client has hung up (so nothing waits on a dead
        connection)."""
        deadline_s = None if delay_s is None else time.monotonic() + delay_s
        while not self.closing.is_set():
            if request.gone():
                return False
            slice_s = HOLD_POLL_S
            if deadline_s is not None:
                left_s = deadline_s - time.monotonic()
                if left_s <= 0:
                    return True
                slice_s = min(slice_s, left_s)
            try:
                async with asyncio.timeout(slice_s):
                    await self.closing.wait()
            except TimeoutError:
                pass
        return False

    def put_merchant(self, request: Request, merchant_id: str) -> Response:
        """Register a merchant's secret (or rotate it)."""
        _check_merchant_id(merchant_id)
        registration = decode(request.body, Registration)
        inbox = self.state.register(merchant_id, registration.secret)
        return json_answer({"id": merchant_id, "behaviour": inbox.behaviour_json()})

    def get_behaviour(self, request: Request, merchant_id: str) -> Response:
        return json_answer(self._known_inbox(merchant_id).behaviour_json())

    def put_behaviour(self, request: Request, merchant_id: str) -> Response:
        """Replace the behaviour (omitted fields take their defaults); applies to the next
        arrival."""
        _check_merchant_id(merchant_id)
        behaviour = decode(request.body, Behaviour)
        inbox = self.state.inbox(merchant_id)
        inbox.set_behaviour(behaviour)
        return json_answer(inbox.behaviour_json())

    def get_received(self, request: Request, merchant_id: str) -> Response:
        return json_answer(self._known_inbox(merchant_id).received_json())

    def stats(self, request: Request, merchant_id: str) -> Response:
        """Every merchant's figures; `?totals=1` only the sums (cheap under load)."""
        if request.query.get("totals") == "1":
            return json_answer(self.state.totals_json())
        return json_answer(self.state.stats_json())

    def healthz(self, request: Request, merchant_id: str) -> Response:
        return json_answer({"status": "ok", "service": "webhook-sink"})

    def _known_inbox(self, merchant_id: str) -> MerchantInbox:
        _check_merchant_id(merchant_id)
        inbox = self.state.inboxes.get(merchant_id)
        if inbox is None:
            raise NotFound(f"no merchant {merchant_id!r} at this sink", code="unknown_merchant")
        return inbox


class _NotAllowed(MethodNotAllowed):
    def __init__(self, allow: str) -> None:
        super().__init__("Method Not Allowed")
        self.allow = allow


def _check_merchant_id(merchant_id: str) -> None:
    if not MERCHANT_ID_RE.match(merchant_id):
        raise InvalidRequest("merchant id must be 1-64 printable ASCII characters")


async def start_sink(
    host: str, port: int, secrets: Mapping[str, str] | None = None
) -> tuple[Sink, int]:
    """A listening sink knowing `secrets` (merchant id -> secret; more via
    `PUT /merchants/{id}`) and its port; `await sink.close()` stops it."""
    sink = Sink(secrets)
    return sink, await sink.start(host, port)


async def serve_sink(host: str, port: int, secrets: Mapping[str, str] | None = None) -> None:
    """Run the sink until SIGINT/SIGTERM (or the supervising parent is gone)."""
    stop = stop_event()
    sink, bound = await start_sink(host, port, secrets)
    settle_heap()
    log.info("webhook-sink listening", extra={"url": f"http://{host}:{bound}"})
    try:
        await stop.wait()
        log.info("webhook-sink stopping")
    finally:
        await sink.close()
    log.info("webhook-sink stopped")


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m loadtest.sink.webhook --port 8091 [--secrets-file FILE]`."""
    from gateway import logs

    parser = argparse.ArgumentParser(prog="webhook-sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument(
        "--secrets-file", type=Path, help="JSON object: merchant id -> secret (else PUT them)"
    )
    parser.add_argument("--log-format", choices=("json", "text"), default="json")
    args = parser.parse_args(argv)
    logs.configure(args.log_format)
    secrets: dict[str, str] = {}
    if args.secrets_file is not None:
        loaded = orjson.loads(args.secrets_file.read_bytes())
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            parser.error("--secrets-file must hold a JSON object of strings")
        secrets = loaded
    run(serve_sink(args.host, args.port, secrets))


if __name__ == "__main__":
    main()
