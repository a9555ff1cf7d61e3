"""The operator console's safety over HTTP (SPEC 17): sign-in and its throttle, the session
cookie, CSRF on every POST, roles checked on the server, headers, escaping, idle expiry. The
same flows in a real browser: tests/e2e/test_console_browser*.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from hashlib import sha256

import aiohttp
import pytest
import redis.asyncio as aioredis

from gateway.console.access import COOKIE
from gateway.console.sessions import key_prefix
from gateway.settings import Settings
from tests.console_http import add_operator, signed_in
from tests.harness import LiveGateway, live_gateway, wait_until
from tests.payloads import payout_body

PAGES = ("/console/", "/console/reviews", "/console/payouts", "/console/channels",
         "/console/merchants", "/console/exposure", "/console/recon", "/console/audit")  # fmt: skip


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[LiveGateway]:
    async with live_gateway(settings.with_(console_idle_s=2.0)) as g:
        await add_operator(g, "ada", "admin", "ada-password")
        await add_operator(g, "val", "viewer", "val-password")
        yield g


async def test_pages_need_a_session_and_carry_the_safety_headers(gw: LiveGateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.url + "/console/reviews", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/console/login"
        async with http.get(gw.url + "/console/login") as resp:
            assert resp.status == 200
            assert "Sign in" in await resp.text()
            csp = resp.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert resp.headers["X-Frame-Options"] == "DENY"
    async with signed_in(gw, "ada", "ada-password") as ada:
        cookie = next(iter(ada.http.cookie_jar))
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        for page in PAGES:
            status, html = await ada.get(page)
            assert status == 200, (page, html[:500])
            for other in PAGES:  # the menu, on every page
                assert f'href="{other}"' in html, (page, other)


async def test_a_post_without_the_csrf_token_is_refused(gw: LiveGateway) -> None:
    async with signed_in(gw, "ada", "ada-password") as ada:
        assert await ada.post("/console/ledger-check", {}, csrf=None) == 403
        assert await ada.post("/console/ledger-check", {}, csrf="forged") == 403
        assert await ada.post("/console/ledger-check", {}) == 303
        conn = await gw.db()
        try:
            n = await conn.fetchval("SELECT count(*) FROM operator_actions WHERE action = $1",
                                    "ledger.check")  # fmt: skip
        finally:
            await conn.close()
        assert n == 1


async def test_a_viewer_sees_no_approve_button_and_its_forged_post_is_refused(
    gw: LiveGateway,
) -> None:
    _, client = await gw.merchant(1_000_000, review_threshold=1_000)
    payout = (await client.post("/v1/payouts", payout_body(2_000))).json()
    async with signed_in(gw, "val", "val-password") as val:
        status, html = await val.get("/console/reviews")
        assert status == 200 and payout["id"] in html and "Approve" not in html
        path = f"/console/reviews/{payout['id']}/approve"
        assert await val.post(path, {}) == 403
    assert (await client.get(f"/v1/payouts/{payout['id']}")).json()["status"] == "review_pending"


async def test_five_failed_sign_ins_lock_the_name_for_a_minute(gw: LiveGateway) -> None:
    async with aiohttp.ClientSession() as http:

        async def attempt(password: str) -> int:
            form = {"username": "val", "password": password}
            async with http.post(gw.url + "/console/login", data=form) as resp:
                return resp.status

        assert [await attempt("wrong") for _ in range(4)] == [401] * 4
        assert await attempt("wrong") == 429
        assert await attempt("val-password") == 429  # locked, even with the right password
    async with signed_in(gw, "ada", "ada-password"):  # another name is not locked
        pass


async def test_what_a_merchant_typed_is_escaped(gw: LiveGateway) -> None:
    _, client = await gw.merchant(1_000_000, review_threshold=1_000)
    evil = "<img src=x onerror=alert(1)>"
    body = payout_body(2_000)
    body["payee"]["account_name"] = evil
    payout = (await client.post("/v1/payouts", body)).json()
    async with signed_in(gw, "ada", "ada-password") as ada:
        for page in ("/console/reviews", f"/console/payouts/{payout['id']}"):
            status, html = await ada.get(page)
            assert status == 200
            assert evil not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


async def test_an_idle_session_expires_and_the_page_goes_to_the_login(
    gw: LiveGateway, redis_client: aioredis.Redis
) -> None:
    async with signed_in(gw, "ada", "ada-password") as ada:
        assert (await ada.get("/console/"))[0] == 200
        token = next(c.value for c in ada.http.cookie_jar if c.key == COOKIE)
        key = key_prefix(gw.settings.database_url) + "session:" + sha256(token.encode()).hexdigest()
        # Idle (2 s here): wait for the session to lapse without touching it.
        await wait_until(lambda: redis_client.exists(key), lambda n: n == 0, timeout_s=10)
        status, _ = await ada.get("/console/audit")
        assert status == 303
        assert await ada.post("/console/ledger-check", {}, csrf="whatever") == 403
