"""The open-loop generator measures queueing (no coordinated omission), drops nothing, and
its bodies are what the gateway accepts.

The target is a one-at-a-time server with a known 20 ms service time, so its capacity is
50 requests/s: under it latency is the service time; at twice it a queue builds up and the
generator must see it, where a closed loop (send, wait, send) would keep reporting ~20 ms.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from gateway.server import start_site
from gateway.settings import Settings
from loadtest.generator.open_loop import run_open_loop
from loadtest.generator.processes import run_in_process
from loadtest.generator.result import LoadResult, Snapshot
from loadtest.generator.shapes import constant
from loadtest.generator.spec import LoadSpec, MerchantCred
from protocol import signing
from tests.banks import bank_world

SERVICE_S = 0.020
MERCHANT = MerchantCred("m_load", "load-secret-0123456789")


@dataclass
class SerialServer:
    url: str
    served: int = 0


@pytest.fixture
async def serial_server() -> AsyncIterator[SerialServer]:
    """Serves one request at a time, each taking SERVICE_S; counts what it served."""
    lock = asyncio.Lock()
    state = SerialServer(url="")

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        async with lock:
            await asyncio.sleep(SERVICE_S)  # the service time being measured, not a wait
            state.served += 1
        return web.json_response({"ok": True})

    async def refuse(request: web.Request) -> web.Response:
        body = {"error": {"code": "payee_blocked", "message": "no"}}
        return web.json_response(body, status=422)

    app = web.Application()
    app.router.add_post("/v1/noop", handle)
    app.router.add_post("/v1/payouts", refuse)
    runner, port = await start_site(app, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


def spec_for(url: str, rate_per_s: float, duration_s: float, workload: str = "noop") -> LoadSpec:
    return LoadSpec(
        base_url=url,
        merchants=(MERCHANT,),
        workload=workload,
        shape=constant(rate_per_s, duration_s),
        seed=7,
        run_id="co",
        timeout_s=10.0,
    )


def assert_nothing_dropped(result: LoadResult, scheduled: int) -> None:
    t = result.totals
    assert t.scheduled == scheduled
    assert t.completed + t.errors == t.scheduled
    assert sum(s.scheduled for s in result.timeline) == scheduled
    assert sum(s.completed for s in result.timeline) == t.completed


async def test_under_capacity_latency_is_the_service_time(serial_server: SerialServer) -> None:
    result = await run_open_loop(spec_for(serial_server.url, 25, 2.0))

    assert_nothing_dropped(result, 50)
    assert result.totals.errors == 0
    assert result.by_status == {"200": 50}
    assert 20 <= result.latency_ms.p50_ms <= 60
    assert result.totals.late_start == 0
    assert serial_server.served == 50


async def test_over_capacity_latency_includes_the_queue(serial_server: SerialServer) -> None:
    snapshots: list[Snapshot] = []
    result = await run_open_loop(spec_for(serial_server.url, 100, 2.0), snapshots.append)

    assert_nothing_dropped(result, 200)
    assert result.totals.errors == 0
    # 200 requests at 50/s take 4 s; the last, scheduled at ~2 s, waits ~2 s. A closed loop
    # would have sent one at a time and reported ~20 ms throughout.
    assert result.latency_ms.p99_ms >= 500
    assert result.latency_ms.max_ms >= 1000
    assert result.latency_ms.p50_ms > 10 * SERVICE_S * 1000
    # The server's pace shows in the achieved rate, and the queue in the per-second latency.
    assert 40 <= result.totals.achieved_rate_per_s <= 55
    assert result.timeline[1].p50_ms > result.timeline[0].p50_ms
    # The queue, not the generator, made that latency: requests went out close to their
    # scheduled times (bounded against the latency measured, not in absolute ms: on a loaded
    # 2-core machine the test's own loop has stalled for ~340 ms), and progress was reported.
    assert result.start_lag_ms.p99_ms < result.latency_ms.p99_ms / 4
    assert snapshots and snapshots[-1].completed == 200


async def test_in_flight_bound_delays_but_does_not_drop(serial_server: SerialServer) -> None:
    spec = spec_for(serial_server.url, 100, 1.0)
    bounded = LoadSpec.from_dict({**spec.to_dict(), "max_in_flight": 5})
    result = await run_open_loop(bounded)

    assert_nothing_dropped(result, 100)
    assert result.totals.late_start > 50
    assert result.meta["connections_opened"] <= 5  # kept alive and reused, never more
    # A late start still counts from its scheduled time: the queue is in the latency.
    assert result.latency_ms.p99_ms >= 500


async def test_error_codes_are_counted(serial_server: SerialServer) -> None:
    result = await run_open_loop(spec_for(serial_server.url, 50, 0.5, workload="payouts"))

    assert result.by_status == {"422": 25}
    assert result.by_code == {"payee_blocked": 25}


async def test_refused_connections_are_errors_not_latencies() -> None:
    app = web.Application()
    runner, port = await start_site(app, "127.0.0.1", 0)
    await runner.cleanup()  # nothing listens on `port` any more

    result = await run_open_loop(spec_for(f"http://127.0.0.1:{port}", 20, 0.5))

    assert_nothing_dropped(result, 10)
    assert result.totals.errors == 10
    assert result.latency_ms.count == 0
    assert result.by_error == {"connect_error": 10}


async def test_run_in_process_relays_progress_and_returns_the_result(
    serial_server: SerialServer, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await asyncio.to_thread(run_in_process, spec_for(serial_server.url, 25, 2.0))

    assert_nothing_dropped(result, 50)
    assert 20 <= result.latency_ms.p50_ms <= 60
    assert result.latency_histogram().count == 50
    assert result.totals.cpu_s > 0  # the child's own CPU time over the run
    relayed = [line for line in capsys.readouterr().err.splitlines() if "[loadgen]" in line]
    assert any("completed=50" in line for line in relayed)


async def test_shards_in_several_processes_merge_into_one_run(serial_server: SerialServer) -> None:
    result = await asyncio.to_thread(
        run_in_process, spec_for(serial_server.url, 30, 2.0), processes=2
    )

    assert_nothing_dropped(result, 60)
    assert result.meta["processes"] == 2
    assert result.latency_histogram().count == 60
    assert 20 <= result.latency_ms.p50_ms <= 80
    # The shards started together: the merged run took the shape's time, not twice it.
    assert result.totals.duration_s < 3.0
    assert sum(result.by_status.values()) == 60


async def test_payouts_and_mixed_bodies_are_accepted_by_the_gateway(settings: Settings) -> None:
    async with bank_world(settings) as world:
        merchant, _ = await world.gw.merchant(credit_fen=10**10)
        for workload in ("payouts", "mixed"):
            spec = LoadSpec(
                base_url=world.gw.url,
                merchants=(MerchantCred(merchant["id"], merchant["secret"]),),
                workload=workload,
                shape=constant(100, 1.0),
                seed=3,
                run_id=f"gw-{workload}",
            )
            result = await run_open_loop(spec)

            assert_nothing_dropped(result, 100)
            refused = {k: v for k, v in result.by_status.items() if not k.startswith("2")}
            assert refused == {}, (workload, result.by_code)
            if workload == "mixed":
                assert set(result.by_kind) >= {"payout", "balance", "list"}


async def test_requests_are_signed_as_the_merchant() -> None:
    """Each request carries paygate-hmac-v1 headers that verify with the merchant's secret."""
    verdicts: list[bool] = []

    async def check(request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        expected = signing.sign(
            MERCHANT.secret, h[signing.H_TIMESTAMP], h[signing.H_NONCE],
            request.method, request.path_qs, body,
        )  # fmt: skip
        verdicts.append(h[signing.H_KEY] == MERCHANT.id and h[signing.H_SIGNATURE] == expected)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/noop", check)
    runner, port = await start_site(app, "127.0.0.1", 0)
    try:
        await run_open_loop(spec_for(f"http://127.0.0.1:{port}", 20, 0.5))
    finally:
        await runner.cleanup()
    assert verdicts == [True] * 10
