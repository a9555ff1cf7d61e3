"""One hot merchant across real gateway processes (SPEC 15): `paygate serve --workers 2`
accepts for one merchant, each order sent twice on different connections (so a retry may
land on the other process), and the figures stay exact: one payout per merchant_order_id,
the merchant's hold equal to its payouts' amount + fee, the ledger check passing; both
processes took part."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp
import asyncpg
import psutil
from prometheus_client.mmap_dict import MmapedDict

from gateway.client import AdminClient, MerchantClient
from gateway.settings import Settings
from tests.harness import free_port, wait_until, wait_until_sync
from tests.payloads import payout_body

PAYOUTS_ROUTE = ("POST", "/v1/payouts")
HEALTH_ROUTE = ("GET", "/healthz")


def requests_per_process(metrics_dir: Path, route: tuple[str, str]) -> dict[int, float]:
    out: dict[int, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            _, name, labels, _ = json.loads(key)
            if name == "paygate_http_requests_total" and (
                labels.get("method"), labels.get("route")) == route:  # fmt: skip
                out[pid] = out.get(pid, 0.0) + value
    return out


async def _counted(metrics_dir: Path) -> dict[int, float]:
    return requests_per_process(metrics_dir, PAYOUTS_ROUTE)


async def _ready(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(url + "/readyz") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


async def _both_serving(url: str, metrics_dir: Path) -> dict[int, float]:
    """Health checks on new connections until both processes have answered some."""
    async with aiohttp.ClientSession() as http:
        for _ in range(10):
            async with http.get(url + "/healthz", headers={"Connection": "close"}) as resp:
                assert resp.status == 200
    return requests_per_process(metrics_dir, HEALTH_ROUTE)


async def drive(url: str, settings: Settings, metrics_dir: Path, children: set[int]) -> None:
    await wait_until(lambda: _ready(url), bool, timeout_s=30, interval_s=0.1)
    await wait_until(lambda: _both_serving(url, metrics_dir), lambda c: set(c) == children,
                     timeout_s=30, interval_s=0.1)  # fmt: skip
    async with AdminClient(url, settings.admin_token) as admin:
        m = await admin.create_merchant(name="Hot", rate_limit={"rps": 10_000, "burst": 10_000},
                                        fee_fixed=100)  # fmt: skip
        resp = await admin.credit(m["id"], 150 * 1_100, "seed-hot")
        assert resp.status == 201, resp.body
        # Eight clients, each with its own connections: the kernel spreads them over both.
        clients = [MerchantClient(url, m["id"], m["secret"]) for _ in range(8)]
        for c in clients:
            await c.__aenter__()
        try:
            bodies = [payout_body(1_000, order_id=f"serve-{i}") for i in range(300)]
            resps = await asyncio.gather(*(clients[(i + k * 3) % 8].post("/v1/payouts", body)
                                           for i, body in enumerate(bodies)
                                           for k in range(2)))  # fmt: skip
        finally:
            for c in clients:
                await c.close()
        codes = Counter(r.status for r in resps)
        assert set(codes) <= {200, 201, 422}, [(r.status, r.body) for r in resps]
        ids: dict[str, set[str]] = {}
        for r in resps:
            if r.status in (200, 201):
                ids.setdefault(r.json()["merchant_order_id"], set()).add(r.json()["id"])
        assert len(ids) == 150 and all(len(v) == 1 for v in ids.values())
        assert codes[201] == 150
        check = await admin.get("/admin/ledger/check")
        assert check.status == 200 and check.json()["ok"], check.body
    # Each process flushes its counts now and then: poll until all 600 are there.
    per_process = await wait_until(
        lambda: _counted(metrics_dir), lambda c: sum(c.values()) == 600, timeout_s=20
    )
    assert set(per_process) == children and all(per_process.values()), per_process
    conn = await asyncpg.connect(settings.database_url)
    try:
        row = await conn.fetchrow(
            """SELECT b.available_fen, b.held_fen,
                      (SELECT sum(amount_fen + fee_fen) FROM payouts p
                       WHERE p.merchant_id = b.merchant_id) AS payouts,
                      (SELECT count(DISTINCT merchant_order_id) = count(*) FROM payouts p
                       WHERE p.merchant_id = b.merchant_id) AS unique_orders
               FROM merchant_balances b WHERE b.merchant_id = $1""",
            m["id"],
        )
    finally:
        await conn.close()
    assert (row["available_fen"], row["held_fen"], row["payouts"]) == (0, 165_000, 165_000)
    assert row["unique_orders"]


def test_serve_workers_2_accept_one_hot_merchant_exactly(
    tmp_path: Path, settings: Settings
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    # The fast path in real processes (off by default; `serve --workers 2` on the locked path
    # is what every other multi-process test runs).
    env |= {"PAYGATE_STATE_DIR": str(tmp_path), "PAYGATE_LOG_LEVEL": "WARNING",
            "PAYGATE_DATABASE_URL": settings.database_url,
            "PAYGATE_REDIS_URL": settings.redis_url,
            "PAYGATE_ADMIN_TOKEN": settings.admin_token,
            "PAYGATE_ACCEPT_FAST": "1"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--workers", "2", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        serving = wait_until_sync(
            lambda: {c.pid for c in psutil.Process(proc.pid).children()},
            lambda pids: len(pids) == 2,
        )
        asyncio.run(drive(f"http://127.0.0.1:{port}", settings, tmp_path / "metrics-serve",
                          serving))  # fmt: skip
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, proc.stdout.read() if proc.stdout else b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
