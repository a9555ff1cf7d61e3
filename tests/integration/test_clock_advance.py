"""Moving the simulated clock (SPEC 12) safely under retries: `{"to": T}` jumps to T once, so
an operator or a scenario whose answer was lost can send it again; `{"advance_s": N}` jumps
by N each time it is sent. Both start from the shared anchor, under its row lock."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import asyncpg

from gateway.client import ApiResponse
from tests.harness import LiveGateway


def now_of(resp: ApiResponse) -> datetime:
    assert resp.status == 200, resp.body
    return datetime.fromisoformat(resp.json()["now"])


async def test_a_retried_jump_to_a_time_moves_the_clock_once(gateway: LiveGateway) -> None:
    start = now_of(await gateway.admin.get("/admin/clock"))
    target = start + timedelta(days=2)
    first = now_of(await gateway.admin.post("/admin/clock/advance", {"to": target.isoformat()}))
    again = now_of(await gateway.admin.post("/admin/clock/advance", {"to": target.isoformat()}))
    assert target <= first < target + timedelta(seconds=30)
    assert first <= again < target + timedelta(seconds=30)  # not two days more
    replies = await asyncio.gather(
        *(gateway.admin.post("/admin/clock/advance", {"to": target.isoformat()}) for _ in range(8))
    )
    assert all(now_of(r) < target + timedelta(seconds=30) for r in replies)


async def test_a_jump_starts_from_the_shared_anchor_not_a_stale_copy(
    gateway: LiveGateway, db: asyncpg.Connection
) -> None:
    """Another process moved the clock a moment ago (this one follows within 0.2 s): a jump
    adds to where the clock is, never back to this process's older copy; a jump to a time
    already passed moves nothing."""
    start = now_of(await gateway.admin.get("/admin/clock"))
    await db.execute("UPDATE sim_clock SET sim_s = sim_s + 86400 * 3 WHERE id = 1")
    by = now_of(await gateway.admin.post("/admin/clock/advance", {"advance_s": 3600}))
    assert start + timedelta(days=3, hours=1) <= by < start + timedelta(days=3, hours=1, minutes=1)
    await db.execute("UPDATE sim_clock SET sim_s = sim_s + 86400 * 3 WHERE id = 1")
    passed = (by + timedelta(days=1)).isoformat()
    moved = now_of(await gateway.admin.post("/admin/clock/advance", {"to": passed}))
    assert by + timedelta(days=3) <= moved < by + timedelta(days=3, minutes=1)


async def test_a_jump_names_exactly_one_of_advance_s_and_to(gateway: LiveGateway) -> None:
    now = now_of(await gateway.admin.get("/admin/clock"))
    for body in ({}, {"advance_s": 60, "to": now.isoformat()}, {"to": "2030-01-01T00:00:00"}):
        resp = await gateway.admin.post("/admin/clock/advance", body)
        assert (resp.status, resp.error_code) == (400, "invalid_request"), (body, resp.body)
    assert now_of(await gateway.admin.get("/admin/clock")) < now + timedelta(seconds=30)
