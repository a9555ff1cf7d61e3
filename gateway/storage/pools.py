"""Creating the PostgreSQL pool and the Redis client from settings (closed by their owner)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote

import asyncpg
import orjson
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from gateway.metrics import Metrics, in_hop
from gateway.settings import Settings
from protocol.clock import ClockAnchor, SimClock

log = logging.getLogger("paygate.storage")

# What a store that is down or restarting raises (SPEC 14): a request answers 503 and a worker
# round waits and tries again, each with one line in the log instead of a traceback.
STORAGE_DOWN: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted, broken pipe: the server is not there
    FileNotFoundError,  # its unix socket is gone: the store is restarting
    asyncpg.PostgresConnectionError,  # the connection broke mid-statement
    asyncpg.CannotConnectNowError,  # starting up, crash recovery
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    redis.exceptions.ConnectionError,
    # Redis Cluster: a slot whose master is down or failing over, no reachable node at all.
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.RedisClusterUnreachableError,
)
# Not in it: timeouts (a slow statement or a lock wait is not an outage) and anything else.


def storage_down(exc: BaseException) -> bool:
    """`exc` says a store is down: one of STORAGE_DOWN, or asyncpg refusing to go on with a
    connection that broke under it. The caller then replaces the pool's connections."""
    if isinstance(exc, STORAGE_DOWN):
        return True
    if isinstance(exc, asyncpg.InternalClientError):
        # A connection left in a broken protocol state by a break (seen after a PostgreSQL
        # SIGKILL); callers log these with their traceback, in case it is ours.
        return True
    # e.g. a transaction's exit on a connection closed by one of the above (InternalClientError
    # included: a SIGKILLed PostgreSQL can leave the protocol mid-operation).
    context = exc.__context__
    return isinstance(exc, asyncpg.InterfaceError) and context is not None and storage_down(context)


def postgres_down(exc: BaseException) -> bool:
    """A store is down and it is PostgreSQL: its pool's connections are to be replaced."""
    return storage_down(exc) and not isinstance(
        exc, (redis.exceptions.RedisError, redis.exceptions.RedisClusterException)
    )


# What asyncpg takes for an array parameter and for a nested array inside one. It asks
# `isinstance(x, collections.abc.Iterable)` of the parameter and of every element (to find
# nested arrays), and an ABC's isinstance is a Python-level call: ~0.2 µs an element, ~50
# elements per payout in each of the gateway and the worker (batched statements pass columns
# as arrays). Against these concrete types the check is C. Anything else passed as an array
# (a generator, a dict view) is refused with asyncpg's TypeError, never encoded differently.
ARRAY_TYPES: tuple[type, ...] = (list, tuple, set, frozenset)


def lean_array_checks() -> bool:
    """Point asyncpg's array-shape check at ARRAY_TYPES (its module global `IterableABC`,
    read at each call); False, changing nothing, where this asyncpg has no such global."""
    from asyncpg.protocol import protocol

    if not hasattr(protocol, "IterableABC"):
        return False
    protocol.IterableABC = ARRAY_TYPES
    return True


async def init_connection(conn: asyncpg.Connection) -> None:
    """jsonb in and out as Python objects (orjson); asyncpg's lean array checks."""
    lean_array_checks()
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Nothing to undo on release: Paygate never changes session state (no SET, LISTEN,
    cursors or advisory session locks), and asyncpg still rolls back an open transaction.
    The default reset costs a round trip per checkout."""


async def create_pg_pool(
    settings: Settings,
    metrics: Metrics | None = None,
    url: str | None = None,
    *,
    generic_plans: bool = False,
    max_size: int | None = None,
) -> asyncpg.Pool:
    """The pool to the primary, or to `url` (the read replica: `create_read_pool`).
    `generic_plans`: its connections run prepared statements on their generic plans, planned
    once (`plan_cache_mode`, a connection parameter: no SET); for statements whose plans do
    not depend on their values, which tests/integration/test_partitions.py checks for the
    payout path's (each reads no more partitions than when planned for its values).
    `max_size`: at most this many connections (else `db_pool_max`)."""
    server_settings = {"application_name": "paygate"}
    if generic_plans:
        server_settings["plan_cache_mode"] = "force_generic_plan"

    async def init(conn: asyncpg.Connection) -> None:
        await init_connection(conn)
        if metrics is not None:
            conn.add_query_logger(metrics.on_query)

    pool = await asyncpg.create_pool(
        url or settings.database_url,
        min_size=min(settings.db_pool_min, max_size or settings.db_pool_max),
        max_size=max_size or settings.db_pool_max,
        command_timeout=settings.db_command_timeout_s,
        server_settings=server_settings,
        init=init,
        reset=_no_reset,
    )
    assert pool is not None
    return pool


async def create_read_pool(
    settings: Settings, metrics: Metrics | None = None
) -> asyncpg.Pool | None:
    """The pool to the streaming replica for merchant lists (None without a read URL). A
    replica that does not answer at start-up is not fatal: min_size 0, and the lag sampler
    (storage/replica.py) keeps lists on the primary until it answers."""
    if not settings.database_read_url:
        return None
    replica = settings.with_(db_pool_min=0)
    return await create_pg_pool(replica, metrics, settings.database_read_url)


CLUSTER_SCHEME = "redis+cluster"


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    """`redis+cluster://[user:password@]host:port[,host:port...]`: a Redis Cluster reached
    through any of these nodes (SPEC 15)."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None


