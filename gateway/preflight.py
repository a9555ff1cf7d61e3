"""What `paygate <command>` checks before it starts anything (issue 22). A newcomer's first
mistakes (a port another program holds, a database or Redis URL with nothing behind it, a
state directory that cannot be written, a file that is not there, a date that is not one) are
each answered with one line naming the cause and the fix, and exit status 2 (`cli.main`), not
a traceback or a supervisor giving up after five restarts."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson

from gateway.settings import Settings
from gateway.state_lock import ensure_free

EXIT_STATUS = 2
CONNECT_TIMEOUT_S = 2.0  # a store on this network answers a connect within this


class PreflightError(Exception):
    """One line: the cause, a colon, the fix."""


def check(args: argparse.Namespace, settings: Settings) -> None:
    """Everything `args.command` can check before starting: PreflightError (StateDirBusy for a
    state directory another paygate runs on) on the first problem found."""
    command_checks = CHECKS.get(args.command)
    if command_checks is not None:
        command_checks(args, settings)


# --- one function per command --------------------------------------------------------------


def _up(args: argparse.Namespace, settings: Settings) -> None:
    """`up`, and `demo` (which runs `up` on the same state directory and ports)."""
    writable_dir(settings.state_dir)
    ensure_free(settings.state_dir)  # before the ports: a second `up` is told so, by pid
    at_least_one(settings.workers, "--workers")
    ports_free(settings.host, [(settings.port, "--port"), (settings.bank_port, "--bank-port"),
                               (settings.sink_port, "--sink-port")])  # fmt: skip
    stores_reachable(settings)


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    storage_given(settings)
    at_least_one(settings.workers, "--workers")
    if not args.reuse_port:  # a --reuse-port process shares the port its parent checked
        ports_free(settings.host, [(settings.port, "--port")], reuse_port=settings.workers > 1)
    if not supervised():
        stores_reachable(settings)


def _worker(args: argparse.Namespace, settings: Settings) -> None:
    storage_given(settings)
    if not settings.bank_sim_url:
        raise PreflightError(
            "PAYGATE_BANK_SIM_URL is not set: point it at a running `paygate bank-sim`,"
            " or run `paygate up`, which starts one"
        )
    if settings.metrics_port:
        ports_free(settings.host, [(settings.metrics_port, "PAYGATE_METRICS_PORT")])
    if not supervised():
        stores_reachable(settings)


def _bank_sim(args: argparse.Namespace, settings: Settings) -> None:
    ports_free(settings.host, [(settings.bank_port, "--port")])
    books: Path = args.books or settings.state_dir / "bank-books.sqlite3"
    writable_dir(books.parent, subject=f"the bank's books' directory {books.parent}",
                 fix="pass --books with a path in a directory you can write")  # fmt: skip


def _webhook_sink(args: argparse.Namespace, settings: Settings) -> None:
    ports_free(settings.host, [(args.port or settings.sink_port, "--port")])
    if args.secrets_file is not None:
        try:
            found = orjson.loads(args.secrets_file.read_bytes())
            if not isinstance(found, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise PreflightError(
                f"the secrets file {args.secrets_file} cannot be used ({_reason(exc)}): pass"
                " --secrets-file with a JSON object of merchant id to secret"
            ) from None


def _migrate(args: argparse.Namespace, settings: Settings) -> None:
    if settings.database_url:
        database_reachable(settings.database_url)
    else:
        writable_dir(settings.state_dir)


def _bench(args: argparse.Namespace, settings: Settings) -> None:
    writable_dir(settings.state_dir)
    if args.only == "ratelimit":
        if settings.redis_url:
            redis_reachable(settings.redis_url)
        return
    at_least_one(args.workers, "--workers")
    at_least_one(args.generators, "--generators")
    stores_reachable(settings)  # the benchmark's `up` uses them when they are set


def _scenario(args: argparse.Namespace, settings: Settings) -> None:
    if args.action == "list":
        return
    path: Path | None = args.file
    if path is None:
        raise PreflightError(
            "no scenario file given: name one, e.g. `paygate scenario run"
            " scenarios/steady-day.yaml` (`paygate scenario list` shows them)"
        )
    if not path.is_file():
        raise PreflightError(
            f"scenario file {path} does not exist: name an existing YAML file"
            " (`paygate scenario list` shows the shipped ones)"
        )
    from loadtest.scenarios.model import ScenarioError, load_scenario

    try:
        load_scenario(path)
    except ScenarioError as exc:
        raise PreflightError(
            f"{exc}: correct the file (the ones in scenarios/ show the format)"
        ) from None
    writable_dir(settings.state_dir)
    stores_reachable(settings)  # the scenario's `up` uses them when they are set


def _reconcile(args: argparse.Namespace, settings: Settings) -> None:
    try:
        datetime.strptime(args.date, "%Y-%m-%d")
    except ValueError:
        raise PreflightError(
            f"--date {args.date!r} is not a date: write it as YYYY-MM-DD, e.g. 2025-01-31"
        ) from None
    run_file = settings.state_dir / "run.json"
    try:
        gateway_url = str(orjson.loads(run_file.read_bytes())["gateway_url"])
    except (OSError, ValueError, KeyError, TypeError):
        raise PreflightError(
            f"no gateway is running here (no readable {run_file}): start `paygate up` first,"
            " or set PAYGATE_STATE_DIR to the directory it runs in"
        ) from None
    try:
        with urllib.request.urlopen(f"{gateway_url}/healthz", timeout=CONNECT_TIMEOUT_S):
            pass
    except urllib.error.HTTPError:
        pass  # something answers: the command itself reports what the gateway says
    except OSError as exc:
        raise PreflightError(
            f"the gateway at {gateway_url} is not answering ({_reason(exc)}): start"
            f" `paygate up` ({run_file} is left from a run that has stopped)"
        ) from None


CHECKS: dict[str, Callable[[argparse.Namespace, Settings], None]] = {
    "up": _up,
    "demo": _up,
    "serve": _serve,
    "worker": _worker,
    "bank-sim": _bank_sim,
    "webhook-sink": _webhook_sink,
    "migrate": _migrate,
    "bench": _bench,
    "scenario": _scenario,
    "reconcile": _reconcile,
}


# --- the checks ------------------------------------------------------------------------------


def writable_dir(
    directory: Path,
    subject: str = "",
    fix: str = "set PAYGATE_STATE_DIR to a directory you can write",
) -> None:
    """`directory` exists (made if missing) and a file can be written in it."""
    subject = subject or f"the state directory {directory}"
    probe = directory / f".paygate-write-check-{uuid.uuid4().hex}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PreflightError(f"{subject} is not writable ({_reason(exc)}): {fix}") from None


def at_least_one(value: int, flag: str) -> None:
    if value < 1:
        raise PreflightError(f"{flag} is {value}: pass 1 or more")


def ports_free(host: str, ports: list[tuple[int, str]], *, reuse_port: bool = False) -> None:
    """Each port can be listened on at `host`, and no two are the same. Bound as the servers
    bind (SO_REUSEADDR): a port a crashed server left in TIME_WAIT is free."""
    seen: dict[int, str] = {}
    for port, flag in ports:
        if not 0 < port < 65536:
            raise PreflightError(f"{flag} {port} is not a port: pass a number from 1 to 65535")
        if port in seen:
            raise PreflightError(f"{seen[port]} and {flag} are both {port}: give each its own")
        seen[port] = flag
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )[0]
            with socket.socket(family, kind, proto) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if reuse_port:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                s.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PreflightError(
                    f"port {port} is in use: pass {flag} or stop the other program"
                ) from None
            raise PreflightError(
                f"cannot listen on {host}:{port} ({_reason(exc)}): set PAYGATE_HOST to an"
                " address of this machine, e.g. 127.0.0.1"
            ) from None


def supervised() -> bool:
    """A child of `paygate up` (or `serve --workers N`): its parent checked the stores when it
    started, and a store down by the time the supervisor restarts this child is an outage the
    supervisor and the 503 path deal with, not a mistake to refuse."""
    return bool(os.environ.get("PAYGATE_PARENT_PID"))


def storage_given(settings: Settings) -> None:
    if not settings.database_url or not settings.redis_url:
        raise PreflightError(
            "PAYGATE_DATABASE_URL and PAYGATE_REDIS_URL must both be set: point them at"
            " PostgreSQL and Redis, or run `paygate up`, which starts its own"
        )


def stores_reachable(settings: Settings) -> None:
    """The stores the settings point at answer (an empty URL: embedded, nothing to check),
    and a read URL names a standby of a database given by URL."""
    if settings.database_url:
        database_reachable(settings.database_url)
    if settings.database_read_url:
        replica_reachable(settings)
    if settings.redis_url:
        redis_reachable(settings.redis_url)


def _in_recovery(url: str) -> bool:
    """Connect to `url` and ask whether it is a standby (raises what the connect raises)."""
    import asyncpg

    async def ask() -> bool:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
        try:
            return bool(await conn.fetchval("SELECT pg_is_in_recovery()"))
        finally:
            await conn.close()

    return asyncio.run(ask())


def _database_errors() -> tuple[type[BaseException], ...]:
    import asyncpg

    return (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError)


def database_reachable(url: str) -> None:
    try:
        _in_recovery(url)
    except _database_errors() as exc:
        raise PreflightError(
            f"the database at {_safe(url)} is not reachable ({_reason(exc)}): start PostgreSQL"
            " there, correct PAYGATE_DATABASE_URL, or unset it to use the embedded one"
        ) from None


def replica_reachable(settings: Settings) -> None:
    """PAYGATE_DATABASE_READ_URL: a streaming standby of PAYGATE_DATABASE_URL that answers."""
    url = settings.database_read_url
    if not settings.database_url:
        raise PreflightError(
            "PAYGATE_DATABASE_READ_URL is set but PAYGATE_DATABASE_URL is not: a read replica"
            " is of a primary named by URL; set PAYGATE_DATABASE_URL or unset the read URL"
        )
    try:
        standby = _in_recovery(url)
    except _database_errors() as exc:
        raise PreflightError(
            f"the read replica at {_safe(url)} is not reachable ({_reason(exc)}): start it,"
            " correct PAYGATE_DATABASE_READ_URL, or unset it to read everything from the primary"
        ) from None
    if not standby:
        raise PreflightError(
            f"the read replica at {_safe(url)} is not a standby (pg_is_in_recovery() is false):"
            " point PAYGATE_DATABASE_READ_URL at a streaming replica of PAYGATE_DATABASE_URL,"
            " or unset it"
        )


def redis_reachable(url: str) -> None:
    import redis.asyncio as aioredis
    import redis.exceptions

    from gateway.storage.pools import cluster_url, create_redis_cluster

    async def ping() -> None:
        cluster = cluster_url(url)
        if cluster is not None:  # reads the slot map from the first node that answers
            nodes = create_redis_cluster(cluster)
            try:
                await nodes.initialize()
            finally:
                await nodes.aclose()
            return
        client = aioredis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CONNECT_TIMEOUT_S
        )
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        asyncio.run(ping())
    except (OSError, TimeoutError, ValueError, redis.exceptions.RedisError,
            redis.exceptions.RedisClusterException) as exc:  # fmt: skip
        raise PreflightError(
            f"Redis at {_safe(url)} is not reachable ({_reason(exc)}): start Redis there,"
            " correct PAYGATE_REDIS_URL, or unset it to use the embedded one"
        ) from None


def _reason(exc: BaseException) -> str:
    """An exception as a few words on one line."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _safe(url: str) -> str:
    """`url` without its password, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
