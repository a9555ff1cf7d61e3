"""GET /metrics (SPEC 11, issue 13): every `paygate_` family is on the page and moves with
traffic — payouts through the bank, a refusing bank, a rate-limited, a replayed and a stale
request, a merchant whose endpoint is down, a payout fronted by the advance pool."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from gateway.client import MerchantClient
from gateway.settings import Settings
from gateway.system_gauges import CACHE_S
from protocol import signing
from risk.ratelimit import boot_key
from tests.banks import BankWorld, bank_world
from tests.harness import free_port, wait_until
from tests.payloads import payout_body

Page = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[BankWorld]:
    async with bank_world(settings) as w:
        for bank_id in ("102", "103", "104", "105", "308", "ibps"):
            await w.profile(bank_id, outcomes={"succeeded": 1.0})
        yield w


async def scrape(world: BankWorld) -> Page:
    async with world.http.get(world.gw.url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(page: Page, name: str, method: str = "", route: str = "", status: str = "",
          **labels: str) -> float:  # fmt: skip
    """The sum of `name`'s samples whose labels include `labels`."""
    given = {"method": method, "route": route, "status": status, **labels}
    want = {(k, v) for k, v in given.items() if v}
    return sum(v for (n, ls), v in page.items() if n == name and want <= ls)


def present(page: Page, name: str) -> bool:
    return any(n == name for n, _ in page)


def payee(bank_code: str, n: int) -> dict[str, str]:
    return {"account_no": f"6222{bank_code[:3]}{n:012d}", "account_name": "Li Si",
            "bank_code": bank_code, "account_type": "personal"}  # fmt: skip


async def pay(client: MerchantClient, bank_code: str, n: int) -> str:
    resp = await client.post("/v1/payouts", payout_body(10_000, payee=payee(bank_code, n)))
    assert resp.status == 201, resp.body
    payout_id: str = resp.json()["id"]
    return payout_id


