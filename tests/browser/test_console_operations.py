"""The console in Chromium (SPEC 17, issue 24): pausing a bank, crediting a merchant, resolving
a reconciliation exception (each found in the audit log), the idle expiry, and a screenshot
of every page."""

from __future__ import annotations

from hashlib import sha256
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, Page, expect

from gateway.console.access import COOKIE
from gateway.console.sessions import key_prefix
from tests.banks import BankWorld
from tests.browser.console import press, shot, sign_in
from tests.browser.test_console_reviews import audited, pay, status_of
from tests.conftest import Storage
from tests.harness import live_gateway, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="session")
# Recon is photographed with an open exception, by its own test.
PAGES = {"channels": "/console/channels", "merchants": "/console/merchants",
         "exposure": "/console/exposure", "audit": "/console/audit",
         "payouts": "/console/payouts"}  # fmt: skip


async def test_pause_and_resume_a_bank_stops_and_restarts_its_dispatch(
    browser: Browser, world: BankWorld
) -> None:
    page = await sign_in(browser, world.gw.url, "otto")
    await page.goto("/console/channels")
    for bank in ("103", "ibps"):  # the payee's bank and the interbank way round
        await press(page, bank, "Pause")
        await expect(page.locator(f'tr[data-id="{bank}"] [data-field=dispatch]')).to_have_text(
            "paused"
        )
    _, client = await world.gw.merchant(10_000_000)
    payout = await pay(client, 1_500, bank_code="103100000019")
    await world.workers.dispatcher.run_once()  # a round finds no bank to send it to
    assert await status_of(client, payout["id"]) == "accepted"
    assert not [r for r in await world.records() if r["ref"] == payout["id"]]
    for bank in ("103", "ibps"):
        await press(page, bank, "Resume")
        await expect(page.locator(f'tr[data-id="{bank}"] [data-field=dispatch]')).to_have_text("on")
    await wait_until(lambda: status_of(client, payout["id"]), lambda s: s == "succeeded",
                     timeout_s=15)  # fmt: skip
    cells = await audited(page, "103", "channel.pause")
    assert '"enabled":true' in cells[5] and '"enabled":false' in cells[6]
    await audited(page, "103", "channel.resume")


async def available(world: BankWorld, merchant_id: str) -> int:
    resp = await world.gw.admin.get(f"/admin/merchants/{merchant_id}")
    assert resp.status == 200
    conn = await world.gw.db()
    try:
        fen: int = await conn.fetchval(
            "SELECT available_fen FROM merchant_balances WHERE merchant_id = $1", merchant_id
        )
    finally:
        await conn.close()
    return fen


async def credit(page: Page, merchant_id: str, amount_fen: str, reference: str) -> None:
    form = page.locator(f'form[action="/console/merchants/{merchant_id}/credit"]')
    await form.locator('input[name="amount_fen"]').fill(amount_fen)
    await form.locator('input[name="reference"]').fill(reference)
    async with page.expect_navigation():
        await form.get_by_role("button", name="Credit").click()


async def test_credit_twice_with_one_reference_credits_once(
    browser: Browser, world: BankWorld, shots: Path
) -> None:
    m, _ = await world.gw.merchant(0, name="测试商户 Acme")
    page = await sign_in(browser, world.gw.url, "ada")
    await page.goto(f"/console/merchants/{m['id']}")
    await shot(page, shots, "merchant")
    await credit(page, m["id"], "123456", "wire-2026-001")
    await expect(page.locator("[data-field=available]")).to_have_text("¥1,234.56")
    await credit(page, m["id"], "123456", "wire-2026-001")  # the same reference: nothing more
    await expect(page.locator("[data-field=available]")).to_have_text("¥1,234.56")
    assert await available(world, m["id"]) == 123_456
    cells = await audited(page, m["id"], "merchant.credit")
    assert '"available":0' in cells[5] and '"available":123456' in cells[6]
    await page.goto(f"/console/audit?object_id={m['id']}&action=merchant.credit")
    await expect(page.locator('tr[data-action="merchant.credit"]')).to_have_count(1)


