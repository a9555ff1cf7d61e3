"""Unfreezes (解冻, SPEC 16) are idempotent by `merchant_order_id`: a client whose answer was
lost retries, and the retry releases nothing more. Real PostgreSQL and Redis, over HTTP; the
ledger check passes after every test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.harness import LiveGateway
from tests.integration.test_accounts import (
    account,
    figures,
    freeze,
    funded_user,
    ok,
    refused,
    unfreeze,
)


@pytest.fixture
async def gw(gateway: LiveGateway) -> AsyncIterator[LiveGateway]:
    yield gateway
    check = await gateway.ledger_ok()
    assert check["ok"] is True, [c for c in check["checks"] if not c["ok"]]


async def test_an_unfreeze_retry_releases_nothing_more_and_answers_the_same(
    gw: LiveGateway,
) -> None:
    _, client = await gw.merchant(10_000)
    _, acc = await funded_user(client, 1_000)
    frz = ok(await freeze(client, acc, 300))
    first = ok(await unfreeze(client, frz["id"], order="u-1", amount=100), 200)
    assert (first["released"], first["remaining"]) == (100, 200)
    assert figures(await account(client, acc)) == (800, 200, 1_000)
    again = await unfreeze(client, frz["id"], order="u-1", amount=100)
    assert (again.status, again.json()) == (200, first)
    assert figures(await account(client, acc)) == (800, 200, 1_000)
    # The last unfreeze ends the freeze; its retry is still the same answer, not a 409.
    last = ok(await unfreeze(client, frz["id"], order="u-2"), 200)
    assert (last["status"], last["released"], last["remaining"]) == ("released", 300, 0)
    assert ok(await unfreeze(client, frz["id"], order="u-2"), 200) == last
    # An earlier key answers as it did then, not with the freeze as it is now.
    assert ok(await unfreeze(client, frz["id"], order="u-1", amount=100), 200) == first
    assert figures(await account(client, acc)) == (1_000, 0, 1_000)
    got = ok(await client.get(f"/v1/freezes/{frz['id']}"), 200)
    assert (got["released"], got["status"]) == (300, "released")


async def test_the_same_key_with_other_fields_is_a_conflict(gw: LiveGateway) -> None:
    _, client = await gw.merchant(10_000)
    _, acc = await funded_user(client, 1_000)
    frz = ok(await freeze(client, acc, 300))
    other = ok(await freeze(client, acc, 300))
    ok(await unfreeze(client, frz["id"], order="u-1", amount=100), 200)
    for retry in (
        unfreeze(client, frz["id"], order="u-1", amount=150),
        unfreeze(client, frz["id"], order="u-1"),  # everything left: other fields too
        unfreeze(client, other["id"], order="u-1", amount=100),
    ):
        refused(await retry, 409, "idempotency_conflict")
    assert figures(await account(client, acc)) == (500, 500, 1_000)


async def test_concurrent_identical_retries_release_exactly_once(gw: LiveGateway) -> None:
    _, client = await gw.merchant(10_000)
    _, acc = await funded_user(client, 1_000)
    frz = ok(await freeze(client, acc, 1_000))
    replies = await asyncio.gather(
        *(unfreeze(client, frz["id"], order="u-race", amount=100) for _ in range(20))
    )
    assert {r.status for r in replies} == {200}, [(r.status, r.body) for r in replies]
    assert len({r.body for r in replies}) == 1
    assert figures(await account(client, acc)) == (100, 900, 1_000)
    got = ok(await client.get(f"/v1/freezes/{frz['id']}"), 200)
    assert (got["released"], got["remaining"]) == (100, 900)


async def test_concurrent_retries_of_a_key_across_freezes_release_once(gw: LiveGateway) -> None:
    """The same key sent for two freezes at once (each locks its own freeze row): the unique
    key lets one release; the other is a conflict and moves nothing."""
    _, client = await gw.merchant(10_000)
    _, acc = await funded_user(client, 1_000)
    frozen = [ok(await freeze(client, acc, 200)) for _ in range(4)]
    replies = await asyncio.gather(
        *(unfreeze(client, f["id"], order="u-shared", amount=50) for f in frozen for _ in range(3))
    )
    done = [r for r in replies if r.status == 200]
    assert len({r.body for r in done}) == 1 and len(done) >= 1, [r.status for r in replies]
    assert all(r.error_code == "idempotency_conflict" for r in replies if r.status != 200)
    assert figures(await account(client, acc)) == (250, 750, 1_000)


async def test_an_unfreeze_without_a_key_is_refused(gw: LiveGateway) -> None:
    _, client = await gw.merchant(10_000)
    _, acc = await funded_user(client, 1_000)
    frz = ok(await freeze(client, acc, 300))
    for body in (None, {}, {"amount": 100}):
        resp = await client.post(f"/v1/freezes/{frz['id']}/unfreeze", body)
        refused(resp, 400, "invalid_request")
        assert resp.json()["error"]["field"] == "merchant_order_id", resp.body
    refused(await unfreeze(client, frz["id"], order=""), 400, "invalid_request")
    assert figures(await account(client, acc)) == (700, 300, 1_000)
