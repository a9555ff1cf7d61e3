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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import orjson
from aiohttp import web

from gateway.api.auth import verify_signature
from gateway.api.jsonio import decode, json_response, read_body
from gateway.api.middleware import make_error_middleware
from gateway.server import run, serve_until_stopped
from loadtest.sink.state import (
    SIGNATURE_WINDOW_S,
    Answer,
    Behaviour,
    Event,
    MerchantInbox,
    Registration,
    SinkState,
)
from protocol.errors import ApiError, InvalidRequest, NotFound, ServiceUnavailable, Unauthorized

log = logging.getLogger("paygate.webhook_sink")

MAX_BODY_BYTES: Final = 1024 * 1024
# How often a held request checks whether its client has hung up.
HOLD_POLL_S: Final = 0.1
MERCHANT_ID_RE: Final = re.compile(r"^[\x21-\x7e]{1,64}$")

# The answer to a delivery the merchant takes (nearly every one under load): made once.
OK_BODY: Final = orjson.dumps({"ok": True})

STATE_KEY = web.AppKey("sink_state", SinkState)
CLOSING_KEY = web.AppKey("sink_closing", asyncio.Event)

routes = web.RouteTableDef()


def build_sink_app(secrets: Mapping[str, str] | None = None) -> web.Application:
    """The sink, knowing `secrets` (merchant id -> secret); more via `PUT /merchants/{id}`."""
    app = web.Application(
        middlewares=[make_error_middleware(MAX_BODY_BYTES)], client_max_size=MAX_BODY_BYTES
    )
    state = SinkState()
    for merchant_id, secret in (secrets or {}).items():
        if not MERCHANT_ID_RE.match(merchant_id) or not secret:
            raise ValueError(f"bad merchant id or empty secret for {merchant_id!r}")
        state.register(merchant_id, secret)
    closing = asyncio.Event()
    app[STATE_KEY] = state
    app[CLOSING_KEY] = closing

    async def on_shutdown(app: web.Application) -> None:
        closing.set()  # release held requests before the server waits for handlers

    app.on_shutdown.append(on_shutdown)
    app.add_routes(routes)
    return app


async def serve_sink(host: str, port: int, secrets: Mapping[str, str] | None = None) -> None:
    """Run the sink until SIGINT/SIGTERM (or the supervising parent is gone)."""
    await serve_until_stopped(build_sink_app(secrets), host, port, name="webhook-sink")


def _merchant_id(request: web.Request) -> str:
    merchant_id = request.match_info["merchant_id"]
    if not MERCHANT_ID_RE.match(merchant_id):
        raise InvalidRequest("merchant id must be 1-64 printable ASCII characters")
    return merchant_id


def _known_inbox(request: web.Request) -> MerchantInbox:
    merchant_id = _merchant_id(request)
    inbox = request.app[STATE_KEY].inboxes.get(merchant_id)
    if inbox is None:
        raise NotFound(f"no merchant {merchant_id!r} at this sink", code="unknown_merchant")
    return inbox


@routes.post("/notify/{merchant_id}")
async def notify(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    merchant_id = request.match_info["merchant_id"]
    inbox = state.inboxes.get(merchant_id)
    if inbox is None:
        state.unknown_merchant_rejected += 1
        raise Unauthorized(f"no merchant {merchant_id!r} registered at this sink")

    async def secret_for(key: str) -> str | None:
        # Only this endpoint's merchant may sign for it.
        return inbox.secret if key == merchant_id else None

    try:
        key, nonce, _ = await verify_signature(request, secret_for, SIGNATURE_WINDOW_S)
        if not state.nonces.first_use(key, nonce):
            raise Unauthorized("nonce already used", code="replayed_request")
        event = decode(await read_body(request), Event)
    except ApiError as exc:
        inbox.reject(exc.code)
        log.info("notification rejected", extra={"merchant_id": merchant_id, "code": exc.code})
        raise
    _, answer = inbox.accept(event)
    if answer.status == 200 and answer.delay_ms == 0:
        return web.Response(body=OK_BODY, content_type="application/json")
    return await _answer(request, answer)


async def _answer(request: web.Request, answer: Answer) -> web.Response:
    closing = request.app[CLOSING_KEY]
    if answer.status is None:
        await _hold(request, closing, None)
        raise ServiceUnavailable("held until the client left or the sink stopped", code="hung")
    if answer.delay_ms > 0 and not await _hold(request, closing, answer.delay_ms / 1000):
        raise ServiceUnavailable("the sink stopped during the delay", code="shutting_down")
    if answer.status == 200:
        return web.Response(body=OK_BODY, content_type="application/json")
    return json_response({"ok": False, "status": answer.status}, answer.status)


async def _hold(request: web.Request, closing: asyncio.Event, delay_s: float | None) -> bool:
    """Wait `delay_s` (None: for ever); True when it ran out, False when cut short because the
    sink is shutting down or the client has hung up (so nothing waits on a dead connection)."""
    deadline_s = None if delay_s is None else time.monotonic() + delay_s
    while not closing.is_set():
        transport = request.transport
        if transport is None or transport.is_closing():
            return False
        slice_s = HOLD_POLL_S
        if deadline_s is not None:
            left_s = deadline_s - time.monotonic()
            if left_s <= 0:
                return True
            slice_s = min(slice_s, left_s)
        try:
            async with asyncio.timeout(slice_s):
                await closing.wait()
        except TimeoutError:
            pass
    return False


@routes.put("/merchants/{merchant_id}")
async def put_merchant(request: web.Request) -> web.Response:
    """Register a merchant's secret (or rotate it)."""
    merchant_id = _merchant_id(request)
    registration = decode(await read_body(request), Registration)
    inbox = request.app[STATE_KEY].register(merchant_id, registration.secret)
    return json_response({"id": merchant_id, "behaviour": inbox.behaviour_json()})


@routes.get("/merchants/{merchant_id}/behaviour")
async def get_behaviour(request: web.Request) -> web.Response:
    return json_response(_known_inbox(request).behaviour_json())


@routes.put("/merchants/{merchant_id}/behaviour")
async def put_behaviour(request: web.Request) -> web.Response:
    """Replace the behaviour (omitted fields take their defaults); applies to the next arrival."""
    merchant_id = _merchant_id(request)
    behaviour = decode(await read_body(request), Behaviour)
    inbox = request.app[STATE_KEY].inbox(merchant_id)
    inbox.set_behaviour(behaviour)
    return json_response(inbox.behaviour_json())


@routes.get("/merchants/{merchant_id}/received")
async def get_received(request: web.Request) -> web.Response:
    return json_response(_known_inbox(request).received_json())


@routes.get("/stats")
async def stats(request: web.Request) -> web.Response:
    """Every merchant's figures; `?totals=1` only the sums (cheap under load)."""
    state = request.app[STATE_KEY]
    if request.query.get("totals") == "1":
        return json_response(state.totals_json())
    return json_response(state.stats_json())


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "service": "webhook-sink"})


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
