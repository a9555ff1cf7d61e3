"""`paygate up`: embedded storage, migrations, the demo merchants, then the gateway, the bank
simulator, the workers and the webhook sink as supervised children; `run.json` says where."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from gateway.cli.common import terminate_as_interrupt
from gateway.cli.operators import first_admin, write_secret_file
from gateway.settings import Settings

log = logging.getLogger("paygate.cli")

UP_READY_TIMEOUT_S = 30.0


def _wait_healthy(url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)  # polling a child's health with a deadline
    return False


async def _prepare(
    settings: Settings, database_url: str, sink_url: str | None
) -> tuple[list[Any], dict[str, str | None]]:
    """Migrate, anchor the clock, seed the demo merchants; the merchants and the console's
    first login."""
    import asyncpg

    from gateway.demo_merchants import ensure_demo_merchants
    from gateway.storage.migrate import migrate

    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        now = time.time()
        # (Re)anchor the simulated clock at "now" with this run's scale.
        await conn.execute(
            """INSERT INTO sim_clock (id, wall_s, sim_s, scale) VALUES (1, $1, $1, $2)
               ON CONFLICT (id) DO UPDATE SET wall_s = $1, sim_s = $1, scale = $2""",
            now,
            settings.time_scale,
        )
        await conn.execute(
            "UPDATE advance_pool SET cap_fen = GREATEST($1, used_fen) WHERE id = 1",
            settings.advance_pool_cap_fen,
        )
        login = await first_admin(conn, settings.state_dir)
        return await ensure_demo_merchants(conn, sink_url), login
    finally:
        await conn.close()


def cmd_up(settings: Settings) -> int:
    from gateway.state_lock import holding

    with holding(settings.state_dir):  # StateDirBusy: main says so
        return _up(settings)


def _up(settings: Settings) -> int:
    from gateway.metrics import fresh_multiprocess_dir
    from gateway.storage.embedded import EmbeddedStorage
    from gateway.supervisor import ProcessGroup, supervise

    terminate_as_interrupt()
    started = time.monotonic()
    state_dir = settings.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    run_file = state_dir / "run.json"
    run_file.unlink(missing_ok=True)
    admin_token = settings.admin_token or secrets.token_urlsafe(24)
    print("paygate up: starting storage ...", flush=True)
    with EmbeddedStorage(state_dir, settings.database_url, settings.redis_url) as storage:
        print("paygate up: migrating and seeding demo merchants ...", flush=True)
        sink_url = f"http://{settings.host}:{settings.sink_port}"
        merchants, login = asyncio.run(_prepare(settings, storage.database_url, sink_url))
        secrets_file = state_dir / "sink-secrets.json"
        write_secret_file(secrets_file, orjson.dumps({m["id"]: m["secret"] for m in merchants}))
        env = {
            "PAYGATE_DATABASE_URL": storage.database_url,
            "PAYGATE_REDIS_URL": storage.redis_url,
            "PAYGATE_ADMIN_TOKEN": admin_token,
            "PAYGATE_TIME_SCALE": str(settings.time_scale),
            "PAYGATE_LOG_FORMAT": settings.log_format,
            "PAYGATE_BANK_SIM_URL": f"http://{settings.host}:{settings.bank_port}",
            "PAYGATE_CALLBACK_URL": f"http://{settings.host}:{settings.port}",
            "PAYGATE_BANK_MASTER_SECRET": settings.bank_master_secret,
            # Every child writes its metrics here: any gateway's /metrics shows them all.
            **fresh_multiprocess_dir(state_dir / "metrics"),
        }
        group = ProcessGroup(env)
        gateway_url = f"http://{settings.host}:{settings.port}"
        bank_url = f"http://{settings.host}:{settings.bank_port}"
        try:
            print("paygate up: starting gateway, bank simulator, workers ...", flush=True)
            group.spawn_paygate(
                "gateway",
                ["serve", "--port", str(settings.port), "--workers", str(settings.workers)],
            )
            bank_args = ["bank-sim", "--port", str(settings.bank_port),
                         "--books", str(state_dir / "bank-books.sqlite3")]  # fmt: skip
            if settings.seed is not None:
                bank_args += ["--seed", str(settings.seed)]
            # Background work yields the CPU to acceptance when they compete: the worker
            # catches up later, a merchant waiting on its request does not.
            nice = settings.background_nice
            group.spawn_paygate("bank-sim", bank_args, nice=nice)
            group.spawn_paygate("worker", ["worker"], nice=nice)
            group.spawn_paygate("webhook-sink", [
                "webhook-sink", "--port", str(settings.sink_port),
                "--secrets-file", str(secrets_file)], nice=nice)  # fmt: skip
            deadline = time.monotonic() + UP_READY_TIMEOUT_S
            for url in (f"{gateway_url}/readyz", f"{bank_url}/healthz", f"{sink_url}/healthz"):
                if not _wait_healthy(url, deadline):
                    log.error("did not become healthy in time", extra={"url": url})
                    return 1
            info = {
                "gateway_url": gateway_url,
                "bank_sim_url": bank_url,
                "webhook_sink_url": sink_url,
                "admin_token": admin_token,
                "console_url": f"{gateway_url}/console/",
                "console_user": login["user"],
                "console_password": login["password"],
                "database_url": storage.database_url,
                "redis_url": storage.redis_url,
                "time_scale": settings.time_scale,
                "merchants": merchants,
                "pid": os.getpid(),
                # Each child's process (with its own children: --workers N) and the embedded
                # storage's; rewritten whenever the supervisor restarts one.
                "pids": {"up": os.getpid(), **group.pids(), **storage.pids()},
            }

            def write_run_file() -> None:
                info["pids"] = {"up": os.getpid(), **group.pids(), **storage.pids()}
                # Mode 600 (it holds the admin token, the console login and merchants'
                # secrets); readers never see half a file.
                write_secret_file(run_file, orjson.dumps(info, option=orjson.OPT_INDENT_2))

            write_run_file()
            took = time.monotonic() - started
            print(
                f"paygate up: ready in {took:.1f}s — gateway {gateway_url}, bank simulator "
                f"{bank_url}; details in {run_file} (Ctrl-C stops everything)",
                flush=True,
            )
            return supervise(group, storage.watched(), on_change=write_run_file)
        except KeyboardInterrupt:
            return 0
        finally:
            group.stop_all()
            run_file.unlink(missing_ok=True)
            print("paygate up: stopped", flush=True)


def read_run_file(state_dir: Path = Path(".paygate")) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((state_dir / "run.json").read_bytes())
    return data
