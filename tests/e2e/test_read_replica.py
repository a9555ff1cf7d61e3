"""PAYGATE_DATABASE_READ_URL on a real streaming replica (SPEC 15): merchant lists are read
there, and a merchant never reads older data than it has just written, even from another
gateway process and while the replica's replay is paused.

The primary is an embedded PostgreSQL of the test's own (the session's server may be the
machine's, which need not accept replication connections); the replica is made from it with
`pg_basebackup -R` and the same binaries, on a second port. Which server served a list is
read on the server side: the replica's own table-access counters (pg_stat_user_tables)."""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.client import MerchantClient
from gateway.settings import Settings
from gateway.storage.embedded import EmbeddedPostgres
from gateway.storage.migrate import migrate_url
from tests.conftest import Storage
from tests.harness import (
    ADMIN_TOKEN,
    LiveGateway,
    create_database,
    free_port,
    live_gateway,
    wait_until,
    with_database,
)
from tests.payloads import payout_body
from tests.pg_replica import Replica

pytestmark = pytest.mark.slow

DATABASE = "paygate_replica"
MAX_LAG_S = 1.5  # the Redis note lives 3 s: the test waits that long for lists to go back
REPLICA_READY_S = 30.0
BACK_ON_REPLICA_S = 30.0
# Each list and the table its SQL reads (the table whose access counter must rise on the
# replica when the replica served it).
LISTS = (
    ("/v1/payouts?limit=50", "payouts"),
    ("/v1/events?limit=50", "outbox_events"),
    ("/v1/ledger?limit=50", "postings"),
    ("/v1/accounts?limit=50", "customer_accounts"),
)


@dataclass
class Servers:
    primary_url: str
    replica_url: str
    replica: Replica


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    # Not under pytest's tmp_path: as root the servers run as another user, and any pytest
    # session starting meanwhile takes the others' access to /tmp/pytest-of-root away.
    with tempfile.TemporaryDirectory(prefix="paygate-replica-") as top:
        async with primary_and_replica(Path(top)) as found:
            yield found


@contextlib.asynccontextmanager
async def primary_and_replica(top: Path) -> AsyncIterator[Servers]:
    os.chmod(top, 0o755)  # the servers' user may enter
    primary = EmbeddedPostgres(top / "primary")
    replica = Replica(primary, top / "replica", free_port())
    primary.start()
    try:
        await create_database(with_database(primary.url, "postgres"), DATABASE)
        primary_url = with_database(primary.url, DATABASE)
        await migrate_url(primary_url)
        replica.start()
        yield Servers(primary_url, replica.url(DATABASE), replica)
    finally:
        replica.stop()
        primary.stop()


async def fetch_one(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url, timeout=2)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def replication_live(servers: Servers) -> None:
    async def in_recovery() -> bool:
        try:
            return bool(await fetch_one(servers.replica_url, "SELECT pg_is_in_recovery()"))
        except (OSError, asyncpg.PostgresError):
            return False  # still starting

    if servers.replica.process is not None and servers.replica.process.poll() is not None:
        raise AssertionError(f"the replica exited: {servers.replica.log_tail()}")
    await wait_until(in_recovery, bool, timeout_s=REPLICA_READY_S, interval_s=0.1)
    state = "SELECT string_agg(state, ',') FROM pg_stat_replication"
    await wait_until(lambda: fetch_one(servers.primary_url, state),
                     lambda s: s == "streaming", timeout_s=REPLICA_READY_S)  # fmt: skip


async def replica_scans(replica: asyncpg.Connection, table: str) -> int:
    """How often the replica has read `table` (its own counters: a list it served); a
    partitioned table's reads are its partitions' (migration 0021)."""
    value = await replica.fetchval(
        """SELECT sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)) FROM pg_stat_user_tables
           WHERE relid = $1::regclass
              OR relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)""",
        table,
    )
    return int(value or 0)


async def listed(client: MerchantClient, path: str) -> list[dict[str, Any]]:
    resp = await client.get(path)
    assert resp.status == 200, resp.body
    rows: list[dict[str, Any]] = resp.json()["data"]
    return rows


