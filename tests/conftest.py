"""Fixtures: one real PostgreSQL + Redis per session, a fresh database per test, live apps."""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from gateway.settings import Settings
from gateway.storage.embedded import EmbeddedStorage
from gateway.storage.migrate import migrate_url
from gateway.storage.pools import init_connection
from tests.harness import (
    ADMIN_TOKEN,
    LiveGateway,
    create_database,
    drop_database,
    live_gateway,
    unique_name,
    with_database,
)

ROOT = Path(__file__).resolve().parents[1]


class Dropper:
    """Drops the tests' databases in a thread of its own, while the next test runs: a drop
    (~100-150 ms of file removal) is nobody's wait. `close` waits for every drop asked."""

    def __init__(self, admin_url: str) -> None:
        self._admin_url = admin_url
        self._names: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="drop-databases", daemon=True)
        self._thread.start()

    def drop(self, name: str) -> None:
        self._names.put(name)

    def close(self) -> None:
        self._names.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (name := self._names.get()) is not None:
            asyncio.run(drop_database(self._admin_url, name))


class Storage:
    def __init__(self, database_url: str, redis_url: str, template: str) -> None:
        self.server_url = database_url
        self.admin_url = with_database(database_url, "postgres")
        self.redis_url = redis_url
        self.template = template
        self.dropper = Dropper(self.admin_url)


@pytest.fixture(scope="session")
def storage() -> Iterator[Storage]:
    """Real servers: PAYGATE_DATABASE_URL / PAYGATE_REDIS_URL if set, else embedded ones (one
    pair per pytest-xdist worker: `make test` runs the suite in two processes)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    embedded = EmbeddedStorage(
        ROOT / ".paygate" / ("test-storage-" + worker if worker else "test-storage"),
        os.environ.get("PAYGATE_DATABASE_URL", ""),
        os.environ.get("PAYGATE_REDIS_URL", ""),
    )
    embedded.start()
    try:
        admin_url = with_database(embedded.database_url, "postgres")
        template = unique_name("paygate_tpl")
        asyncio.run(create_database(admin_url, template))
        asyncio.run(migrate_url(with_database(embedded.database_url, template)))
        storage = Storage(embedded.database_url, embedded.redis_url, template)
        try:
            yield storage
        finally:
            storage.dropper.close()
        asyncio.run(drop_database(admin_url, template))
    finally:
        embedded.stop()


@pytest.fixture
async def database_url(storage: Storage) -> AsyncIterator[str]:
    """A fresh, migrated database for this test only."""
    name = unique_name("paygate_t")
    await create_database(storage.admin_url, name, storage.template)
    try:
        yield with_database(storage.server_url, name)
    finally:
        storage.dropper.drop(name)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def one_connection_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of one connection to this test's database, with the gateway's codecs: the
    statistics a test reads (`pg_stat_*`) are that backend's."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1, init=init_connection)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def redis_client(storage: Storage) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(storage.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def settings(database_url: str, storage: Storage) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=storage.redis_url,
        admin_token=ADMIN_TOKEN,
        port=0,
        db_pool_max=20,
    )


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[LiveGateway]:
    async with live_gateway(settings) as gw:
        yield gw
