"""A scenario's timeline as it runs (SPEC 12): each event fired at its simulated time — bank
profile changes, kills through `faults.py` (waiting for the restart), callback storms, clock
jumps, and payouts over a merchant's review threshold decided by an operator."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from gateway.client import AdminClient, MerchantClient
from loadtest.generator.spec import MerchantCred
from loadtest.scenarios.model import CallbackStorm, Event, Review, Scenario, at_time, sim_offset_s
from loadtest.system import faults
from protocol.clock import BUSINESS_TZ

# Whom the reviewed payouts pay: a corporate account at China Merchants Bank.
REVIEW_PAYEE = {"account_no": "6222020200998877665", "account_name": "Qian Qi",
                "bank_code": "308584000013", "account_type": "corporate"}  # fmt: skip


def say(text: str) -> None:
    print(f"scenario: {text}", flush=True)


def wall_s(sim_s: float, time_scale: float) -> float:
    return max(0.0, sim_s / time_scale)


async def _review(base_url: str, admin: AdminClient, review: Review, m: MerchantCred) -> str:
    """One payout over the merchant's review threshold per decision, each decided by the
    operator as it says (approve: it goes to its bank; reject: its hold is released)."""
    decided = []
    async with MerchantClient(base_url, m.id, m.secret) as client:
        for k, decision in enumerate(review.decisions):
            order_id = f"review-{decision}-{k}-{time.time_ns()}"
            body = {"merchant_order_id": order_id, "amount": review.amount_fen,
                    "currency": "CNY", "payee": REVIEW_PAYEE}  # fmt: skip
            resp = await client.post("/v1/payouts", body)
            payout = resp.json()
            if resp.status != 201 or payout.get("status") != "review_pending":
                raise RuntimeError(f"payout for review: {resp.status} {resp.body!r}")
            done = await admin.post(f"/admin/payouts/{payout['id']}/{decision}")
            decided.append(f"{decision}: {done.json().get('status')}")
    return f"review: {len(decided)} payouts over the threshold decided ({', '.join(decided)})"


async def jump_to(admin: AdminClient, when: datetime) -> datetime:
    """To `when` (a time already passed moves nothing; sent again, it lands once)."""
    resp = await admin.post("/admin/clock/advance", {"to": when.isoformat()})
    if resp.status != 200:
        raise RuntimeError(f"clock jump to {when}: {resp.status} {resp.body!r}")
    return datetime.fromisoformat(resp.json()["now"])


async def set_profile(sim_url: str, bank: str, patch: dict[str, Any]) -> None:
    url = f"{sim_url}/banks/{bank}/profile"
    async with aiohttp.ClientSession() as http, http.put(url, data=orjson.dumps(patch)) as r:
        if r.status != 200:
            raise RuntimeError(f"bank {bank} profile: {r.status} {await r.text()}")


async def _storm(sim_url: str, storm: CallbackStorm) -> str:
    body = {"copies": storm.copies, "last": storm.last, "bank_id": storm.bank}
    url = f"{sim_url}/sim/callback-storm"
    async with aiohttp.ClientSession() as http, http.post(url, data=orjson.dumps(body)) as r:
        if r.status != 200:
            raise RuntimeError(f"callback storm: {r.status} {await r.text()}")
        sent = orjson.loads(await r.read())
    return f"callback storm: {sent['items']:,} callbacks replayed ({storm.copies} copies each)"


async def _wait_serving(url: str | None) -> None:
    """Poll `url` (with a deadline) until it answers 200."""
    if url is None:
        return
    deadline = time.monotonic() + faults.RESTART_TIMEOUT_S
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass  # still starting
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer 200 within the restart timeout")
            await asyncio.sleep(0.1)  # polling with a deadline


async def _fire(
    info: dict[str, Any], state_dir: Path, admin: AdminClient, ev: Event, start: datetime,
    merchants: dict[str, MerchantCred],
) -> tuple[str, float]:  # fmt: skip
    """Carry out one event: what it did, and how far it moved the clock (simulated s)."""
    if ev.profile is not None and ev.bank is not None:
        await set_profile(info["bank_sim_url"], ev.bank, ev.profile)
        return f"bank {ev.bank} profile {orjson.dumps(ev.profile).decode()}", 0.0
    if ev.kill is not None:
        old = await asyncio.to_thread(faults.kill, state_dir, ev.kill)
        new = await asyncio.to_thread(faults.wait_restarted, state_dir, ev.kill, old)
        # The next event may talk to it (a bank profile right after the bank's restart).
        await _wait_serving(faults.serving_url(info, ev.kill))
        return f"killed {ev.kill} (pid {old}); restarted as {new}", 0.0
    if ev.callback_storm is not None:
        return await _storm(info["bank_sim_url"], ev.callback_storm), 0.0
    if ev.review is not None:
        merchant = merchants[ev.review.merchant]
        return await _review(info["gateway_url"], admin, ev.review, merchant), 0.0
    assert ev.jump_to is not None
    before = datetime.fromisoformat((await admin.get("/admin/clock")).json()["now"])
    landed = await jump_to(admin, at_time(ev.jump_to, start))
    when = landed.astimezone(BUSINESS_TZ)
    return f"clock jumped to {when:%Y-%m-%d %H:%M} China time", (landed - before).total_seconds()


async def run_timeline(
    info: dict[str, Any], state_dir: Path, admin: AdminClient, sc: Scenario, start: datetime,
    time_scale: float, t0: float, log: list[dict[str, Any]], merchants: dict[str, MerchantCred],
) -> None:  # fmt: skip
    """Fire each event when the simulated clock reaches it: running time plus the jumps so
    far (a jump moves the clock, not the wall)."""
    jumped_s = 0.0
    for ev in sorted(sc.timeline, key=lambda e: sim_offset_s(e.at, start)):
        sim_now_s = (time.monotonic() - t0) * time_scale + jumped_s
        wait = wall_s(sim_offset_s(ev.at, start) - sim_now_s, time_scale)
        await asyncio.sleep(wait)  # until the event's simulated time, not a synchronisation
        try:
            what, moved_s = await _fire(info, state_dir, admin, ev, start, merchants)
            jumped_s += moved_s
        except Exception as exc:  # an event that fails is reported, the run goes on
            what = f"FAILED: {exc!r}"
        fired = round(time.monotonic() - t0, 2)
        log.append({"at": ev.at, "wall_s": fired, "what": what, "note": ev.note,
                    "jumped_s": jumped_s})  # fmt: skip
        say(f"{ev.at}: {what}")
