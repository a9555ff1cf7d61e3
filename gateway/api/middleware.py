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
REQUEST_ID_KEY = web.RequestKey("request_id", str)
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")
# Extra headers a handler or the auth layer wants on every response (rate-limit headers).
EXTRA_HEADERS_KEY = web.RequestKey("extra_headers", dict[str, str])

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


def make_error_middleware(
    max_body_bytes: int,
    on_storage_down: Callable[[web.Request, BaseException], Awaitable[None]] | None = None,
) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("X-Request-Id", "")
        request_id = given if _REQUEST_ID_RE.match(given) else new_id("req")
        request[REQUEST_ID_KEY] = request_id
        request[EXTRA_HEADERS_KEY] = {}  # set here, read by plain lookups below
        try:
            if (request.content_length or 0) > max_body_bytes:
                raise PayloadTooLarge(f"body over {max_body_bytes} bytes")
            # The path as sent (a query's NUL is refused naming its parameter, params.py).
            raw = request.raw_path.partition("?")[0]
            if "%00" in raw or "\x00" in raw:
                raise InvalidRequest(NUL_MESSAGE)  # PostgreSQL cannot store NUL
            response = await handler(request)
        except ApiError as exc:
            extra_headers: dict[str, str] = request[EXTRA_HEADERS_KEY]
            headers = {**extra_headers, **exc.headers()}
            response = json_response(
                error_body(exc.code, exc.message, request_id, exc.field), exc.status, headers
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = _HTTP_CODES.get(exc.status, "invalid_request" if exc.status < 500 else "error")
            headers = {}
            if exc.status == 405 and "Allow" in exc.headers:
                headers["Allow"] = exc.headers["Allow"]
            response = json_response(
                error_body(code, exc.reason or code, request_id), exc.status, headers
            )
        except ConnectionResetError:
            # The client went away mid-request (e.g. its timeout): nobody to answer, not a bug.
            log.info("client disconnected", extra={"request_id": request_id, "path": request.path})
            response = json_response(
                error_body("invalid_request", "client disconnected", request_id), 400
            )
        except Exception as exc:
            where = {"request_id": request_id, "path": request.path, "method": request.method}
            if storage_down(exc):
                # A store is down or restarting (SPEC 14): retry later, not our bug.
                log.warning("storage unavailable", extra=where | {"error": repr(exc)},
                            exc_info=isinstance(exc, asyncpg.InternalClientError))  # fmt: skip
                if on_storage_down is not None:
                    await on_storage_down(request, exc)
                response = json_response(
                    error_body("service_unavailable", "storage unavailable; retry", request_id),
                    503,
                    {"Retry-After": "1"},
                )
            else:
                log.exception("unhandled error", extra=where)
                response = json_response(
                    error_body("internal_error", "internal error", request_id), 500
                )
        else:
            extra = request[EXTRA_HEADERS_KEY]
            if extra:
                response.headers.update(extra)
        response.headers["X-Request-Id"] = request_id
        return response

    return errors
