"""`GET /openapi.json` (SPEC 11): OpenAPI 3.1, generated from the msgspec structs that decode
the requests (`gateway/contract/requests.py`) and describe the answers (`answers.py`), and
from the operations each route module declares beside its handlers (`OPERATIONS`), gathered
here in one fixed order (a test holds the table and the app's routes together).
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

import msgspec
import orjson
from aiohttp import web

from gateway.api import (
    answers,
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
from gateway.api.operations import Auth, Op

REF: Final = "#/components/schemas/{name}"
routes = web.RouteTableDef()

OPERATIONS: Final[tuple[Op, ...]] = (
    # Merchants (signed, SPEC 11).
    *routes_payouts.OPERATIONS,
    *routes_b2b.OPERATIONS,
    *routes_merchant.OPERATIONS,
    *routes_events.OPERATIONS,
    # Accounts (三户, SPEC 16).
    *routes_accounts.OPERATIONS,
    *routes_transfers.OPERATIONS,
    *routes_collections.OPERATIONS,
    *routes_noop.OPERATIONS,
    # Banks (signed with the bank's key).
    *routes_callbacks.OPERATIONS,
    # Operators (bearer token).
    *routes_admin.OPERATIONS,
    *routes_reviews.OPERATIONS,
    *routes_channels.OPERATIONS,
    *routes_clock.OPERATIONS,
    *routes_risk.OPERATIONS,
    *routes_recon.OPERATIONS,
    # Service.
    *routes_service.OPERATIONS,
    Op("get", "/openapi.json", "This document", "none", {200: None}),
)

# What any operation of a kind may answer besides its own errors.
_COMMON_ERRORS: Final[dict[Auth, tuple[int, ...]]] = {
    "merchant": (400, 401, 403, 413, 429, 503),
    "admin": (400, 401, 413),
    "bank": (400, 401, 413),
    "none": (),
}

SIGNING: Final = (
    "paygate-hmac-v1: X-Paygate-Signature = 'v1=' + hex HMAC-SHA256(secret, timestamp + '\\n' "
    "+ nonce + '\\n' + METHOD + '\\n' + path_with_query + '\\n' + hex(sha256(body))); "
    "timestamps older than 300 s or replayed nonces are refused (401)."
)
_SIGNED: Final = ("X-Paygate-Key", "X-Paygate-Timestamp", "X-Paygate-Nonce", "X-Paygate-Signature")


def _security_schemes() -> dict[str, Any]:
    schemes: dict[str, Any] = {
        header.removeprefix("X-Paygate-").lower(): {
            "type": "apiKey", "in": "header", "name": header, "description": SIGNING,
        }
        for header in _SIGNED
    }  # fmt: skip
    schemes["admin"] = {"type": "http", "scheme": "bearer"}
    return schemes


def _responses(op: Op, refs: dict[type, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, shape in op.ok.items():
        schema = refs[shape] if shape is not None else {"type": "object"}
        media = "application/json"
        if op.path == "/metrics":
            media, schema = "text/plain", {"type": "string"}
        out[str(status)] = {"description": "OK", "content": {media: {"schema": schema}}}
    error = {"content": {"application/json": {"schema": refs[answers.ErrorBody]}}}
    for status in sorted(set(_COMMON_ERRORS[op.auth]) | set(op.errors)):
        out[str(status)] = {"description": "error (SPEC 11 error body)"} | error
    return out


def _operation(op: Op, refs: dict[type, dict[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('{', '')}"
        .replace("}", "").replace("-", "_").replace(".", "_"),
        "summary": op.summary,
        "tags": [op.path.split("/")[1]],
        "responses": _responses(op, refs),
    }  # fmt: skip
    if op.params:
        doc["parameters"] = [
            {"name": p.name, "in": p.where, "required": p.where == "path", "schema": p.schema}
            | ({"description": p.description} if p.description else {})
            for p in op.params
        ]
    if op.body is not None:
        content: dict[str, Any] = {"schema": refs[op.body]}
        if op.example is not None:
            content["example"] = op.example
        doc["requestBody"] = {"required": True, "content": {"application/json": content}}
    if op.auth in ("merchant", "bank"):
        doc["security"] = [{h.removeprefix("X-Paygate-").lower(): [] for h in _SIGNED}]
    elif op.auth == "admin":
        doc["security"] = [{"admin": []}]
    else:
        doc["security"] = []
    return doc


def build_document() -> dict[str, Any]:
    shapes: list[type] = [answers.ErrorBody]
    for op in OPERATIONS:
        shapes += [s for s in op.ok.values() if s is not None]
        if op.body is not None:
            shapes.append(op.body)
    unique = list(dict.fromkeys(shapes))
    schema_list, components = msgspec.json.schema_components(unique, ref_template=REF)
    refs = dict(zip(unique, schema_list, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Paygate",
            "version": "1",
            "description": "Payouts (代付), B2B funding and reconciliation in front of "
            "simulated banks. Amounts are integer fen. " + SIGNING,
        },
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": _security_schemes()},
    }


@cache
def document_bytes() -> bytes:
    return orjson.dumps(build_document())


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=document_bytes(), content_type="application/json")
