"""The processes `paygate up` supervises, each a command of its own: serve (the gateway),
worker, bank-sim, webhook-sink; and migrate."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson

from gateway.cli.common import terminate_as_interrupt
from gateway.settings import Settings

log = logging.getLogger("paygate.cli")


def cmd_serve(settings: Settings, *, reuse_port: bool = False) -> int:
    if settings.workers > 1:
        return _serve_many(settings)
    from gateway.api.app import build_app
    from gateway.server import run, serve_until_stopped

    app = build_app(settings)
    run(serve_until_stopped(app, settings.host, settings.port, name="gateway",
                            reuse_port=reuse_port))  # fmt: skip
    return 0


def _serve_many(settings: Settings) -> int:
    """N gateway processes on one port (SO_REUSEPORT), supervised until SIGINT/SIGTERM."""
    from gateway.metrics import fresh_multiprocess_dir, multiprocess_dir
    from gateway.supervisor import ProcessGroup, supervise

    terminate_as_interrupt()
    env = {"PAYGATE_WORKERS": "1"}
    if multiprocess_dir() is None:  # under `paygate up` the run's directory is inherited
        env |= fresh_multiprocess_dir(settings.state_dir / "metrics-serve")
    group = ProcessGroup(env)
    for i in range(settings.workers):
        group.spawn_paygate(f"gateway-{i}", ["serve", "--port", str(settings.port), "--reuse-port"])
    return supervise(group)


def cmd_worker(settings: Settings) -> int:
    from gateway.server import run, settle_heap, stop_event
    from gateway.workers.runner import running_workers

    async def main() -> None:
        stop = stop_event()
        async with running_workers(settings):
            settle_heap()  # as the servers do (gateway/server.py): the collector was ~6%
            await stop.wait()
            log.info("worker stopping: finishing the rounds in flight")

    run(main())
    return 0


def cmd_bank_sim(settings: Settings, books: Path | None = None) -> int:
    from channels.bank_sim.app import build_bank_sim_app
    from channels.bank_sim.config import BankSimConfig
    from gateway.server import run, serve_until_stopped

    app = build_bank_sim_app(BankSimConfig(
        seed=settings.seed, time_scale=settings.time_scale, callback_url=settings.callback_url,
        master_secret=settings.bank_master_secret, preset=settings.bank_profile_preset,
        books_path=books or settings.state_dir / "bank-books.sqlite3",
    ))  # fmt: skip
    run(serve_until_stopped(app, settings.host, settings.bank_port, name="bank-sim"))
    return 0


def cmd_webhook_sink(settings: Settings, port: int, secrets_file: Path | None) -> int:
    from gateway.server import run
    from loadtest.sink.webhook import serve_sink

    secrets = orjson.loads(secrets_file.read_bytes()) if secrets_file else {}
    run(serve_sink(settings.host, port, secrets))
    return 0


def cmd_migrate(settings: Settings) -> int:
    from gateway.storage.embedded import EmbeddedStorage
    from gateway.storage.migrate import migrate_url

    with EmbeddedStorage(settings.state_dir, settings.database_url, "unused") as storage:
        applied = asyncio.run(migrate_url(storage.database_url))
    print(f"migrations applied: {len(applied)} {applied}")
    return 0
