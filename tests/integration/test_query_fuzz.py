"""Every parameter of every GET that `/openapi.json` lists, sent values no endpoint can use
(issue 22): Unicode digits, huge and negative numbers, an empty value, the parameter twice,
NUL bytes, invalid UTF-8 and 10 KB. No answer is a 5xx, every 4xx carries the SPEC 11 error
body, and a query parameter that is refused is `400 invalid_request` naming it in `field`.
The table is read from the live document, so a route added to it is covered at once; a
route that reads a parameter the document does not list is caught by the unknown-name row."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from gateway.client import ApiResponse, _BaseClient
from tests.harness import LiveGateway

# label -> the value exactly as it goes on the wire (already percent-encoded)
BAD_VALUES: dict[str, str] = {
    "superscript two": quote("²"),
    "arabic-indic three": quote("٣"),
    "fullwidth twelve": quote("１２"),
    "past int64": "99999999999999999999",
    "2**63": str(2**63),
    "negative": "-1",
    "past -int64": "-99999999999999999999",
    "empty": "",
    "NUL": "%00",
    "NUL inside": "1%002",
    "not UTF-8": "%FF%FE",
    "10 KB": "a" * 10_240,
}
# What no parameter of any kind can use: each is a 400 naming the parameter.
REFUSED_BY_EVERY_PARAM = ("NUL", "NUL inside", "not UTF-8", "10 KB")
SPEC_ERROR_KEYS = {"code", "message", "field", "request_id"}
Expect = Literal["accept", "refuse", "either"]


@dataclass(frozen=True)
class Get:
    path: str  # the template, e.g. /v1/payouts/{payout_id}
    query: dict[str, dict[str, Any]]  # name -> schema
    path_params: tuple[str, ...]

    def filled(self, **values: str) -> str:
        path = self.path
        for name in self.path_params:
            path = path.replace("{" + name + "}", values.get(name, "nobody_1"))
        return path


def gets(doc: dict[str, Any]) -> Iterator[Get]:
    for path, ops in doc["paths"].items():
        if "get" not in ops:
            continue
        params = ops["get"].get("parameters", [])
        yield Get(
            path,
            {p["name"]: p["schema"] for p in params if p["in"] == "query"},
            tuple(p["name"] for p in params if p["in"] == "path"),
        )


def usable(schema: dict[str, Any]) -> str:
    """A value the parameter's schema allows (to show it is accepted, and to repeat it)."""
    if "enum" in schema:
        return str(schema["enum"][0])
    if schema.get("type") == "integer":
        return str(max(schema.get("minimum", 1), 1))
    return next(v for v in ("a1", "102") if re.fullmatch(schema.get("pattern", ".*"), v))


def problems(resp: ApiResponse, param: str | None, expect: Expect) -> list[str]:
    """What is wrong with this answer (empty when it is right)."""
    if resp.status >= 500:
        return [f"{resp.status} {resp.body[:120]!r}"]
    if resp.status < 400:
        return ["accepted, expected 400"] if expect == "refuse" else []
    if expect == "accept":
        return [f"refused a usable value: {resp.status} {resp.body[:200]!r}"]
    try:
        error = resp.json()["error"]
    except Exception:
        return [f"{resp.status} without the SPEC 11 error body: {resp.body[:120]!r}"]
    found: list[str] = []
    if set(error) != SPEC_ERROR_KEYS or not error["code"] or not error["message"]:
        found.append(f"{resp.status} error body {error}")
    elif error["request_id"] != resp.headers.get("X-Request-Id"):
        found.append("request_id differs from X-Request-Id")
    named = (resp.status, error.get("code"), error.get("field")) == (400, "invalid_request", param)
    if param is not None and not named and (expect == "refuse" or resp.status == 400):
        found.append(f"{resp.status} {error.get('code')} field={error.get('field')!r}")
    return found


async def test_bad_query_and_path_values_never_get_a_5xx_and_name_the_parameter(
    gateway: LiveGateway,
) -> None:
    _, merchant = await gateway.merchant(100_000)

    def client_for(path: str) -> _BaseClient:
        return merchant if path.startswith("/v1/") else gateway.admin

    doc_resp = await gateway.admin.get("/openapi.json")
    assert doc_resp.status == 200
    table = list(gets(doc_resp.json()))
    assert len(table) >= 25, [g.path for g in table]
    assert sum(len(g.query) for g in table) >= 30

    failures: list[str] = []
    sent = 0

    async def check(get: Get, path: str, param: str | None, expect: Expect) -> None:
        nonlocal sent
        resp = await client_for(get.path).get(path)
        sent += 1
        failures.extend(f"GET {path[:90]}: {p}" for p in problems(resp, param, expect))

    for get in table:
        base = get.filled()
        # A name the document does not list is refused: the document lists every name read.
        await check(get, f"{base}?zz_unlisted=1", "zz_unlisted", "refuse")
        for name, schema in get.query.items():
            good = usable(schema)
            await check(get, f"{base}?{name}={good}", None, "accept")
            await check(get, f"{base}?{name}={good}&{name}={good}", name, "refuse")
            for label, value in BAD_VALUES.items():
                refuse = label in REFUSED_BY_EVERY_PARAM or schema.get("type") == "integer"
                await check(get, f"{base}?{name}={value}", name, "refuse" if refuse else "either")
        for name in get.path_params:
            for value in BAD_VALUES.values():
                await check(get, get.filled(**{name: value}), None, "either")

    print(f"query fuzz: {sent} requests over {len(table)} GET operations")
    assert not failures, f"{len(failures)} of {sent} answers wrong:\n" + "\n".join(failures)
