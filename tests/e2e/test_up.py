"""`paygate up` as a real process: starts, writes run.json, serves signed calls, stops clean."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil

from gateway.client import MerchantClient
from loadtest.system.up import START_TIMEOUT_S, STOP_TIMEOUT_S
from protocol.ids import floor_id
from tests.harness import free_port, wait_until, wait_until_sync
from tests.payloads import payout_body


async def check_signed_payout_reaches_the_bank(info: dict[str, Any]) -> None:
    m = next(m for m in info["merchants"] if m["funding_mode"] == "prefunded")
    async with MerchantClient(info["gateway_url"], m["id"], m["secret"]) as client:
        assert (await client.get("/healthz")).status == 200
        balance = await client.get("/v1/balance")
        assert balance.status == 200, balance.body
        assert balance.json()["available"] > 0
        # A fresh order id: with PAYGATE_DATABASE_URL the database outlives the run.
        before_s = time.time()
        created = await client.post("/v1/payouts", payout_body(5_000, f"e2e-{uuid.uuid4()}"))
        assert created.status == 201, created.body
        payout_id = created.json()["id"]

        async def fetch() -> dict[str, Any]:
            data: dict[str, Any] = (await client.get(f"/v1/payouts/{payout_id}")).json()
            return data

        # Worker -> bank simulator process -> signed callback -> gateway process.
        done = await wait_until(fetch, lambda p: p["status"] in ("succeeded", "failed"),
                                timeout_s=20)  # fmt: skip
        assert done["bank_id"] == "102" and done["bank_ref"]

        # ... -> the worker's signed notification -> the demo webhook sink process. A demo
        # merchant keeps the default notify_events: the final event is sent, the earlier ones
        # are recorded as skipped.
        async def received() -> list[dict[str, Any]]:
            url = f"{info['webhook_sink_url']}/merchants/{m['id']}/received"
            async with aiohttp.ClientSession() as http, http.get(url) as resp:
                assert resp.status == 200
                data: list[dict[str, Any]] = orjson.loads(await resp.read())["data"]
                return [r for r in data if r["object_id"] == payout_id]

        arrived = await wait_until(received, lambda rs: len(rs) >= 1, timeout_s=20)
        assert (arrived[0]["sequence"], arrived[0]["type"]) == (3, f"payout.{done['status']}")
        # Events are listed in id (= creation) order: start just before this payout's, so a
        # long-lived database (PAYGATE_DATABASE_URL) with older events does not matter.
        since = floor_id("evt", before_s - 1)
        events = (await client.get(f"/v1/events?limit=200&cursor={since}")).json()["data"]
        listed = [(e["type"], e["delivery"]["status"]) for e in events
                  if e["object_id"] == payout_id]  # fmt: skip
        assert listed[:2] == [("payout.accepted", "skipped"), ("payout.processing", "skipped")]


def wait_for_run_file(
    proc: subprocess.Popen[bytes], run_file: Path, output: Callable[[], object]
) -> None:
    """Poll (with a deadline) until `paygate up` writes run.json; fail at once if it died.
    The deadline is a bound, not a speed target: a loaded machine starts slowly."""

    def written() -> bool:
        assert proc.poll() is None, output()
        return run_file.exists()

    try:
        wait_until_sync(written, bool, timeout_s=START_TIMEOUT_S)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; paygate up said:\n{str(output())[-4000:]}") from None


def storage_processes(state_dir: Path) -> list[psutil.Process]:
    """postgres/redis processes whose command line points into this state dir."""
    found = []
    for proc in psutil.process_iter(attrs=("name", "cmdline")):
        cmd = " ".join(proc.info["cmdline"] or [])
        if str(state_dir.resolve()) in cmd and ("postgres" in cmd or "redis" in cmd):
            found.append(proc)
    return found


def stop_up(proc: subprocess.Popen[bytes], state_dir: Path) -> None:
    """A test that failed before its own clean stop: stop `up` (SIGINT, then SIGKILL at the
    bound) and the stores a killed `up` leaves running, so no server outlives the test."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for leftover in storage_processes(state_dir):
        with contextlib.suppress(psutil.Error):
            leftover.kill()


def test_up_serves_signed_requests_and_stops_cleanly(tmp_path: Path) -> None:
    state_dir = tmp_path / "run" / "state"
    port, bank_port, sink_port = free_port(), free_port(), free_port()
    env = {**os.environ, "PAYGATE_STATE_DIR": str(state_dir), "PAYGATE_LOG_LEVEL": "WARNING"}
    # Its output goes to a file: a pipe nobody reads fills up and blocks the logging process.
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "up", "--port", str(port), "--bank-port",
             str(bank_port), "--sink-port", str(sink_port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        run_file = state_dir / "run.json"
        wait_for_run_file(proc, run_file, log_path.read_bytes)
        info = orjson.loads(run_file.read_bytes())
        assert info["gateway_url"] == f"http://127.0.0.1:{port}"
        assert info["bank_sim_url"] == f"http://127.0.0.1:{bank_port}"
        assert info["admin_token"]
        # It holds secrets: only its owner reads it, and so every file with a secret.
        for secret_file in ("run.json", "sink-secrets.json", "console-admin.json"):
            path = state_dir / secret_file
            # On a shared PAYGATE_DATABASE_URL an admin may exist already: no password is made.
            if secret_file != "console-admin.json" or info["console_password"] is not None:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, secret_file
        assert info["console_url"] == f"http://127.0.0.1:{port}/console/"
        assert info["console_user"] == "admin"
        password = info["console_password"]
        assert password is None or len(password) >= 16
        kinds = {m["funding_mode"] for m in info["merchants"]}
        assert kinds == {"prefunded", "advance"}
        asyncio.run(check_signed_payout_reaches_the_bank(info))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        stop_up(proc, state_dir)  # only does something when the test failed before its stop
    leftovers = storage_processes(state_dir)
    assert leftovers == [], [p.info for p in leftovers]
    assert not (state_dir / "run.json").exists()
    # Nothing left beside the state directory (its lock is inside): a work tree stays clean.
    assert [p.name for p in state_dir.parent.iterdir()] == ["state"]
