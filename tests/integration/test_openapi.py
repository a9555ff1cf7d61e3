"""`GET /openapi.json` (SPEC 11): a valid OpenAPI 3.1 document naming every route of the app,
whose request examples decode with the structs that decode real requests."""

from __future__ import annotations

from typing import Any

import msgspec
from openapi_spec_validator import validate

from gateway.api.app import build_app
from gateway.api.openapi import OPERATIONS
from gateway.settings import Settings
from tests.harness import LiveGateway


async def test_the_document_is_served_valid_and_names_every_route(
    gateway: LiveGateway, settings: Settings
) -> None:
    resp = await gateway.admin.get("/openapi.json")
    assert resp.status == 200
    doc: dict[str, Any] = resp.json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema

    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in build_app(settings).router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        # The operator console's HTML pages (SPEC 17) are not the JSON API.
        and not route.resource.canonical.startswith("/console/")
    }
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert routes - documented == set(), "routes missing from /openapi.json"
    assert documented - routes == set(), "documented operations the app does not serve"

    error_ref = "#/components/schemas/ErrorBody"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, answer in op["responses"].items():
                if int(status) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": error_ref}, (method, path, status)
    merchant = doc["paths"]["/v1/payouts"]["post"]["security"][0]
    assert set(merchant) == {"key", "timestamp", "nonce", "signature"}


def test_request_examples_decode_with_the_request_structs() -> None:
    with_examples = [op for op in OPERATIONS if op.example is not None]
    assert len(with_examples) >= 4
    for op in with_examples:
        assert op.body is not None
        msgspec.json.decode(msgspec.json.encode(op.example), type=op.body)
