"""The `paygate` command: up, serve, worker, bank-sim, migrate, partitions, reconcile,
operator (SPEC 3, 10, 15, 17)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import logs
from gateway.cli.bench import cmd_bench, cmd_bench_ratelimit, cmd_bench_request_cost
from gateway.cli.operators import cmd_operator_add
from gateway.cli.partitions import cmd_partitions
from gateway.cli.reconcile import cmd_reconcile
from gateway.cli.scenario import cmd_demo, cmd_scenario_list, cmd_scenario_run
from gateway.cli.services import (
    cmd_bank_sim,
    cmd_migrate,
    cmd_serve,
    cmd_webhook_sink,
    cmd_worker,
)
from gateway.cli.up import cmd_up
from gateway.settings import Settings, SettingsError


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
        choices=("all", "accept", "ratelimit", "request-cost"),
        default="all",
        help="all phases; only acceptance at saturation (spread and hot, the hot ÷ spread "
        "ratio); only the rate-limiter micro-benchmark; or only the gateway's CPU per signed "
        "no-op and per payout accept",
    )
    bench.add_argument("--quick", action="store_true", help="short phases (about 1.5 minutes)")
    bench.add_argument("--workers", type=int, default=1, help="gateway processes (1)")
    bench.add_argument(
        "--generators",
        type=int,
        default=1,
        help="load generator processes (1); more when one would be the limit",
    )
    bench.add_argument("--seconds", type=float, default=None,
                       help="ratelimit: per contender (3); request-cost: per run (20)")  # fmt: skip
    bench.add_argument("--rate", type=float, default=1000.0, help="request-cost: requests/s")
    bench.add_argument("--rounds", type=int, default=3, help="request-cost: runs per workload")
    bench.add_argument("--workload", choices=("all", "noop", "payouts"), default="all",
                       help="request-cost: which requests")  # fmt: skip
    bench.add_argument("--against", type=Path, action="append", default=[],
                       help="request-cost: another checkout, measured in turns")  # fmt: skip
    bench.add_argument("--callers", type=int, default=64, help="ratelimit: concurrent callers")
    _add_common(bench)

    operator = sub.add_parser("operator", help="console operators (SPEC 17)")
    operator.add_argument("action", choices=("add",))
    operator.add_argument("name", help="the operator's login name")
    operator.add_argument("--role", required=True,
                          choices=("viewer", "operator", "approver", "admin"))  # fmt: skip
    operator.add_argument(
        "--password-file",
        type=Path,
        default=None,
        help="the password, from this file (else one is printed once)",
    )
    _add_common(operator)

    migrate = sub.add_parser("migrate", help="apply schema migrations")
    _add_common(migrate)

    parts = sub.add_parser("partitions", help="monthly partitions: list, make ahead, detach")
    parts.add_argument("--ahead", type=int, default=None, help="make months up to N ahead")
    parts.add_argument("--detach", metavar="YYYY-MM", default=None,
                       help="detach this settled month from every partitioned table")  # fmt: skip
    _add_common(parts)

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
    if command == "partitions":
        sys.exit(cmd_partitions(settings, args.ahead, args.detach))
    if command == "operator":
        sys.exit(cmd_operator_add(settings, args.name, args.role, args.password_file))
    if command == "bench":
        if args.only == "ratelimit":
            sys.exit(cmd_bench_ratelimit(settings, args.seconds or 3.0, args.callers))
        if args.only == "request-cost":
            sys.exit(cmd_bench_request_cost(settings, args.rate, args.seconds or 20.0,
                                            args.rounds, args.workload, args.against))  # fmt: skip
        sys.exit(cmd_bench(settings, args.quick, args.workers, args.generators, args.only))
    if command == "demo":
        sys.exit(cmd_demo(settings, args.duration, args.rate, args.time_scale))
    if command == "scenario":
        if args.action == "list":
            sys.exit(cmd_scenario_list(args.dir))
        sys.exit(cmd_scenario_run(settings, args.file, args.speed == "fast"))
    if command == "reconcile":
        sys.exit(cmd_reconcile(settings, args.bank, args.date, args.apply, args.json))
    raise AssertionError(command)
