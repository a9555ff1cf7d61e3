"""The bank simulator killed (SIGKILL) in the middle of a fault-heavy payout run and started
again on its books (SPEC 9, issue 12): every payout ends final, none fails `bank_no_record`
for a payment the bank had received, nothing is submitted twice, and the bank's paid set is
the gateway's settled set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.settings import Settings
from tests.banks import assert_bank_agrees, submit_spread_run, wait_all_final, world_at
from tests.harness import free_port, wait_until, wait_until_sync

PAYOUTS_PER_MERCHANT = 500
START_TIMEOUT_S = 30.0


class BankProcess:
    """`paygate bank-sim` as its own process on a fixed port and books file."""

    def __init__(self, port: int, books: Path, log: Path, env: dict[str, str]) -> None:
        self.port = port
        self.books = books
        self.log = log
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "bank-sim", "--port", str(self.port),
                 "--seed", "20261126", "--books", str(self.books)],
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

        def healthy() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        wait_until_sync(healthy, bool, timeout_s=START_TIMEOUT_S)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def bank_process(settings: Settings, tmp_path: Path, gateway_port: int) -> Iterator[BankProcess]:
    env = {
        **os.environ,
        "PAYGATE_CALLBACK_URL": f"http://127.0.0.1:{gateway_port}",
        "PAYGATE_BANK_MASTER_SECRET": settings.bank_master_secret,
        "PAYGATE_BANK_PROFILE_PRESET": "fault_heavy",
        "PAYGATE_TIME_SCALE": str(settings.time_scale),
        "PAYGATE_LOG_LEVEL": "WARNING",
    }
    bank = BankProcess(free_port(), tmp_path / "books.sqlite3", tmp_path / "bank.log", env)
    bank.start()
    try:
        yield bank
    finally:
        bank.stop()


async def test_bank_killed_mid_run_keeps_its_books(settings: Settings, tmp_path: Path) -> None:
    gateway_port = free_port()
    with bank_process(settings, tmp_path, gateway_port) as bank:
        async with world_at(settings, bank.url, gateway_port) as world:
            accepted = await submit_spread_run(world, PAYOUTS_PER_MERCHANT)

            # Kill it once it holds a good part of the run, with much still in flight.
            held = await wait_until(world.records_held, lambda n: n >= 600, timeout_s=60)
            assert held < len(accepted), "the run finished before the kill"
            bank.kill()
            bank.start()
            assert await world.records_held() >= held, "the restarted bank forgot payments"

            gateway = await wait_all_final(world, timeout_s=240)
            await assert_bank_agrees(world, accepted, gateway)
            records = {r["ref"] for r in await world.records()}
            no_record = {pid for pid, row in gateway.items()
                         if row["failure_code"] == "bank_no_record"}  # fmt: skip
            assert not no_record & records, "failed bank_no_record for a payment the bank had"
            print(f"killed with {held} records at the bank; {len(no_record)} payouts never "
                  f"reached it and failed bank_no_record")  # fmt: skip
