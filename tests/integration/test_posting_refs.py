"""A posting's account and journal entry exist, and stay (migration 0022): checked once per
statement that inserts postings, not by a foreign key per row; accounts and journal entries
are never deleted, nor an account's code changed."""

from __future__ import annotations

import re

import asyncpg
import pytest

from gateway.ledger.check import run_checks
from protocol.ids import new_id

ACCOUNT = "platform:fee_income"  # made by the migrations

# One statement, as the ledger writes them: the entries, then their postings.
WRITE = """
    WITH entries AS (
        INSERT INTO journal_entries (id, kind) SELECT unnest($1::text[]), 'test' RETURNING 1)
    INSERT INTO postings (entry_id, account, amount_fen)
    SELECT * FROM unnest($2::text[], $3::text[], $4::bigint[])"""


async def _postings(db: asyncpg.Connection, entries: list[str]) -> int:
    n: int = await db.fetchval(
        "SELECT count(*) FROM postings WHERE entry_id = ANY($1::text[])", entries
    )
    return n


async def test_a_statement_with_its_entries_and_known_accounts_is_written(
    db: asyncpg.Connection,
) -> None:
    entries = [new_id("je") for _ in range(30)]
    accounts = [ACCOUNT, "platform:deposits"] * 30
    await db.execute(WRITE, entries, [e for e in entries for _ in (0, 1)], accounts,
                     [-5, 5] * 30)  # fmt: skip
    assert await _postings(db, entries) == 60


async def test_an_account_made_in_the_same_statement_may_be_named(db: asyncpg.Connection) -> None:
    """The ledger makes a bank's reserve account in the statement that first posts to it
    (journal.py): the check runs after the whole statement, so it sees that account."""
    entry, account = new_id("je"), f"platform:reserve:{new_id('t')}"
    await db.execute(
        """WITH made AS (
               INSERT INTO accounts (code, kind, currency) VALUES ($3, 'reserve', 'CNY')
               RETURNING 1),
           entries AS (
               INSERT INTO journal_entries (id, kind) VALUES ($1, 'test') RETURNING 1)
           INSERT INTO postings (entry_id, account, amount_fen)
           VALUES ($1, $2, -7), ($1, $3, 7)""",
        entry, ACCOUNT, account,
    )  # fmt: skip
    assert await _postings(db, [entry]) == 2


@pytest.mark.parametrize("missing", ["account", "entry"])
async def test_one_posting_naming_nothing_undoes_the_whole_statement(
    db: asyncpg.Connection, missing: str
) -> None:
    entries = [new_id("je") for _ in range(20)]
    posting_entries = [e for e in entries for _ in (0, 1)]
    accounts = [ACCOUNT] * 40
    if missing == "account":
        accounts[27] = "platform:no_such_account"
    else:
        posting_entries[27] = new_id("je")  # an entry of this month no statement wrote
    with pytest.raises(asyncpg.ForeignKeyViolationError) as caught:
        await db.execute(WRITE, entries, posting_entries, accounts, [-5, 5] * 20)
    assert ("no_such_account" in str(caught.value)) == (missing == "account")
    # Neither the postings nor the entries of the statement were kept.
    assert await _postings(db, posting_entries) == 0
    n = await db.fetchval("SELECT count(*) FROM journal_entries WHERE id = ANY($1)", entries)
    assert n == 0


async def test_what_a_posting_names_cannot_be_taken_away(db: asyncpg.Connection) -> None:
    entry = new_id("je")
    await db.execute(WRITE, [entry], [entry, entry], [ACCOUNT, "platform:deposits"], [-1, 1])
    refused = [
        ("DELETE FROM journal_entries WHERE id = $1", entry),
        ("DELETE FROM accounts WHERE code = $1", ACCOUNT),
        ("UPDATE accounts SET code = code || ':renamed' WHERE code = $1", ACCOUNT),
    ]
    for sql, arg in refused:
        with pytest.raises(asyncpg.RestrictViolationError):
            await db.execute(sql, arg)
    for table in ("journal_entries", "accounts"):
        with pytest.raises(asyncpg.RestrictViolationError):
            await db.execute(f"TRUNCATE {table} CASCADE")
    assert await _postings(db, [entry]) == 2
    assert await db.fetchval("SELECT count(*) FROM accounts WHERE code = $1", ACCOUNT) == 1


async def test_the_ledger_check_finds_a_posting_naming_nothing(db: asyncpg.Connection) -> None:
    """Were a posting written past the statement check (here: with triggers off, as a restore
    might), the ledger check counts it."""
    entry = new_id("je")

    async def named_nothing() -> int:
        results = {r.name: r for r in await run_checks(db)}
        return results["postings_name_accounts_and_entries"].violations

    assert await named_nothing() == 0
    async with db.transaction():
        await db.execute("SET LOCAL session_replication_role = replica")
        await db.execute(WRITE, [entry], [entry, entry], [ACCOUNT, "platform:gone"], [-1, 1])
    assert await named_nothing() == 1


async def test_each_lookup_stays_one_probe_per_value(db: asyncpg.Connection) -> None:
    """The check's two queries, planned over 2,000 postings against a journal and accounts
    that look small (a fresh database, the state in which PostgreSQL likes to hash a whole
    table once per statement): each account and entry is looked up on its own, never by a
    hashed read of the whole table (migration 0022, the `OFFSET 0`)."""
    source = await db.fetchval("SELECT prosrc FROM pg_proc WHERE proname = 'postings_refer'")
    queries = re.findall(r"(SELECT n\.\w+) INTO missing (FROM .*?LIMIT 1);", source, re.S)
    assert len(queries) == 2, source
    await db.execute("CREATE TEMP TABLE new_postings AS SELECT * FROM postings LIMIT 0")
    await db.execute(
        """INSERT INTO new_postings (id, entry_id, account, amount_fen, created_at)
           SELECT i, 'je_' || i, 'platform:fee_income', 1, now()
           FROM generate_series(1, 2000) i"""
    )
    await db.execute("ANALYZE new_postings; ANALYZE journal_entries; ANALYZE accounts")
    for select, rest in queries:
        plan = "\n".join(r[0] for r in await db.fetch(f"EXPLAIN {select} {rest}"))
        # A subplan run per value (`= n.account`, `= n.entry_id`), not a hashed one.
        assert "SubPlan" in plan and "hashed" not in plan and "= n." in plan, plan
