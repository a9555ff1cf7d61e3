"""`paygate partitions [--ahead N] [--detach YYYY-MM]`: the monthly partitions (SPEC 15,
migration 0021): list them, make months ahead, detach a settled month for archive."""

from __future__ import annotations

import asyncio
import sys
from datetime import date

from gateway.cli.operators import database_url
from gateway.settings import Settings


def _month(text: str) -> date:
    year, month = text.split("-")
    return date(int(year), int(month), 1)


def cmd_partitions(settings: Settings, ahead: int | None, detach: str | None) -> int:
    import asyncpg

    from gateway.storage.partitions import MonthStillOpen, attached, detach_month, ensure_partitions

    url = database_url(settings)
    if url is None:
        print("paygate partitions: no database: run `paygate up` first or set "
              "PAYGATE_DATABASE_URL", file=sys.stderr)  # fmt: skip
        return 2
    try:
        month = _month(detach) if detach else None
    except ValueError:
        print(f"paygate partitions: --detach takes a month, YYYY-MM (not {detach!r})",
              file=sys.stderr)  # fmt: skip
        return 2

    async def run() -> int:
        conn = await asyncpg.connect(url)
        try:
            if ahead is not None:
                made = await ensure_partitions(conn, ahead)
                print(f"partitions made: {made} (months up to {ahead} ahead)")
            if month is not None:
                try:
                    counts = await detach_month(conn, month)
                except MonthStillOpen as exc:
                    print(f"paygate partitions: not detached: {exc}", file=sys.stderr)
                    return 1
                print(f"detached {month:%Y-%m}: " + ", ".join(
                    f"{table} {n} rows" for table, n in counts.items()))  # fmt: skip
                print("the detached tables (<table>_p" + f"{month:%Y_%m}" + ") stay for "
                      "pg_dump and DROP TABLE")  # fmt: skip
            for p in await attached(conn):
                print(f"{p.table:24} {p.name:34} ~{p.rows_estimate:>10,} rows "
                      f"{p.bytes / 1e6:>9.1f} MB  {p.bounds}")  # fmt: skip
            return 0
        finally:
            await conn.close()

    return asyncio.run(run())
