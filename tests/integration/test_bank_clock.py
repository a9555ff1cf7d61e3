"""The bank simulator keeps the gateway's simulated time (SPEC 12): a clock jump on the
gateway moves the banks' business dates too (the workers hand the anchor over), and the
simulator refuses to go back in time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import orjson
import pytest

from gateway.settings import Settings
from tests.banks import BankWorld, bank_world
from tests.harness import wait_until
from tests.integration.test_bank_channels import payee
from tests.payloads import payout_body


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[BankWorld]:
    async with bank_world(settings) as w:
        await w.profile("102", outcomes={"succeeded": 1.0})
        yield w


async def bank_now(world: BankWorld) -> datetime:
    return datetime.fromisoformat((await world.sim_get("/sim/clock"))["now"])


async def test_a_clock_jump_moves_the_banks_business_date(world: BankWorld) -> None:
    resp = await world.gw.admin.post("/admin/clock/advance", {"advance_s": 3 * 86400})
    assert resp.status == 200, resp.body
    gateway_now = datetime.fromisoformat(resp.json()["now"])
    moved = await wait_until(lambda: bank_now(world),
                             lambda t: t >= gateway_now - timedelta(seconds=5),
                             timeout_s=10)  # fmt: skip
    assert moved - gateway_now < timedelta(minutes=5)  # followed, not run away
    _, client = await world.gw.merchant(1_000_000)
    po = (await client.post("/v1/payouts", payout_body(1_000, payee=payee()))).json()
    done = await world.wait_payout(client, po["id"])
    assert done["status"] == "succeeded"
    record = await world.record(po["id"])
    business_date = (await world.gw.admin.get("/admin/clock")).json()["business_date"]
    assert record["business_date"] == business_date


async def test_the_simulator_does_not_go_back_in_time(world: BankWorld) -> None:
    before = await bank_now(world)
    anchor = {"wall_s": before.timestamp(), "sim_s": before.timestamp() - 86400, "scale": 1.0}
    async with world.http.put(f"{world.sim_url}/sim/clock", data=orjson.dumps(anchor)) as r:
        assert r.status == 409, await r.text()
    assert await bank_now(world) >= before