async def served_by_replica(
    replica: asyncpg.Connection,
    table: str,
    read: Callable[[], Awaitable[list[dict[str, Any]]]],
    check: Callable[[list[dict[str, Any]]], None],
) -> None:
    """Read the list until the replica's counter for `table` shows it served one; `check`
    every answer on the way (whichever server served it)."""
    before = await replica_scans(replica, table)

    async def once() -> int:
        check(await read())
        return await replica_scans(replica, table)

    await wait_until(once, lambda n: n > before, timeout_s=BACK_ON_REPLICA_S, interval_s=0.1)


def ids(rows: list[dict[str, Any]]) -> set[str]:
    return {str(r["id"]) for r in rows}


async def create_payout(client: MerchantClient) -> str:
    resp = await client.post("/v1/payouts", json=payout_body(amount=1_000))
    assert resp.status == 201, resp.body
    return str(resp.json()["id"])


async def second_client(gw: LiveGateway, merchant: dict[str, Any]) -> MerchantClient:
    client = MerchantClient(gw.url, merchant["id"], merchant["secret"])
    await client.__aenter__()
    gw.clients.append(client)  # closed with the gateway
    return client


async def test_lists_are_read_on_the_replica_and_never_older_than_the_merchants_writes(
    servers: Servers, storage: Storage
) -> None:
    await replication_live(servers)
    settings = Settings(
        database_url=servers.primary_url,
        database_read_url=servers.replica_url,
        database_read_max_lag_s=MAX_LAG_S,
        redis_url=storage.redis_url,
        admin_token=ADMIN_TOKEN,
        port=0,
    )
    replica = await asyncpg.connect(servers.replica_url)
    # Two gateway processes' worth of services: each remembers only its own writes.
    async with live_gateway(settings) as gw, live_gateway(settings) as gw2:
        try:
            merchant, client = await gw.merchant(credit_fen=10_000_000)
            client2 = await second_client(gw2, merchant)
            written = {await create_payout(client) for _ in range(5)}

            # Every list, once the replica has the writes, is served by the replica; every
            # answer on the way (from either server) has all five payouts.
            def has_written(rows: list[dict[str, Any]]) -> None:
                assert written <= ids(rows), (written, rows)

            for path, table in LISTS:
                check = has_written if table == "payouts" else (lambda _rows: None)
                await served_by_replica(
                    replica, table, functools.partial(listed, client, path), check
                )
            ledger = await listed(client, "/v1/ledger?limit=50")
            assert {line["ref_id"] for line in ledger} >= written

            # Replay paused: what the merchant writes now is not on the replica, yet its
            # lists have it at once, from the process that wrote it and from the other one.
            await replica.execute("SELECT pg_wal_replay_pause()")
            await wait_until(
                lambda: replica.fetchval("SELECT pg_get_wal_replay_pause_state()"),
                lambda s: s == "paused",
            )
            fresh = await create_payout(client)
            assert await replica.fetchval("SELECT count(*) FROM payouts WHERE id = $1", fresh) == 0
            assert fresh in ids(await listed(client, "/v1/payouts?limit=50"))
            assert fresh in ids(await listed(client2, "/v1/payouts?limit=50"))
            ledger_refs = {line["ref_id"] for line in await listed(client2, "/v1/ledger?limit=50")}
            assert fresh in ledger_refs
            fresh2 = await create_payout(client2)
            assert {fresh, fresh2} <= ids(await listed(client, "/v1/payouts?limit=50"))
            assert await replica.fetchval("SELECT count(*) FROM payouts WHERE id = $1", fresh2) == 0

            # Replay resumed: the lists go back to the replica (once it has both and the
            # merchant's note has lapsed), still with everything written.
            await replica.execute("SELECT pg_wal_replay_resume()")
            written |= {fresh, fresh2}
            for list_client in (client, client2):
                read = functools.partial(listed, list_client, "/v1/payouts?limit=50")
                await served_by_replica(replica, "payouts", read, has_written)

            # The replica goes away: the lists are read from the primary, nothing fails.
            await replica.close()
            servers.replica.stop()
            for path, _table in LISTS:
                rows = await listed(client2, path)
                if path.startswith("/v1/payouts"):
                    has_written(rows)
        finally:
            await replica.close()
