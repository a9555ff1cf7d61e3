"""`paygate serve --workers 2` as a real process: each gateway process counts the requests it
served in its own files, and either one's /metrics shows their sum (issue 13)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import psutil
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from gateway.settings import Settings
from tests.harness import free_port, wait_until, wait_until_sync

HEALTH = {"method": "GET", "route": "/healthz", "status": "200"}


def healthz_on_page(text: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "paygate_http_requests_total" and s.labels == HEALTH
    )


def healthz_per_process(metrics_dir: Path) -> dict[int, float]:
    """Each process's own count, from its file in the multi-process directory."""
    out: dict[int, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            _, name, labels, _ = json.loads(key)
            if name == "paygate_http_requests_total" and labels == HEALTH:
                out[pid] = out.get(pid, 0.0) + value
    return out


async def drive(url: str, metrics_dir: Path, children: set[int]) -> None:
    sent = 0
    async with aiohttp.ClientSession() as http:

        async def get(path: str) -> str:
            # A new connection each time, so the kernel may hand it to either process.
            async with http.get(url + path, headers={"Connection": "close"}) as resp:
                assert resp.status == 200
                return await resp.text()

        await wait_until(lambda: _up(http, url), bool, timeout_s=20, interval_s=0.1)

        async def send_some() -> dict[int, float]:
            nonlocal sent
            for _ in range(10):
                await get("/healthz")
                sent += 1
            return healthz_per_process(metrics_dir)

        # Until both processes have served (and flushed) some.
        counts = await wait_until(send_some, lambda c: len([n for n in c.values() if n]) == 2,
                                  timeout_s=20, interval_s=0.1)  # fmt: skip
        assert set(counts) == children, (counts, children)
        # Every page is the sum, whichever process answers it.
        pages = [await wait_until(lambda: get("/metrics"), lambda t: healthz_on_page(t) == sent,
                                  timeout_s=10) for _ in range(6)]  # fmt: skip
        assert all(healthz_on_page(p) == sent for p in pages)
        per_process = healthz_per_process(metrics_dir)
        assert sum(per_process.values()) == sent and all(per_process.values()), per_process


async def _up(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url + "/readyz") as resp:  # not /healthz: those are counted
            return resp.status == 200
    except aiohttp.ClientError:
        return False


def test_serve_workers_2_metrics_sum_both_processes(tmp_path: Path, settings: Settings) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {"PAYGATE_STATE_DIR": str(tmp_path), "PAYGATE_LOG_LEVEL": "WARNING",
            "PAYGATE_DATABASE_URL": settings.database_url,
            "PAYGATE_REDIS_URL": settings.redis_url,
            "PAYGATE_ADMIN_TOKEN": settings.admin_token}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--workers", "2", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        metrics_dir = tmp_path / "metrics-serve"
        url = f"http://127.0.0.1:{port}"

        serving = wait_until_sync(
            lambda: {c.pid for c in psutil.Process(proc.pid).children()},
            lambda pids: len(pids) == 2,
        )
        asyncio.run(drive(url, metrics_dir, serving))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, proc.stdout.read() if proc.stdout else b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
