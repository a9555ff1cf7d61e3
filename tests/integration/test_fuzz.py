"""Fuzzing from `/openapi.json` (SPEC 14, issue 13): schemathesis generates requests for every
merchant operation, valid and invalid ones, each signed with a test merchant's secret and sent
to a live gateway in front of the real bank simulator. No answer is a 5xx; every 4xx carries
the SPEC 11 error body; every 2xx decodes as the answer the document promises.

`PAYGATE_FUZZ_CASES` sets the examples per operation and mode (default 50: 100 cases for each
operation, about 2,900 in all; `make fuzz` runs 300)."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import aiohttp
import msgspec
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from yarl import URL

from gateway.api import answers
from gateway.api.openapi import OPERATIONS, build_document
from gateway.settings import Settings
from protocol.signing import sign_request
from tests.banks import bank_world

CASES = int(os.environ.get("PAYGATE_FUZZ_CASES", "50"))
ANSWERS = {(op.method.upper(), op.path): op.ok for op in OPERATIONS}
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def generate(operation: Any, mode: GenerationMode) -> list[Any]:
    """Up to CASES cases for one operation (derandomized: the same cases every run)."""
    cases: list[Any] = []

    @given(operation.as_strategy(generation_mode=mode))
    @settings(max_examples=CASES, database=None, deadline=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    def collect(case: Any) -> None:
        cases.append(case)

    collect()
    return cases


def encoded(case: Any) -> tuple[str, bytes]:
    """The path with its query, exactly as sent and signed, and the body's bytes."""
    path = str(case.formatted_path)
    if case.query:
        path += "?" + urlencode(case.query, doseq=True)
    body = case.body
    if body is None or type(body).__name__ == "NotSet":
        return path, b""
    if isinstance(body, bytes):  # a negative case's raw, not-JSON payload
        return path, body
    return path, json.dumps(body).encode()


async def test_fuzzed_merchant_requests_never_get_a_5xx(settings: Settings) -> None:
    schema = schemathesis.openapi.from_dict(build_document())
    operations = [
        result.ok() for result in schema.get_all_operations() if result.ok().path.startswith("/v1/")
    ]
    assert {(op.method.upper(), op.path) for op in operations} == {
        key for key in ANSWERS if key[1].startswith("/v1/")
    }
    statuses: Counter[int] = Counter()
    by_operation: Counter[str] = Counter()
    async with bank_world(settings) as world:
        merchant, _ = await world.gw.merchant(10**12)
        async with aiohttp.ClientSession() as http:
            for operation in operations:
                for mode in MODES:
                    for case in generate(operation, mode):
                        path, body = encoded(case)
                        method = operation.method.upper()
                        headers = sign_request(merchant["id"], merchant["secret"], method,
                                               path, body)  # fmt: skip
                        if body:
                            headers["Content-Type"] = "application/json"
                        url = URL(world.gw.url + path, encoded=True)
                        async with http.request(method, url, data=body, headers=headers) as resp:
                            raw = await resp.read()
                            status = resp.status
                            request_id = resp.headers.get("X-Request-Id")
                        statuses[status] += 1
                        by_operation[f"{method} {operation.path}"] += 1
                        where = (method, path, body[:300], status, raw[:300])
                        assert status < 500, where
                        if status >= 400:
                            error = msgspec.json.decode(raw, type=answers.ErrorBody).error
                            assert error.request_id == request_id, where
                            assert error.code and error.message, where
                        else:
                            shape = ANSWERS[(method, operation.path)].get(status, dict)
                            msgspec.json.decode(raw, type=shape or dict)
    total = sum(statuses.values())
    print(f"fuzz: {total} cases; status mix {dict(sorted(statuses.items()))}; "
          f"per operation {dict(by_operation)}")  # fmt: skip
    # Every operation got its cases in both modes (hypothesis stops early on a small space).
    assert min(by_operation.values()) >= len(MODES) * CASES, by_operation
    assert statuses[200] + statuses[201] > 0 and any(400 <= s < 500 for s in statuses)
