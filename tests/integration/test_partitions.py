"""Time partitions (migration 0021, SPEC 15, issue 26 item 3): the month bounds are the ids'
own (SQL's id_floor is protocol.ids.floor_id), the worker makes months ahead, a database with
rows in several months converts, and every statement a payout's life runs — accept, dispatch,
the bank's callback, the notification — reads one partition of each partitioned table when
PostgreSQL plans it for its values (EXPLAIN with bound parameters is such a custom plan); the
statements that prune by `id = ANY($1)` also bound their ids, so a generic plan (a prepared
statement planned once for all values, which PostgreSQL runs at times) prunes too
(`test_payout_locks_prune_months_in_a_generic_plan_too`); and the payout path's statements
(the worker's, the gateway's accepts and bank callbacks), which run on generic plans only
(their pools' `plan_cache_mode`), read no more partitions on them than when planned for their
values."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from gateway.merchants import model as mmodel
from gateway.merchants import repo as merchants_repo
from gateway.metrics import Metrics, current_hop
from gateway.payouts import transitions
from gateway.settings import Settings
from gateway.storage.migrate import MIGRATIONS_DIR, migrate
from gateway.storage.partitions import MonthStillOpen, detach_month, ensure_partitions
from gateway.storage.pools import create_pg_pool, init_connection
from protocol.ids import floor_id, new_id, new_secret
from tests.conftest import Storage
from tests.harness import wait_until, with_database
from tests.integration.test_collections import collect, final, payer, personal_account
from tests.integration.test_notifications import EVERY, notify_world, pay
from tests.payloads import payout_body

PARTITIONED = ("notification_attempts", "postings", "outbox_events", "journal_entries",
               "payouts", "transfers", "collections")  # fmt: skip
_PARTITION = re.compile(rf"^({'|'.join(PARTITIONED)})_(p\d{{4}}_\d{{2}}|history)$")
_MENTIONS = re.compile(rf"\b({'|'.join(PARTITIONED)})\b")


def _month(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


async def test_sql_month_bounds_are_the_ids_own(db: asyncpg.Connection) -> None:
    for at in (_month(2026, 12), _month(2027, 1), datetime(2031, 7, 9, 3, 4, 5, 678000, UTC)):
        for prefix in ("po", "je", "evt", "tr", "col"):
            assert await db.fetchval("SELECT id_floor($1, $2)", prefix, at) == floor_id(
                prefix, at.timestamp()
            )
    # And a new id is in this month's partition (the bounds hold ids as they are made).
    pid = new_id("po")
    this_month = datetime.now(UTC).strftime("payouts_p%Y_%m")
    lo, hi = await db.fetchrow(
        """SELECT id_floor('po', date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
                  id_floor('po', (date_trunc('month', now() AT TIME ZONE 'UTC')
                                  + interval '1 month') AT TIME ZONE 'UTC')"""
    )
    assert lo <= pid < hi
    assert await db.fetchval("SELECT to_regclass($1) IS NOT NULL", this_month)


async def _attached(db: asyncpg.Connection, table: str) -> list[str]:
    return [r["name"] for r in await db.fetch(
        """SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = $1::regclass ORDER BY c.relname""", table)]  # fmt: skip


async def test_the_worker_makes_months_ahead_once(db: asyncpg.Connection) -> None:
    before = {t: await _attached(db, t) for t in PARTITIONED}
    # The migration made this month and the next (an empty database: no history partition).
    this_month = datetime.now(UTC).strftime("_p%Y_%m")
    for t in PARTITIONED:
        assert len(before[t]) == 2 and before[t][0] == t + this_month, before
    made = await ensure_partitions(db, 4)
    assert made == 3 * len(PARTITIONED)
    assert await ensure_partitions(db, 4) == 0  # nothing missing: nothing made, nothing locked
    after = {t: await _attached(db, t) for t in PARTITIONED}
    for t in PARTITIONED:
        assert len(after[t]) == len(before[t]) + 3
    # A month's postings still need their entry (the key is month to month).
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute(
            """INSERT INTO postings (entry_id, account, amount_fen)
               SELECT $1, code, 1 FROM accounts LIMIT 1""",
            new_id("je"),
        )
    # Each month's partition of payouts is that month's range of ids.
    far = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(4):
        far = (far.replace(day=28) + (_month(2000, 2) - _month(2000, 1))).replace(day=1)
    bound = await db.fetchval(
        """SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = $1""",
        far.strftime("payouts_p%Y_%m"),
    )
    assert floor_id("po", far.timestamp()) in bound


# -- converting a database that has rows ------------------------------------------------------


@pytest.fixture
def migrations_before_partitions(tmp_path: Path) -> Iterator[Path]:
    here = tmp_path / "migrations"
    here.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name[:4]) < 21:
            shutil.copy(path, here / path.name)
    yield here


async def test_migration_converts_rows_of_several_months(
    storage: Storage, migrations_before_partitions: Path
) -> None:
    admin = await asyncpg.connect(storage.admin_url)
    name = f"convert_{new_id('t')[2:].lower()}"
    await admin.execute(f"CREATE DATABASE {name}")
    url = with_database(storage.admin_url, name)
    try:
        db = await asyncpg.connect(url)
        try:
            await init_connection(db)
            await migrate(db, migrations_before_partitions)
            await _old_rows(db)
            applied = await migrate(db)
            assert applied == [
                "0021_time_partitions.sql",
                "0022_posting_refs.sql",
                "0023_statistics_targets.sql",
                "0024_analyze_when_doubled.sql",
            ]
            # 0022: no month of postings keeps a key to its entries' month (checked per
            # statement instead, see test_posting_refs.py).
            keys = await db.fetchval(
                """SELECT count(*) FROM pg_constraint c
                   JOIN pg_inherits i ON i.inhrelid = c.conrelid
                   WHERE i.inhparent = 'postings'::regclass AND c.contype = 'f'"""
            )
            assert keys == 0
            where = {r["id"]: r["part"] for r in await db.fetch(
                "SELECT id, tableoid::regclass::text AS part FROM payouts")}  # fmt: skip
            assert where == {OLD["po_oct"]: "payouts_p2026_10", OLD["po_nov"]: "payouts_p2026_11"}
            parts = {r["part"] for r in await db.fetch(
                "SELECT tableoid::regclass::text AS part FROM postings")}  # fmt: skip
            assert parts == {"postings_p2026_10", "postings_p2026_11"}
            assert await db.fetchval("SELECT count(*) FROM outbox_events") == 2
            assert await db.fetchval("SELECT count(*) FROM notification_attempts") == 1
            # Every month from the oldest row's to next month exists.
            months = await _attached(db, "payouts")
            assert "payouts_history" in months and "payouts_p2026_10" in months
            # 0023, 0024: the months the conversion made take the small statistics target too,
            # and are analyzed once doubled.
            assert "autovacuum_analyze_scale_factor=1" in await db.fetchval(
                "SELECT reloptions FROM pg_class WHERE relname = 'payouts_history'"
            )
            small = await db.fetchval(
                """SELECT count(*) FROM pg_attribute WHERE attname = 'merchant_id'
                   AND attstattarget = 10 AND attrelid = ANY (ARRAY['payouts_history',
                       'payouts_p2026_10', 'outbox_events_history']::regclass[])"""
            )
            assert small == 3
            assert datetime.now(UTC).strftime("payouts_p%Y_%m") in months
            # The idempotency keys came along: a second insert of an order id fails.
            keys = await db.fetch("SELECT kind, merchant_order_id, object_id FROM order_keys")
            assert {(k["kind"], k["merchant_order_id"]) for k in keys} == {
                ("payouts", "o-oct"),
                ("payouts", "o-nov"),
            }
            with pytest.raises(asyncpg.UniqueViolationError):
                await _payout(db, new_id("po"), "o-oct")
            # The sequences still number new rows after the copied ones.
            assert await db.fetchval("SELECT nextval('postings_id_seq')") > 4
            checks = await db.fetch(
                "SELECT 1 FROM postings GROUP BY entry_id HAVING sum(amount_fen) <> 0"
            )
            assert checks == []
        finally:
            await db.close()
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


OLD = {
    "po_oct": floor_id("po", _month(2026, 10).timestamp())[:-16] + "a" * 16,
    "po_nov": floor_id("po", _month(2026, 11).timestamp() + 86_400)[:-16] + "b" * 16,
    "je_oct": floor_id("je", _month(2026, 10).timestamp() + 1)[:-16] + "c" * 16,
    "je_nov": floor_id("je", _month(2026, 11).timestamp() + 86_401)[:-16] + "d" * 16,
    "evt_oct": floor_id("evt", _month(2026, 10).timestamp() + 2)[:-16] + "e" * 16,
    "evt_nov": floor_id("evt", _month(2026, 11).timestamp() + 86_402)[:-16] + "f" * 16,
}


async def _payout(db: asyncpg.Connection, pid: str, order_id: str) -> None:
    await db.execute(
        """INSERT INTO payouts (id, merchant_id, merchant_order_id, request_hash, amount_fen,
               fee_fen, currency, status, payee, funding_balance_fen, funding_advance_fen,
               business_date)
           VALUES ($1, 'm_old', $2, 'h', 500, 0, 'CNY', 'succeeded', '{}', 500, 0,
                   '2026-10-01')""",
        pid, order_id,
    )  # fmt: skip


async def _old_rows(db: asyncpg.Connection) -> None:
    """Rows of October and November 2026 as the schema before 0021 held them."""
    await merchants_repo.insert(db, mmodel.Merchant(
        id="m_old", name="old", secret=new_secret(), status="active",
        funding_mode="prefunded", currency="CNY", advance_limit_fen=0, fee_fixed_fen=0,
        fee_bps=0, max_amount_fen=10**9, daily_amount_fen=10**12, daily_count=10**6,
        rate_limit_rps=1, rate_limit_burst=1, review_threshold_fen=None, notify_url=None,
    ))  # fmt: skip
    code = {r["kind"]: r["code"] for r in await db.fetch(
        "SELECT kind, code FROM accounts WHERE merchant_id = 'm_old'")}  # fmt: skip
    for month, pid, je, evt in (("oct", OLD["po_oct"], OLD["je_oct"], OLD["evt_oct"]),
                                ("nov", OLD["po_nov"], OLD["je_nov"], OLD["evt_nov"])):  # fmt: skip
        at = _month(2026, 10 if month == "oct" else 11)
        await db.execute(
            """INSERT INTO payouts (id, merchant_id, merchant_order_id, request_hash, amount_fen,
                   fee_fen, currency, status, payee, funding_balance_fen, funding_advance_fen,
                   business_date, created_at, updated_at)
               VALUES ($1, 'm_old', $2, 'h', 500, 0, 'CNY', 'succeeded', '{}', 500, 0,
                       $3::timestamptz::date, $3, $3)""",
            pid, f"o-{month}", at,
        )  # fmt: skip
        await db.execute(
            """INSERT INTO journal_entries (id, kind, ref_id, merchant_id, created_at)
               VALUES ($1, 'payout_hold', $2, 'm_old', $3)""",
            je, pid, at,
        )  # fmt: skip
        await db.execute(
            """INSERT INTO postings (entry_id, account, merchant_id, amount_fen, created_at)
               VALUES ($1, $3, 'm_old', -500, $2), ($1, $4, 'm_old', 500, $2)""",
            je, at, code["available"], code["held"],
        )  # fmt: skip
        await db.execute(
            """INSERT INTO outbox_events (id, merchant_id, type, object_id, sequence, data,
                   created_at)
               VALUES ($1, 'm_old', 'payout.succeeded', $2, 3, '{}', $3)""",
            evt, pid, at,
        )  # fmt: skip
    await db.execute(
        """INSERT INTO notification_attempts (event_id, attempt, attempted_at, sim_at, latency_ms)
           VALUES ($1, 1, now(), now(), 3)""",
        OLD["evt_oct"],
    )


# -- the hot statements read one partition --------------------------------------------------


Statement = tuple[str, str, tuple[Any, ...]]  # hop (gateway/metrics.py), SQL, arguments

# Not on a payout's path: the nightly reconciliation reads a bank's business date across every
# month (a payout approved weeks after it was made is sent, and dated, then), once a day.
NOT_HOT = {"recon"}
# Hops on PostgreSQL's own plan choice; the others (the worker's loops, the gateway's accepts
# and bank callbacks) run on generic plans (Settings.generic_plans).
OWN_CHOICE_HOPS = {"transfer", "api", "replica", "metrics", "clock"}


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[Statement]:
    """Every statement the gateway and its workers run in this process (the pools' query
    logger, gateway/storage/pools.py), with its hop and arguments."""
    seen: list[Statement] = []
    original = Metrics.on_query

    def record(self: Metrics, logged: Any) -> None:
        seen.append((current_hop(), logged.query, tuple(logged.args)))
        original(self, logged)

    monkeypatch.setattr(Metrics, "on_query", record)
    return seen


def _partitions_in(plan: dict[str, Any], into: dict[str, set[str]]) -> None:
    """The partitions the plan reads, by table: those it executed (EXPLAIN ANALYZE: a scan
    pruned while running shows 0 loops) or, in a plan that was not run, every one it lists
    (pruned while planning or starting are not listed)."""
    name = plan.get("Relation Name", "")
    match = _PARTITION.match(name)
    if match and plan.get("Actual Loops", 1) > 0:
        into.setdefault(match.group(1), set()).add(name)
    for child in plan.get("Plans", ()):
        _partitions_in(child, into)


async def _partitions_read(
    db: asyncpg.Connection, query: str, args: tuple[Any, ...]
) -> tuple[str, dict[str, set[str]]]:
    """How the statement was explained and the partitions it reads. It runs again, rolled
    back (EXPLAIN ANALYZE); one that cannot (its writes were done: the ids it inserts are
    taken, a settlement would settle twice) is planned and started, not run (EXPLAIN)."""
    tx = db.transaction()
    await tx.start()
    try:
        raw = await db.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}", *args)
        how = "ran"
    except asyncpg.PostgresError:
        await tx.rollback()
        tx = db.transaction()
        await tx.start()
        raw = await db.fetchval(f"EXPLAIN (FORMAT JSON) {query}", *args)
        how = "planned"
    finally:
        await tx.rollback()
    out: dict[str, set[str]] = {}
    _partitions_in(orjson.loads(raw)[0]["Plan"], out)
    return how, out


async def _partitions_started(
    db: asyncpg.Connection, query: str, args: tuple[Any, ...], *, generic: bool
) -> dict[str, set[str]]:
    """The partitions the statement's plan opens when it starts with these arguments (EXPLAIN
    without ANALYZE: what planning or the executor's start pruned is not listed; a partition
    pruned only while running, by a join, is). `generic`: the prepared statement's generic
    plan (PREPARE, then EXPLAIN EXECUTE with the arguments as literals under
    force_generic_plan), else the plan for its values (a custom plan)."""
    if not generic:
        tx = db.transaction()
        await tx.start()
        try:
            raw = await db.fetchval(f"EXPLAIN (FORMAT JSON) {query}", *args)
        finally:
            await tx.rollback()
    else:
        stmt = await db.prepare(query)
        types = [await db.fetchval("SELECT format_type($1::oid, NULL)", t.oid)
                 for t in stmt.get_parameters()]  # fmt: skip
        literals = [await db.fetchval(f"SELECT quote_nullable(($1::{t})::text)", a) + f"::{t}"
                    for t, a in zip(types, args, strict=True)]  # fmt: skip
        execute = "EXECUTE generic_check" + (f" ({', '.join(literals)})" if literals else "")
        await db.execute(f"PREPARE generic_check ({', '.join(types)}) AS {query}")
        tx = db.transaction()
        await tx.start()
        try:
            await db.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            raw = await db.fetchval(f"EXPLAIN (FORMAT JSON) {execute}")
        finally:
            await tx.rollback()
            await db.execute("DEALLOCATE generic_check")  # not transactional
    out: dict[str, set[str]] = {}
    _partitions_in(orjson.loads(raw)[0]["Plan"], out)
    return out


async def test_a_payouts_statements_read_one_partition_of_each_table(
    settings: Settings, statements: list[Statement]
) -> None:
    async with notify_world(settings, time_scale=1) as nw:
        m, client = await nw.merchant(notify_events=EVERY)
        # Next month's partition exists (the migration made it): without pruning a statement
        # would read it too.
        statements.clear()
        ids = [await pay(client) for _ in range(6)]
        for pid in ids:
            await nw.world.wait_payout(client, pid)
            assert (await client.get(f"/v1/payouts/{pid}")).status == 200
        await wait_until(lambda: nw.received(m["id"]),
                         lambda got: {r["object_id"] for r in got} >= set(ids))  # fmt: skip
        got = await client.get("/v1/payouts?merchant_order_id=" + "o-none")
        assert got.status == 200
        database_url = nw.world.gw.settings.database_url
    touched: dict[str, tuple[str, tuple[Any, ...]]] = {}
    for hop, query, args in statements:
        if hop not in NOT_HOT and _MENTIONS.search(query):
            touched[query] = (hop, args)  # the last arguments of each distinct statement
    db = await asyncpg.connect(database_url)
    await init_connection(db)
    offenders: list[str] = []
    explained: dict[str, dict[str, int]] = {}
    generic = 0
    checked: set[str] = set()
    try:
        for query, (hop, args) in touched.items():
            how, read = await _partitions_read(db, query, args)
            explained.setdefault(how, {}).setdefault(hop, 0)
            explained[how][hop] += 1
            for table, parts in read.items():
                if len(parts) > 1:
                    offenders.append(f"{how}: {table} {sorted(parts)} <- {query[:300]}")
            if hop in OWN_CHOICE_HOPS:
                continue
            # A generic plan must open no more partitions than the plan for the statement's
            # values.
            generic += 1
            checked.add(hop)
            custom = await _partitions_started(db, query, args, generic=False)
            for table, parts in (await _partitions_started(db, query, args, generic=True)).items():
                planned = sorted(custom.get(table, ()))
                if len(parts) > len(planned):
                    offenders.append(
                        f"generic plan: {table} {sorted(parts)}, custom {planned} <- {query[:300]}"
                    )
    finally:
        await db.close()
    print(f"statements on partitioned tables: {len(touched)}; explained: {explained}; "
          f"also on generic plans: {generic}")  # fmt: skip
    # Every part of a payout's life ran statements on partitioned tables.
    assert {"accept", "dispatch", "callback", "notify", "api"} <= {h for h, _ in touched.values()}
    # accept's read and write, the callback's lock and write, dispatch's, the bank's ack, the
    # notification's record
    assert {"accept", "callback", "dispatch", "notify"} <= checked
    assert not offenders, "\n".join(offenders)


async def test_the_payout_paths_pools_run_generic_plans(settings: Settings) -> None:
    """The worker's pool and the gateway's for accepts and callbacks (`generic_plans`, on by
    default) plan their statements once; the gateway's other pool keeps PostgreSQL's choice."""
    assert settings.generic_plans
    for generic, mode in ((True, "force_generic_plan"), (False, "auto")):
        pool = await create_pg_pool(settings, generic_plans=generic, max_size=1)
        try:
            assert await pool.fetchval("SHOW plan_cache_mode") == mode
            assert pool.get_max_size() == 1
        finally:
            await pool.close()


async def test_payout_locks_prune_months_in_a_generic_plan_too(db: asyncpg.Connection) -> None:
    """PostgreSQL runs a prepared statement on its generic plan at times (after five custom
    plans, when that looks no dearer), and a generic plan cannot prune by `id = ANY($1)`: the
    payout lock statements also bound the ids (`id >= $2 AND id <= $3`), which prune when the
    plan starts. EXPLAIN EXECUTE of a PREPAREd statement shows the plan that runs."""
    floor = floor_id("po", datetime.now(UTC).timestamp())
    ids = [floor[:-1] + "1", floor[:-1] + "2"]  # this month's (ids are letters and digits)
    array = "'{" + ",".join(ids) + "}'"
    await db.execute("SET plan_cache_mode = force_generic_plan")
    try:
        for name, query in (("lock", transitions._LOCK), ("queued", transitions._LOCK_QUEUED),
                            ("balances", transitions._LOCK_WITH_BALANCES)):  # fmt: skip
            await db.execute(f"PREPARE {name} (text[], text, text) AS {query}")
            raw = await db.fetchval(
                f"EXPLAIN (FORMAT JSON) EXECUTE {name}({array}, '{ids[0]}', '{ids[1]}')"
            )
            read: dict[str, set[str]] = {}
            _partitions_in(orjson.loads(raw)[0]["Plan"], read)
            assert read == {"payouts": {datetime.now(UTC).strftime("payouts_p%Y_%m")}}, (
                name,
                read,
            )
            # Without the bounds the same generic plan reads next month's partition as well.
            unbounded = query.replace("AND p.id >= $2 AND p.id <= $3", "AND $2::text = $3")
            await db.execute(f"PREPARE {name}_all (text[], text, text) AS {unbounded}")
            raw = await db.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE {name}_all({array}, 'x', 'x')")
            read = {}
            _partitions_in(orjson.loads(raw)[0]["Plan"], read)
            assert len(read["payouts"]) > 1, (name, read)
    finally:
        await db.execute("DEALLOCATE ALL")
        await db.execute("RESET plan_cache_mode")


# -- archive ------------------------------------------------------------------------------------


async def test_a_settled_month_detaches_and_the_books_still_balance(settings: Settings) -> None:
    """This month plays an old one (`now_at` two months on): refused while a payout waits for
    review, detached once it is rejected; the ledger check still holds (the month's postings
    live on as per-account totals, a fronted collection's debt as its payer's), its payouts
    are gone from the API, their order ids stay used (409), and the detached table keeps the
    rows."""
    async with notify_world(settings, time_scale=1) as nw:
        world = nw.world
        _, client = await nw.merchant(review_threshold=1_000_000)
        # A collection the company fronted (公司垫付) and its payer still owes: not open money.
        _, lender = await nw.merchant(funding_mode="advance", advance_limit=100_000)
        who = payer()
        await world.script("102", who["account_no"], outcome="insufficient_balance")
        acc = await personal_account(lender)
        fronted = await collect(lender, acc, 30_000, who, advance_on_failure=True)
        assert (await final(lender, fronted["id"]))["advanced"] == 30_000
        ids = [await pay(client) for _ in range(3)]
        for pid in ids:
            await world.wait_payout(client, pid)
        first_body = payout_body(1_000, order_id="archived-1")
        first = await client.post("/v1/payouts", first_body)
        assert first.status == 201, first.body
        await world.wait_payout(client, first.json()["id"])
        review = await client.post("/v1/payouts", payout_body(5_000_000))
        assert review.json()["status"] == "review_pending", review.body
        now = datetime.now(UTC)
        month, later = now.date().replace(day=1), now + timedelta(days=62)
        db = await world.gw.db()
        try:
            with pytest.raises(MonthStillOpen, match="not over by a month"):
                await detach_month(db, month)
            with pytest.raises(MonthStillOpen, match="1 open payouts"):
                await detach_month(db, month, later)
            rejected = await world.gw.admin.post(
                f"/admin/payouts/{review.json()['id']}/reject", {"reason": "test"})  # fmt: skip
            assert rejected.status == 200, rejected.body
            await world.wait_payout(client, review.json()["id"])

            async def pending() -> int:
                n: int = await db.fetchval(
                    "SELECT count(*) FROM outbox_events WHERE delivery_status = 'pending'"
                )
                return n

            await wait_until(pending, lambda n: n == 0)
            await wait_until(lambda: db.fetchval("SELECT count(*) FROM notification_queue"),
                             lambda n: n == 0)  # fmt: skip
            counts = await detach_month(db, month, later)
            assert counts["payouts"] == 5 and counts["journal_entries"] >= 10, counts
            assert counts["postings"] > counts["journal_entries"], counts
            part = now.strftime("payouts_p%Y_%m")
            assert await db.fetchval(f"SELECT count(*) FROM {part}") == 5  # the archive
            assert await db.fetchval("SELECT count(*) FROM payouts") == 0
            assert await db.fetchval("SELECT count(*) FROM archived_totals") > 0
            owed = await db.fetchval("SELECT sum(owed_fen) FROM archived_collection_advances")
            assert owed == 30_000
        finally:
            await db.close()
        report = await world.gw.ledger_ok()
        assert report["ok"] is True, report
        gone = await client.get(f"/v1/payouts/{ids[0]}")
        assert gone.status == 404, gone.body
        again = await client.post("/v1/payouts", first_body)
        assert again.status == 409, again.body
        assert again.json()["error"]["code"] == "idempotency_conflict"
        assert "archived" in again.json()["error"]["message"]
        by_order = await client.get("/v1/payouts?merchant_order_id=archived-1")
        assert by_order.status == 200 and by_order.json()["data"] == [], by_order.body