async def plant(world: BankWorld, bank_id: str, fault: dict[str, Any]) -> None:
    async with world.http.post(f"{world.sim_url}/sim/banks/{bank_id}/statement-faults",
                               data=orjson.dumps(fault)) as resp:  # fmt: skip
        assert resp.status in (200, 201), (resp.status, await resp.text())


async def test_resolve_a_reconciliation_exception_with_an_adjustment(
    browser: Browser, world: BankWorld, shots: Path
) -> None:
    m, client = await world.gw.merchant(10_000_000)
    payout = await pay(client, 1_000, bank_code="104100000004")
    await wait_until(lambda: status_of(client, payout["id"]), lambda s: s == "succeeded",
                     timeout_s=15)  # fmt: skip
    conn = await world.gw.db()
    try:
        day = await conn.fetchval("SELECT bank_date FROM payouts WHERE id = $1", payout["id"])
    finally:
        await conn.close()
    await plant(world, "104", {"kind": "extra_line", "amount": 777, "date": day.isoformat()})
    report = await world.gw.admin.post("/admin/reconcile",
                                       {"bank_id": "104", "date": day.isoformat()})  # fmt: skip
    assert report.status == 200, report.body
    (item,) = report.json()["items"]
    exception_id = item["exception_id"]
    before = await available(world, m["id"])
    page = await sign_in(browser, world.gw.url, "otto")
    await page.goto("/console/recon")
    await shot(page, shots, "recon")
    await press(page, exception_id, "Resolve", reason="bank credited us twice; refund merchant",
                merchant_id=m["id"], adjustment_fen="777")  # fmt: skip
    await expect(page.locator(f'tr[data-id="{exception_id}"]')).to_have_count(0)
    assert await available(world, m["id"]) == before + 777
    cells = await audited(page, exception_id, "recon.resolve")
    assert '"status":"open"' in cells[5] and '"resolved"' in cells[6] and "refund" in cells[7]


async def test_a_page_opened_after_the_idle_expiry_goes_to_the_login(
    browser: Browser, world: BankWorld, storage: Storage
) -> None:
    settings = world.gw.settings.with_(console_idle_s=1.5)
    async with live_gateway(settings) as short:  # the same system, sessions idle out fast
        page = await sign_in(browser, short.url, "val")
        cookie = next(c for c in await page.context.cookies() if c["name"] == COOKIE)
        key = (key_prefix(settings.database_url) + "session:"
               + sha256(cookie["value"].encode()).hexdigest())  # fmt: skip
        async with aioredis.Redis.from_url(storage.redis_url) as redis:
            await page.goto("about:blank")  # nothing polls the session meanwhile
            await wait_until(lambda: redis.exists(key), lambda n: n == 0, timeout_s=10)
        await page.goto(short.url + "/console/reviews")
        await expect(page).to_have_url(short.url + "/console/login")
        await expect(page.get_by_role("button", name="Sign in")).to_be_visible()


async def test_every_page_renders_and_is_photographed(
    browser: Browser, world: BankWorld, shots: Path
) -> None:
    _, client = await world.gw.merchant(100_000_000, review_threshold=5_000_000)
    payout = await pay(client, 6_000_000, account_name="张三")  # stays under review (four eyes)
    _, fronted = await world.gw.merchant(0, funding_mode="advance", advance_limit=50_000_000)
    await pay(fronted, 2_000_000)  # 垫资 in use: the exposure page has a row
    page = await sign_in(browser, world.gw.url, "ada")
    for name, path in PAGES.items():
        await page.goto(path)
        await expect(page.locator("nav")).to_contain_text("财务审核")
        await shot(page, shots, name)
    await page.goto(f"/console/payouts/{payout['id']}")
    await expect(page.locator("main")).to_contain_text("张三")
    await shot(page, shots, "payout")
    await page.goto("/console/reviews")
    await shot(page, shots, "reviews-large")
