"""What PostgreSQL writes per payout over its life (issue 25's first slice): rows inserted, updated
(HOT or not) and deleted per table, and WAL bytes, between two readings around the end-to-end
phase, divided by the payouts that phase made (each finished inside the window: the phase drains
before the second reading).

Row counts come from `pg_stat_user_tables`, which a backend updates when it flushes its pending
statistics: at the end of a transaction if a second has passed since its last flush, else up to
10 s after it went idle (PostgreSQL's PGSTAT_IDLE_INTERVAL). So each reading waits until the
counters have stood still for longer than that (bounded): ~11 s per reading. WAL bytes are exact
(`pg_current_wal_lsn()`), and include whatever else ran in the window (the workers' clock and
sampling): at 100 payouts/s that is a small share.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import asyncpg

SETTLE_S = 10.5  # counters unchanged this long: every idle backend has flushed
SETTLE_MAX_S = 30.0

# A partition's rows count for its table (migration 0021: payouts_p2026_12 -> payouts).
_TABLES = """SELECT coalesce(p.relname, s.relname) AS relname,
                    sum(s.n_tup_ins)::bigint AS n_tup_ins, sum(s.n_tup_upd)::bigint AS n_tup_upd,
                    sum(s.n_tup_hot_upd)::bigint AS n_tup_hot_upd,
                    sum(s.n_tup_del)::bigint AS n_tup_del
             FROM pg_stat_user_tables s
             LEFT JOIN pg_inherits i ON i.inhrelid = s.relid
             LEFT JOIN pg_class p ON p.oid = i.inhparent
             GROUP BY 1"""


@dataclass(frozen=True, slots=True)
class WriteReading:
    wal_lsn: str
    tables: dict[str, tuple[int, int, int, int]]  # relname -> (ins, upd, hot upd, del)


async def _read(conn: asyncpg.Connection) -> WriteReading:
    lsn = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
    tables = {
        r["relname"]: (r["n_tup_ins"], r["n_tup_upd"], r["n_tup_hot_upd"], r["n_tup_del"])
        for r in await conn.fetch(_TABLES)
    }
    return WriteReading(str(lsn), tables)


async def read_writes(database_url: str, *, settle_s: float = SETTLE_S) -> WriteReading:
    """One reading, once the row counters have stood still for `settle_s` (or SETTLE_MAX_S
    passed), so that what the backends did is all counted."""
    conn = await asyncpg.connect(database_url)
    try:
        reading = await _read(conn)
        deadline = time.monotonic() + SETTLE_MAX_S
        still_since = time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)  # polling the statistics views, with a deadline
            again = await _read(conn)
            if again.tables != reading.tables:
                reading, still_since = again, time.monotonic()
            elif time.monotonic() - still_since >= settle_s:
                break
        # The LSN is taken last: the WAL the window wrote, flushes of statistics excluded.
        return WriteReading(await conn.fetchval("SELECT pg_current_wal_lsn()::text"),
                            reading.tables)  # fmt: skip
    finally:
        await conn.close()


def _lsn_bytes(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def writes_per_payout(before: WriteReading, after: WriteReading, payouts: int) -> dict[str, Any]:
    """Per payout: WAL bytes, and rows inserted/updated/HOT-updated/deleted, in all and per
    table (tables the window did not touch are left out, the busiest first)."""
    n = max(payouts, 1)
    by_table: dict[str, dict[str, float]] = {}
    totals = [0, 0, 0, 0]
    for name, now in after.tables.items():
        was = before.tables.get(name, (0, 0, 0, 0))
        delta = [a - b for a, b in zip(now, was, strict=True)]
        if not any(delta):
            continue
        for i, d in enumerate(delta):
            totals[i] += d
        ins, upd, hot, dele = (round(d / n, 2) for d in delta)
        by_table[name] = {"ins": ins, "upd": upd, "hot": hot, "del": dele,
                          "rows": round((delta[0] + delta[1] + delta[3]) / n, 2)}  # fmt: skip
    ordered = dict(sorted(by_table.items(), key=lambda kv: -kv[1]["rows"]))
    ins, upd, hot, dele = totals
    return {
        "payouts": payouts,
        "wal_bytes_per_payout": round((_lsn_bytes(after.wal_lsn) - _lsn_bytes(before.wal_lsn)) / n),
        "rows_per_payout": round((ins + upd + dele) / n, 2),
        "inserted": round(ins / n, 2),
        "updated": round(upd / n, 2),
        "hot_updated": round(hot / n, 2),
        "deleted": round(dele / n, 2),
        "by_table": ordered,
    }


def writes_lines(w: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Table rows: the totals, then the tables that carry most of them."""
    if not w:
        return [("  PostgreSQL writes per payout", "n/a")]
    top = " · ".join(f"{name} {t['rows']:g}" for name, t in list(w["by_table"].items())[:8])
    return [
        ("  PostgreSQL rows written per payout",
         f"{w['rows_per_payout']:g} (inserted {w['inserted']:g} · updated {w['updated']:g}, "
         f"HOT {w['hot_updated']:g} · deleted {w['deleted']:g}; n={w['payouts']})"),
        ("    by table", top or "-"),
        ("  WAL per payout", f"{w['wal_bytes_per_payout'] / 1024:,.1f} KB"),
    ]  # fmt: skip