def cluster_url(url: str) -> ClusterUrl | None:
    """The cluster a `redis+cluster://` URL names, or None for a single server's URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != CLUSTER_SCHEME:
        return None
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    creds, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, pw = creds.partition(":")
        username, password = (unquote(user) or None), (unquote(pw) if colon else None)
    nodes = []
    for part in hosts.split(","):
        host, colon, port = part.strip().rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"a Redis Cluster node must be host:port, got {part!r}")
        nodes.append((host.strip("[]"), int(port)))
    return ClusterUrl(tuple(nodes), username, password)


RedisClient = aioredis.Redis | RedisCluster


def create_redis(settings: Settings) -> RedisClient:
    cluster = cluster_url(settings.redis_url)
    if cluster is not None:
        return create_redis_cluster(cluster)
    # A blocking pool: under a burst, callers wait briefly for a connection instead of
    # failing (redis-py's default pool raises when it runs out).
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=256,
        timeout=1.0,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        health_check_interval=5,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool and closes it


def create_redis_cluster(cluster: ClusterUrl) -> RedisCluster:
    """A cluster client: each key's command goes to its slot's master (never a replica, whose
    copy may lag). While a master is down its slots' calls fail fast (one retry after the
    client has read the slot map again), so callers answer 503 and recover by themselves once
    a replica has taken over."""
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster.nodes],
        username=cluster.username,
        password=cluster.password,
        max_connections=256,  # per node
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        require_full_coverage=False,  # a slot without a master fails alone, not the cluster
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
    )


async def load_clock(pool: asyncpg.Pool, default_scale: float) -> SimClock:
    """The shared clock anchor; the first process to start writes it."""
    now = time.time()
    row = await pool.fetchrow(
        """INSERT INTO sim_clock (id, wall_s, sim_s, scale) VALUES (1, $1, $1, $2)
           ON CONFLICT (id) DO UPDATE SET id = 1 RETURNING wall_s, sim_s, scale""",
        now,
        default_scale,
    )
    return SimClock(ClockAnchor(wall_s=row["wall_s"], sim_s=row["sim_s"], scale=row["scale"]))


async def save_clock(conn: asyncpg.Pool | asyncpg.Connection, clock: SimClock) -> None:
    a = clock.anchor
    await conn.execute(
        "UPDATE sim_clock SET wall_s = $1, sim_s = $2, scale = $3 WHERE id = 1",
        a.wall_s,
        a.sim_s,
        a.scale,
    )


async def move_clock(
    pool: asyncpg.Pool, clock: SimClock, by_s: float | None = None, to_s: float | None = None
) -> None:
    """Jump the shared clock forward by `by_s`, or to `to_s` unless it is already there (so
    a retried jump to a time moves it once). Reads the stored anchor under its row's lock
    first: this process's copy may be up to CLOCK_REFRESH_S behind another's jump, and a
    jump from it would take that jump back."""
    assert (by_s is None) != (to_s is None), "one of by_s and to_s"
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT wall_s, sim_s, scale FROM sim_clock WHERE id = 1 FOR UPDATE"
        )
        assert row is not None, "load_clock wrote the anchor at start-up"
        clock.set_anchor(ClockAnchor(wall_s=row["wall_s"], sim_s=row["sim_s"], scale=row["scale"]))
        jump_s = by_s if to_s is None else to_s - clock.now_s()
        assert jump_s is not None
        if jump_s > 0:
            clock.advance(jump_s)
            await save_clock(conn, clock)


CLOCK_REFRESH_S = 0.2


async def follow_clock(
    pool: asyncpg.Pool,
    clock: SimClock,
    stop: asyncio.Event,
    moved: Callable[[ClockAnchor], Awaitable[bool]] | None = None,
) -> None:
    """Keep `clock` on the shared anchor, so an operator or a test moving simulated time
    (`save_clock`) moves it in every process within CLOCK_REFRESH_S. `moved` is told the
    anchor first thing and after every change (again at each refresh until it answers True):
    the workers hand it to the bank simulator."""
    in_hop("clock")
    told: ClockAnchor | None = None
    while not stop.is_set():
        try:
            row = await pool.fetchrow("SELECT wall_s, sim_s, scale FROM sim_clock WHERE id = 1")
            if row is not None:
                anchor = ClockAnchor(wall_s=row["wall_s"], sim_s=row["sim_s"], scale=row["scale"])
                if anchor != clock.anchor:
                    clock.set_anchor(anchor)
            if moved is not None and clock.anchor != told and await moved(clock.anchor):
                told = clock.anchor
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("could not refresh the clock anchor", extra={"error": repr(exc)})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=CLOCK_REFRESH_S)