async def test_metrics_page_has_every_family_and_each_moves_with_traffic(
    world: BankWorld, redis_client: aioredis.Redis
) -> None:
    before = await scrape(world)
    for name in ("paygate_payouts_open", "paygate_notifications_pending",
                 "paygate_channel_breaker_state", "paygate_advance_used_fen",
                 "paygate_advance_cap_fen"):  # fmt: skip
        assert present(before, name), name
    assert value(before, "paygate_advance_cap_fen") > 0
    assert value(before, "paygate_channel_breaker_state", channel="105") == 0  # closed

    # Payouts held back by a paused dispatch are open, queued.
    down_url = f"http://127.0.0.1:{free_port()}/notify"  # nothing listens: attempts fail
    _, prefunded = await world.gw.merchant(100_000_000, notify_url=down_url)
    _, advance = await world.gw.merchant(0, funding_mode="advance", advance_limit=10_000_000)
    assert (await world.gw.admin.patch("/admin/dispatch", {"paused": True})).status == 200
    ids = [await pay(prefunded, "102100099996", n) for n in range(3)]
    ids.append(await pay(advance, "102100099996", 100))
    queued = await wait_until(
        lambda: scrape(world), lambda p: value(p, "paygate_payouts_open", state="queued") >= 4
    )
    assert value(queued, "paygate_advance_used_fen") >= value(before, "paygate_advance_used_fen")
    assert (await world.gw.admin.patch("/admin/dispatch", {"paused": False})).status == 200
    for payout_id in ids:
        assert (await world.wait_payout(prefunded if payout_id != ids[-1] else advance,
                                        payout_id))["status"] == "succeeded"  # fmt: skip

    # A bank in maintenance refuses until its breaker opens; traffic goes interbank.
    await world.profile("105", maintenance_now=True)
    refused_ids = [await pay(prefunded, "105100000018", 200 + n) for n in range(4)]
    for payout_id in refused_ids:
        await world.wait_payout(prefunded, payout_id, timeout_s=20)

    # A rate-limited, a replayed and a stale request.
    _, limited = await world.gw.merchant(rate_limit={"rps": 1, "burst": 1})
    statuses = [(await limited.get("/v1/balance")).status for _ in range(3)]
    assert 429 in statuses, statuses
    headers = signing.sign_request(prefunded.key, prefunded.secret, "GET", "/v1/balance",
                                   b"")  # fmt: skip
    assert (await prefunded.request("GET", "/v1/balance", headers=headers)).status == 200
    replayed = await prefunded.request("GET", "/v1/balance", headers=headers)
    assert replayed.error_code == "replayed_request"
    s, stale_client = await world.gw.merchant()
    await redis_client.set(boot_key(s["id"]), int(time.time()))  # "Redis started just now"
    old = signing.sign_request(s["id"], s["secret"], "GET", "/v1/balance", b"",
                               timestamp=int(time.time()) - 30)  # fmt: skip
    stale = await stale_client.request("GET", "/v1/balance", headers=old)
    assert stale.error_code == "stale_request"

    created = ("paygate_http_requests_total", "POST", "/v1/payouts", "201")

    def moved(p: Page) -> dict[str, bool]:
        def up(name: str, **labels: str) -> bool:
            return value(p, name, **labels) > value(before, name, **labels)

        return {
            "requests": value(p, *created) >= value(before, *created) + 8,
            "latency": up("paygate_http_request_duration_seconds_count", route="/v1/payouts"),
            "accept batches": up("paygate_group_commit_batch_size_count", committer="accept"),
            "admitted": up("paygate_admissions_total", outcome="admitted"),
            "rate_limited": up("paygate_admissions_total", outcome="rate_limited"),
            "replayed": up("paygate_admissions_total", outcome="replayed"),
            "stale": up("paygate_admissions_total", outcome="stale"),
            "acked": up("paygate_bank_submissions_total", channel="102", outcome="acked"),
            "refused": up("paygate_bank_submissions_total", channel="105", outcome="refused"),
            "breaker": value(p, "paygate_channel_breaker_state", channel="105") >= 1,
            "pending": up("paygate_notifications_pending"),
            "retry": up("paygate_notification_attempts_total", outcome="retry"),
            "advance": up("paygate_advance_used_fen"),
            "sql accept": up("paygate_sql_statements_total", hop="accept"),
            "sql dispatch": up("paygate_sql_statements_total", hop="dispatch"),
            "sql callback": up("paygate_sql_statements_total", hop="callback"),
            "notify requests": up("paygate_http_client_requests_total", kind="notify"),
        }

    # The page lags by the flush period and the database figures by their cache: poll.
    after = await wait_until(lambda: scrape(world), lambda p: all(moved(p).values()),
                             timeout_s=15)  # fmt: skip
    assert all(moved(after).values())
    routes = {dict(labels).get("route", "") for name, labels in after if "route" in dict(labels)}
    assert "/v1/payouts/{payout_id}" in routes
    assert not [r for r in routes if "po_" in r], routes  # canonical paths, never raw URLs
    assert value(after, "paygate_group_commit_batch_size_sum", committer="accept") >= value(
        after, "paygate_group_commit_batch_size_count", committer="accept"
    )


async def test_metrics_page_serves_counters_when_the_snapshot_is_cached(
    world: BankWorld,
) -> None:
    """Scrapes inside the cache period read the database once: the statements the
    `metrics` hop makes do not grow with the number of scrapes."""
    first = await scrape(world)
    started = time.monotonic()
    for _ in range(20):
        last = await scrape(world)
    elapsed_s = time.monotonic() - started
    reads = value(last, "paygate_sql_statements_total", hop="metrics") - value(
        first, "paygate_sql_statements_total", hop="metrics"
    )
    # One read per cache period at most (and one more for the page's flush lag).
    assert reads <= elapsed_s / CACHE_S + 2, (reads, elapsed_s)
