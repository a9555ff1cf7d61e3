"""The `paygate` command: up, serve, worker, bank-sim, migrate, reconcile (SPEC 3, 10)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from gateway import logs
from gateway.settings import Settings, SettingsError

log = logging.getLogger("paygate.cli")

UP_READY_TIMEOUT_S = 30.0


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-format", choices=("json", "text"), default=None)
    p.add_argument("--log-level", default=None)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paygate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="storage, migrations, gateway, bank simulator, workers")
    up.add_argument("--port", type=int, default=None, help="gateway port (default 8080)")
    up.add_argument("--bank-port", type=int, default=None, help="bank simulator port (8090)")
    up.add_argument("--sink-port", type=int, default=None, help="demo webhook sink port (8091)")
    up.add_argument("--seed", type=int, default=None, help="bank simulator random seed")
    up.add_argument("--time-scale", type=float, default=None, help="simulated seconds per second")
    up.add_argument("--workers", type=int, default=None, help="gateway processes on one port")
    _add_common(up)

    serve = sub.add_parser("serve", help="the gateway HTTP API only")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=None, help="processes on one port")
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    _add_common(serve)

    worker = sub.add_parser("worker", help="background workers only")
    _add_common(worker)

    sink = sub.add_parser("webhook-sink", help="the demo merchants' notification endpoint")
    sink.add_argument("--port", type=int, default=None, help="(default 8091)")
    sink.add_argument("--secrets-file", type=Path, default=None, help="JSON {merchant: secret}")
    _add_common(sink)

    bank = sub.add_parser("bank-sim", help="the bank simulator only")
    bank.add_argument("--host", default=None)
    bank.add_argument("--port", type=int, default=None, help="(default 8090)")
    bank.add_argument("--seed", type=int, default=None)
    bank.add_argument(
        "--books", type=Path, default=None,
        help="the bank's books, a SQLite file that survives restarts "
        "(default <state dir>/bank-books.sqlite3)",
    )  # fmt: skip
    _add_common(bank)

    demo = sub.add_parser("demo", help="up + ~30 s of mixed load + summary + HTML report")
    demo.add_argument("--duration", type=float, default=30.0, help="seconds of load (30)")
    demo.add_argument("--rate", type=float, default=120.0, help="base requests/s (120)")
    demo.add_argument("--time-scale", type=float, default=60.0, help="simulated s per s (60)")
    demo.add_argument("--port", type=int, default=None)
    demo.add_argument("--bank-port", type=int, default=None)
    demo.add_argument("--sink-port", type=int, default=None)
    _add_common(demo)

    scenario = sub.add_parser("scenario", help="run or list scenarios (SPEC 12)")
    scenario.add_argument("action", choices=("run", "list"))
    scenario.add_argument("file", nargs="?", type=Path, help="run: the scenario's YAML file")
    fast_help = "fast: the same timeline and assertions in less wall time"
    scenario.add_argument("--speed", choices=("normal", "fast"), default="normal", help=fast_help)
    scenario.add_argument("--dir", type=Path, default=Path("scenarios"), help="list: where")
    _add_common(scenario)

    bench = sub.add_parser("bench", help="the benchmark (SPEC 13): ceilings, acceptance, e2e")
    bench.add_argument(
        "--only",
        choices=("all", "ratelimit"),
        default="all",
        help="all phases, or only the rate-limiter micro-benchmark",
    )
    bench.add_argument("--quick", action="store_true", help="short phases (about 1.5 minutes)")
    bench.add_argument("--workers", type=int, default=1, help="gateway processes (1)")
    bench.add_argument(
        "--generators",
        type=int,
        default=1,
        help="load generator processes (1); more when one would be the limit",
    )
    bench.add_argument("--seconds", type=float, default=3.0, help="ratelimit: per contender")
    bench.add_argument("--callers", type=int, default=64, help="ratelimit: concurrent callers")
    _add_common(bench)

    migrate = sub.add_parser("migrate", help="apply schema migrations")
    _add_common(migrate)

    recon = sub.add_parser("reconcile", help="reconcile a bank's statement (the running gateway)")
    recon.add_argument("--bank", required=True, help="bank channel id, e.g. 102")
    recon.add_argument("--date", required=True, help="business date, YYYY-MM-DD")
    recon.add_argument("--apply", action="store_true", help="apply the safe differences")
    recon.add_argument("--json", action="store_true", help="print the JSON report")
    _add_common(recon)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    port = getattr(args, "port", None)
    if args.command == "bank-sim":
        # The simulator's own --port is the bank port.
        return Settings.from_env(
            host=args.host, bank_port=port, seed=args.seed,
            log_format=args.log_format, log_level=args.log_level,
        )  # fmt: skip
    return Settings.from_env(
        port=port,
        host=getattr(args, "host", None),
        bank_port=getattr(args, "bank_port", None),
        sink_port=getattr(args, "sink_port", None),
        seed=getattr(args, "seed", None),
        time_scale=getattr(args, "time_scale", None),
        workers=getattr(args, "workers", None),
        log_format=args.log_format,
        log_level=args.log_level,
    )


def main(argv: Sequence[str] | None = None) -> None:
    from gateway.preflight import EXIT_STATUS, PreflightError, check
    from gateway.state_lock import StateDirBusy

    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        logs.configure(settings.log_format, settings.log_level)
        check(args, settings)
        _run(args, settings)
    except (PreflightError, StateDirBusy, SettingsError) as exc:
        # A mistake found before anything started: one line, the cause and the fix.
        print(f"paygate {args.command}: {exc}", file=sys.stderr)
        sys.exit(EXIT_STATUS)


def _run(args: argparse.Namespace, settings: Settings) -> None:
    command = args.command
    if command == "up":
        sys.exit(cmd_up(settings))
    if command == "serve":
        sys.exit(cmd_serve(settings, reuse_port=args.reuse_port))
    if command == "worker":
        sys.exit(cmd_worker(settings))
    if command == "bank-sim":
        sys.exit(cmd_bank_sim(settings, args.books))
    if command == "webhook-sink":
        sys.exit(cmd_webhook_sink(settings, args.port or settings.sink_port, args.secrets_file))
    if command == "migrate":
        sys.exit(cmd_migrate(settings))
    if command == "bench":
        if args.only == "ratelimit":
            sys.exit(cmd_bench_ratelimit(settings, args.seconds, args.callers))
        sys.exit(cmd_bench(settings, args.quick, args.workers, args.generators))
    if command == "demo":
        sys.exit(cmd_demo(settings, args.duration, args.rate, args.time_scale))
    if command == "scenario":
        if args.action == "list":
            sys.exit(cmd_scenario_list(args.dir))
        sys.exit(cmd_scenario_run(settings, args.file, args.speed == "fast"))
    if command == "reconcile":
        sys.exit(cmd_reconcile(settings, args.bank, args.date, args.apply, args.json))
    raise AssertionError(command)


def cmd_migrate(settings: Settings) -> int:
    from gateway.storage.embedded import EmbeddedStorage
    from gateway.storage.migrate import migrate_url

    with EmbeddedStorage(settings.state_dir, settings.database_url, "unused") as storage:
        applied = asyncio.run(migrate_url(storage.database_url))
    print(f"migrations applied: {len(applied)} {applied}")
    return 0


def cmd_reconcile(settings: Settings, bank_id: str, day: str, apply: bool, as_json: bool) -> int:
    from gateway.recon.command import reconcile_command

    # preflight found run.json and a gateway answering at its URL
    info = read_run_file(settings.state_dir)
    return reconcile_command(info, bank_id, day, apply=apply, as_json=as_json)


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cmd_demo(settings: Settings, duration_s: float, rate: float, time_scale: float) -> int:
    from loadtest.reports.run_reports import write_scenario_report
    from loadtest.scenarios.demo import (
        DEMO_SCENARIO,
        demo_scenario,
        print_table,
        save_json,
        say,
        summary_rows,
    )
    from loadtest.scenarios.model import ScenarioError
    from loadtest.scenarios.run import drive, last_line
    from loadtest.system.up import running_system

    try:
        sc = demo_scenario(DEMO_SCENARIO, duration_s, rate, time_scale)
    except ScenarioError as exc:
        print(f"paygate demo: {exc}", file=sys.stderr)
        return 2
    _terminate_as_interrupt()
    started = time.monotonic()
    say("starting paygate (storage, gateway, bank simulator, workers, webhook sink) ...")
    env = {"PAYGATE_TIME_SCALE": str(time_scale)}
    try:
        with running_system(settings.state_dir, port=settings.port,
                            bank_port=settings.bank_port, sink_port=settings.sink_port,
                            env=env) as info:  # fmt: skip
            say(f"up in {time.monotonic() - started:.1f}s at {info['gateway_url']} "
                f"(simulated time x{time_scale:g})")  # fmt: skip
            # Its own merchants each run (scenarios/demo.yaml): every run tells the same story.
            outcome = asyncio.run(drive(info, settings.state_dir, sc, fast=False))
            say("stopping ...")
    except KeyboardInterrupt:
        say("interrupted; everything stopped")
        return 130
    rows = summary_rows(outcome)
    print_table(rows)
    stamp = _stamp()
    reports = settings.state_dir / "reports"
    data = save_json(outcome, reports, stamp)
    report = write_scenario_report(reports / f"demo-{stamp}.html", outcome, rows)
    say(f"report: {report.resolve()}")
    say(f"data:   {data.resolve()}")
    print(last_line(outcome), flush=True)
    return 0 if outcome.passed else 1


def cmd_bench(settings: Settings, quick: bool, workers: int = 1, generators: int = 1) -> int:
    from dataclasses import replace

    from gateway.state_lock import wipe
    from loadtest.bench.run import BenchPlan, run_bench, say, table
    from loadtest.reports.run_reports import write_bench_report
    from loadtest.system.up import running_system

    plan = replace(BenchPlan.quick() if quick else BenchPlan.full(),
                   generator_processes=generators, gateway_processes=workers)  # fmt: skip
    state_dir = settings.state_dir / "bench-run"
    # A fresh system each run (its embedded database too): numbers must not depend on history.
    wipe(state_dir)
    env = {"PAYGATE_BANK_PROFILE_PRESET": "instant", "PAYGATE_LOG_LEVEL": "WARNING"}
    say(f"starting paygate ({'quick' if quick else 'full'} run, {workers} gateway process(es), "
        f"{generators} load generator process(es)) ...")  # fmt: skip
    with running_system(state_dir, port=_free_port(), bank_port=_free_port(),
                        sink_port=_free_port(), env=env,
                        up_args=("--workers", str(workers))) as info:  # fmt: skip
        out = asyncio.run(run_bench(info, plan))
    text = table(out)
    print(text)
    stamp = _stamp()
    out_dir = settings.state_dir / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    report = write_bench_report(out_dir / f"bench-{stamp}.html", out, text)
    results = out.pop("results")
    out["results"] = {k: v.to_dict() for k, v in results.items()}
    data = out_dir / f"bench-{stamp}.json"
    data.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    say(f"took {out['took_s']}s; report: {report.resolve()}; data: {data.resolve()}")
    return 0


def cmd_scenario_list(directory: Path) -> int:
    from loadtest.scenarios.model import ScenarioError, list_scenarios

    try:
        found = list_scenarios(directory)
    except ScenarioError as exc:
        print(f"paygate scenario: {exc}", file=sys.stderr)
        return 2
    for name, description, path in found:
        print(f"{name:<16} {description}  ({path})")
    return 0


def cmd_scenario_run(settings: Settings, path: Path, fast: bool) -> int:
    from gateway.state_lock import wipe
    from loadtest.reports.run_reports import write_scenario_report
    from loadtest.scenarios.model import ScenarioError, load_scenario
    from loadtest.scenarios.run import answer_rows, drive, effective_time_scale, last_line
    from loadtest.scenarios.timeline import say
    from loadtest.system.up import running_system

    try:
        sc = load_scenario(path)
    except ScenarioError as exc:
        print(f"paygate scenario: {exc}", file=sys.stderr)
        return 2
    _terminate_as_interrupt()
    state_dir = settings.state_dir / "scenario-run"
    # A fresh system each run (its embedded database too): a scenario starts from nothing.
    wipe(state_dir)
    env = {
        "PAYGATE_TIME_SCALE": str(effective_time_scale(sc, fast)),
        "PAYGATE_BANK_PROFILE_PRESET": sc.bank_preset,
        "PAYGATE_LOG_LEVEL": "WARNING",
    }
    say(f"{sc.name}: starting paygate ({'fast' if fast else 'normal'} speed) ...")
    with running_system(state_dir, port=_free_port(), bank_port=_free_port(),
                        sink_port=_free_port(), env=env) as info:  # fmt: skip
        outcome = asyncio.run(drive(info, state_dir, sc, fast))
    rows = answer_rows(outcome)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    stamp = _stamp()
    out_dir = settings.state_dir / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    report = write_scenario_report(out_dir / f"scenario-{sc.name}-{stamp}.html", outcome, rows)
    data = out_dir / f"scenario-{sc.name}-{stamp}.json"
    data.write_bytes(orjson.dumps({"scenario": sc.name, "fast": fast, "answers": outcome.answers,
                                   "failures": outcome.failures, "timeline": outcome.timeline,
                                   "recon": outcome.recon, "load": outcome.load.to_dict()},
                                  option=orjson.OPT_INDENT_2))  # fmt: skip
    say(f"report: {report.resolve()}")
    say(f"data:   {data.resolve()}")
    print(last_line(outcome), flush=True)
    return 0 if outcome.passed else 1


def cmd_bench_ratelimit(settings: Settings, seconds: float, callers: int) -> int:
    """Runs on PAYGATE_REDIS_URL, or on an embedded Redis started for the run."""
    from gateway.server import run
    from gateway.storage.embedded import EmbeddedStorage
    from risk.bench_ratelimit import run_bench, table

    out_dir = settings.state_dir / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddedStorage(settings.state_dir, settings.database_url or "unused",
                         settings.redis_url) as storage:  # fmt: skip
        result: dict[str, Any] = {}

        async def main() -> None:
            result.update(await run_bench(storage.redis_url, callers, seconds))

        run(main())
    print(table(result))
    out = out_dir / "ratelimit.json"
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"written: {out}")
    return 0


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

    _terminate_as_interrupt()
    env = {"PAYGATE_WORKERS": "1"}
    if multiprocess_dir() is None:  # under `paygate up` the run's directory is inherited
        env |= fresh_multiprocess_dir(settings.state_dir / "metrics-serve")
    group = ProcessGroup(env)
    for i in range(settings.workers):
        group.spawn_paygate(f"gateway-{i}", ["serve", "--port", str(settings.port), "--reuse-port"])
    return supervise(group)


def _terminate_as_interrupt() -> None:
    """SIGTERM unwinds like Ctrl-C, so every `with`/`finally` stops what it started."""

    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)
    # A shell starts background jobs with SIGINT ignored; we still want Ctrl-C/kill -INT.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def cmd_worker(settings: Settings) -> int:
    from gateway.server import run, stop_event
    from gateway.workers.runner import running_workers

    async def main() -> None:
        stop = stop_event()
        async with running_workers(settings):
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


async def _prepare(settings: Settings, database_url: str, sink_url: str | None) -> list[Any]:
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
        return await ensure_demo_merchants(conn, sink_url)
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

    _terminate_as_interrupt()
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
        merchants = asyncio.run(_prepare(settings, storage.database_url, sink_url))
        secrets_file = state_dir / "sink-secrets.json"
        secrets_file.write_bytes(orjson.dumps({m["id"]: m["secret"] for m in merchants}))
        secrets_file.chmod(0o600)
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
                tmp = run_file.with_suffix(".tmp")
                tmp.write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))
                tmp.replace(run_file)  # readers never see half a file

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
