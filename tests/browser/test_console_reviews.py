"""The console in Chromium (SPEC 17, issue 24): signing in, the live overview, 财务审核 with
four eyes, and what a viewer, a forged POST and a merchant's markup cannot do."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from gateway.client import MerchantClient
from tests.banks import BankWorld
from tests.browser.console import csrf_of, press, shot, sign_in
from tests.harness import wait_until
from tests.payloads import payout_body

pytestmark = pytest.mark.asyncio(loop_scope="session")
FOUR_EYES = 5_000_000
EVIL = "<img src=x onerror=alert(1)>"
_accounts = itertools.count(1)


async def reviewed_merchant(world: BankWorld) -> MerchantClient:
    _, client = await world.gw.merchant(100_000_000, review_threshold=1_000)
    return client


async def pay(client: MerchantClient, amount: int, **payee: str) -> dict[str, Any]:
    body = payout_body(amount)
    body["payee"] |= {"account_no": f"62220202{next(_accounts):011d}", **payee}
    resp = await client.post("/v1/payouts", body)
    assert resp.status == 201, resp.body
    data: dict[str, Any] = resp.json()
    return data


async def status_of(client: MerchantClient, payout_id: str) -> str:
    status: str = (await client.get(f"/v1/payouts/{payout_id}")).json()["status"]
    return status


async def audited(page: Page, object_id: str, action: str) -> list[str]:
    """The audit page's row for this object and action: its cells (before and after set)."""
    await page.goto(f"/console/audit?object_id={object_id}")
    row = page.locator(f'tr[data-id="{object_id}"][data-action="{action}"]').first
    cells = await row.locator("td").all_inner_texts()
    before, after = cells[5], cells[6]
    assert before != "—" and after != "—", cells
    return cells


async def test_sign_in_and_the_overview_moves_while_payouts_flow(
    browser: Browser, world: BankWorld, shots: Path
) -> None:
    login = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
    await login.goto(world.gw.url + "/console/reviews")
    await expect(login).to_have_url(world.gw.url + "/console/login")  # no session: the login
    await shot(login, shots, "login")
    page = await sign_in(browser, world.gw.url, "ada")
    await page.evaluate("window.__notReloaded = true")
    _, client = await world.gw.merchant(100_000_000)

    async def flow() -> None:  # one payout at a time, the next once this one is final
        while True:
            await world.wait_payout(client, (await pay(client, 1_000))["id"])

    sender = asyncio.create_task(flow())
    try:
        for field in ("accepted_per_s", "finalized_per_s"):
            shown = page.locator(f"[data-field={field}]")
            await wait_until(shown.text_content, lambda t: float(t or 0) > 0, timeout_s=15)
        points = page.locator("#rate-chart polyline.accepted")
        await expect(points).not_to_have_attribute("points", "")
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    assert await page.evaluate("window.__notReloaded") is True  # updated in place
    await shot(page, shots, "overview")


async def test_approve_a_small_review_and_the_payout_moves_on(
    browser: Browser, world: BankWorld, shots: Path
) -> None:
    client = await reviewed_merchant(world)
    payout = await pay(client, 2_000)
    page = await sign_in(browser, world.gw.url, "alice")
    await page.goto("/console/reviews")
    await expect(page.locator(f'tr[data-id="{payout["id"]}"] [data-field=approvals]')).to_have_text(
        "0 of 1"
    )
    await shot(page, shots, "reviews")
    await press(page, payout["id"], "Approve")
    await expect(page.locator(f'tr[data-id="{payout["id"]}"]')).to_have_count(0)
    await wait_until(lambda: status_of(client, payout["id"]), lambda s: s == "succeeded",
                     timeout_s=15)  # fmt: skip
    cells = await audited(page, payout["id"], "payout.approve")
    assert "alice" in cells[2] and "accepted" in cells[6]


async def test_a_large_payout_needs_two_different_approvers(
    browser: Browser, world: BankWorld, shots: Path
) -> None:
    client = await reviewed_merchant(world)
    payout = await pay(client, FOUR_EYES)
    alice = await sign_in(browser, world.gw.url, "alice")
    await alice.goto("/console/reviews")
    await press(alice, payout["id"], "Approve")
    approvals = alice.locator(f'tr[data-id="{payout["id"]}"] [data-field=approvals]')
    await expect(approvals).to_have_text("1 of 2 (alice)")
    await shot(alice, shots, "reviews-four-eyes")
    await press(alice, payout["id"], "Approve")  # the same approver again: refused
    await expect(alice.get_by_role("alert")).to_contain_text("second approver")
    assert await status_of(client, payout["id"]) == "review_pending"
    bob = await sign_in(browser, world.gw.url, "bob")
    await bob.goto("/console/reviews")
    await press(bob, payout["id"], "Approve")
    await expect(bob.locator(f'tr[data-id="{payout["id"]}"]')).to_have_count(0)
    await wait_until(lambda: status_of(client, payout["id"]), lambda s: s != "review_pending")
    await bob.goto(f"/console/payouts/{payout['id']}")
    await expect(bob.locator(".fields").first).to_contain_text("alice at")
    await expect(bob.locator(".fields").first).to_contain_text("bob at")


async def test_reject_with_a_reason(browser: Browser, world: BankWorld) -> None:
    client = await reviewed_merchant(world)
    payout = await pay(client, 3_000)
    page = await sign_in(browser, world.gw.url, "bob")
    await page.goto("/console/reviews")
    await press(page, payout["id"], "Reject", reason="payee name does not match the contract")
    done = (await client.get(f"/v1/payouts/{payout['id']}")).json()
    assert done["status"] == "rejected"
    assert done["failure"]["message"] == "payee name does not match the contract"
    cells = await audited(page, payout["id"], "payout.reject")
    assert "payee name does not match" in cells[7] and "rejected" in cells[6]


async def test_a_viewer_has_no_approve_button_and_its_forged_post_is_refused(
    browser: Browser, world: BankWorld
) -> None:
    client = await reviewed_merchant(world)
    payout = await pay(client, 2_500)
    page = await sign_in(browser, world.gw.url, "val")
    await page.goto("/console/reviews")
    row = page.locator(f'tr[data-id="{payout["id"]}"]')
    await expect(row).to_have_count(1)
    await expect(row.get_by_role("button", name="Approve")).to_have_count(0)
    path = f"/console/reviews/{payout['id']}/approve"
    forged = await page.request.post(path, form={"csrf": await csrf_of(page)}, max_redirects=0)
    assert forged.status == 403
    assert await status_of(client, payout["id"]) == "review_pending"


async def test_a_post_without_the_csrf_token_is_refused(browser: Browser, world: BankWorld) -> None:
    client = await reviewed_merchant(world)
    payout = await pay(client, 2_600)
    page = await sign_in(browser, world.gw.url, "ada")
    for form in ({}, {"csrf": "not-the-token"}):
        resp = await page.request.post(f"/console/reviews/{payout['id']}/approve", form=form,
                                       max_redirects=0)  # fmt: skip
        assert resp.status == 403
    assert await status_of(client, payout["id"]) == "review_pending"


async def test_a_payee_named_like_markup_renders_as_text(
    browser: Browser, world: BankWorld
) -> None:
    client = await reviewed_merchant(world)
    payout = await pay(client, 2_700, account_name=EVIL)
    page = await sign_in(browser, world.gw.url, "ada")
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    for path in ("/console/reviews", f"/console/payouts/{payout['id']}"):
        await page.goto(path)
        await expect(page.locator("main")).to_contain_text(EVIL)
        assert await page.locator("main img").count() == 0
    assert dialogs == []
