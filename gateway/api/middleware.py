"""Request ids, the one error renderer (SPEC 11 error body) and the body-size cap."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from gateway.api.jsonio import NUL_MESSAGE, json_response
from gateway.storage.pools import storage_down
from protocol.errors import ApiError, InvalidRequest, PayloadTooLarge
from protocol.ids import new_id

log = logging.getLogger("paygate.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
StorageDown = Callable[[web.Request, BaseException], Awaitable[None]]
REQUEST_ID_KEY = web.RequestKey("request_id", str)
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")

_HTTP_CODES = {
    400: "invalid_request",
    401: "invalid_signature",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_body(
    code: str, message: str, request_id: str, field: str | None = None
) -> dict[str, dict[str, str | None]]:
    return {"error": {"code": code, "message": message, "field": field, "request_id": request_id}}


def request_id_of(request: web.Request) -> str:
    return request_id_from(request.headers.get("X-Request-Id"))


def request_id_from(given: str | None) -> str:
    """The client's `X-Request-Id` when it is a sane one, else a new id."""
    return given if given and _REQUEST_ID_RE.match(given) else new_id("req")


def refuse_before_handler(request: web.Request, max_body_bytes: int) -> None:
    """The body cap and NUL in the path as sent (a query's NUL is refused naming its
    parameter, params.py), before anything reads the request."""
    if (request.content_length or 0) > max_body_bytes:
        raise PayloadTooLarge(f"body over {max_body_bytes} bytes")
    raw = request.raw_path.partition("?")[0]
    if "%00" in raw or "\x00" in raw:
        raise InvalidRequest(NUL_MESSAGE)  # PostgreSQL cannot store NUL


async def error_response(
    request: web.Request,
    exc: Exception,
    request_id: str,
    extra_headers: dict[str, str],
    on_storage_down: StorageDown | None = None,
) -> web.Response:
    """The SPEC 11 error answer for whatever a request raised; re-raises an `HTTPException`
    under 400 (a redirect is not an error)."""
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        code = _HTTP_CODES.get(exc.status, "invalid_request" if exc.status < 500 else "error")
        headers = {}
        if exc.status == 405 and "Allow" in exc.headers:
            headers["Allow"] = exc.headers["Allow"]
        return json_response(error_body(code, exc.reason or code, request_id), exc.status, headers)
    if isinstance(exc, ConnectionResetError):
        # The client went away mid-request (e.g. its timeout): nobody to answer, not a bug.
        log.info("client disconnected", extra={"request_id": request_id, "path": request.path})
        return json_response(error_body("invalid_request", "client disconnected", request_id), 400)
    if on_storage_down is not None and not isinstance(exc, ApiError) and storage_down(exc):
        await on_storage_down(request, exc)
    status, body, headers = error_answer(exc, request_id, request.method, request.path)
    return json_response(body, status, {**extra_headers, **headers})


def error_answer(
    exc: Exception, request_id: str, method: str, path: str
) -> tuple[int, dict[str, dict[str, str | None]], dict[str, str]]:
    """(status, SPEC 11 body, headers) for an `ApiError`, a store that is down (503: retry
    later, not our bug; SPEC 14) or anything else (500: our bug, logged)."""
    if isinstance(exc, ApiError):
        return exc.status, error_body(exc.code, exc.message, request_id, exc.field), exc.headers()
    where = {"request_id": request_id, "path": path, "method": method}
    if storage_down(exc):
        log.warning("storage unavailable", extra=where | {"error": repr(exc)},
                    exc_info=isinstance(exc, asyncpg.InternalClientError))  # fmt: skip
        body = error_body("service_unavailable", "storage unavailable; retry", request_id)
        return 503, body, {"Retry-After": "1"}
    log.error("unhandled error", extra=where, exc_info=exc)
    return 500, error_body("internal_error", "internal error", request_id), {}
