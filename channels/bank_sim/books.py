"""The bank's books on disk (SPEC 9: a bank does not forget a payment because it restarted).

Payout and B2B records with the fate each was drawn, the reference sequences, planted
statement faults, profiles changed at run time and the nonces of signed requests still inside
the signature window live in a SQLite file of the simulator's own (never the gateway's tables).
`path=None` keeps the books in memory, for tests that never restart the simulator.

Write rule: a new record is on disk before the bank answers for it (`write_now`), so an
acknowledged payout is never forgotten; a changed profile is written before the PUT answers.
Anything else (a completion, a return, the payer's payment, a signed request's nonce) is marked
and written at the start of the next loop iteration, in one transaction with every other
change of that iteration, ahead of the callback that reports it (the callback sender runs
after). A request whose answer needs its mark on disk (a nonce) awaits `written`: the
requests of one loop iteration share that commit, like a group commit. A submission's nonce
goes in the commit of the records it takes (`write_now`): one commit per batch, and one more
when its records complete. Even a change lost to
a crash is re-derived: the fate is on disk with the record, so a restarted bank completes the
payout the same way (`resume` in lifecycle.py).

WAL mode with `synchronous=NORMAL`: a commit survives the process being killed (SIGKILL); an
operating-system crash may lose the last commits.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec
import orjson

from channels.bank_sim.b2b_fate import B2BFate
from channels.bank_sim.b2b_records import B2BRecord
from channels.bank_sim.fate import Fate
from channels.bank_sim.records import BankRecord
from protocol.clock import ClockAnchor

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS payouts (
    bank_id TEXT NOT NULL, ref TEXT NOT NULL, record BLOB NOT NULL, fate BLOB,
    PRIMARY KEY (bank_id, ref));
CREATE TABLE IF NOT EXISTS b2b (
    bank_id TEXT NOT NULL, ref TEXT NOT NULL, record BLOB NOT NULL, fate BLOB,
    PRIMARY KEY (bank_id, ref));
CREATE TABLE IF NOT EXISTS statement_faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT, bank_id TEXT NOT NULL, fault BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS clock (
    id INTEGER PRIMARY KEY CHECK (id = 1), wall_s REAL NOT NULL, sim_s REAL NOT NULL,
    scale REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sequences (
    bank_id TEXT NOT NULL, kind TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (bank_id, kind));
CREATE TABLE IF NOT EXISTS profiles (
    bank_id TEXT PRIMARY KEY, start_preset TEXT NOT NULL, profile BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (
    key TEXT NOT NULL, nonce TEXT NOT NULL, timestamp_s INTEGER NOT NULL,
    PRIMARY KEY (key, nonce)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_by_time ON nonces (timestamp_s);
"""

# Records and fates are dataclasses; msgspec encodes and decodes them (datetimes, dates and the
# payee included) in a few microseconds each.
_ENCODER: Final = msgspec.json.Encoder()
_PAYOUT: Final = msgspec.json.Decoder(BankRecord)
_PAYOUT_FATE: Final = msgspec.json.Decoder(Fate)
_B2B: Final = msgspec.json.Decoder(B2BRecord)
_B2B_FATE: Final = msgspec.json.Decoder(B2BFate)


@dataclass(frozen=True, slots=True)
class Restored:
    """What one bank's books held when the simulator started."""

    payouts: list[tuple[BankRecord, Fate | None]]
    b2b: list[tuple[B2BRecord, B2BFate | None]]
    payout_sequence: int
    b2b_sequence: int


class Books:
    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(":memory:" if path is None else str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._payouts: dict[tuple[str, str], tuple[BankRecord, Fate | None]] = {}
        self._b2b: dict[tuple[str, str], tuple[B2BRecord, B2BFate | None]] = {}
        self._sequences: dict[tuple[str, str], int] = {}
        self._nonces: list[tuple[str, str, int]] = []
        self._flush_scheduled = False
        self._written: asyncio.Future[None] | None = None  # what `written` callers await
        self.writes = 0  # transactions committed (for /sim/stats)

    # --- reading back -------------------------------------------------------------------

    def restore(self, bank_id: str) -> Restored:
        payouts = [
            (_PAYOUT.decode(r), _PAYOUT_FATE.decode(f) if f else None)
            for r, f in self._db.execute(
                "SELECT record, fate FROM payouts WHERE bank_id = ?", (bank_id,)
            )
        ]
        b2b = [
            (_B2B.decode(r), _B2B_FATE.decode(f) if f else None)
            for r, f in self._db.execute(
                "SELECT record, fate FROM b2b WHERE bank_id = ?", (bank_id,)
            )
        ]
        sequences = dict(
            self._db.execute("SELECT kind, value FROM sequences WHERE bank_id = ?", (bank_id,))
        )
        return Restored(
            payouts=payouts,
            b2b=b2b,
            payout_sequence=int(sequences.get("payout", 0)),
            b2b_sequence=int(sequences.get("b2b", 0)),
        )

    def clock_anchor(self) -> ClockAnchor | None:
        """The simulated clock's anchor the bank ran on before, if any."""
        row = self._db.execute("SELECT wall_s, sim_s, scale FROM clock WHERE id = 1").fetchone()
        return None if row is None else ClockAnchor(wall_s=row[0], sim_s=row[1], scale=row[2])

    def save_clock_anchor(self, anchor: ClockAnchor) -> None:
        self._db.execute(
            "INSERT INTO clock (id, wall_s, sim_s, scale) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO"
            " UPDATE SET wall_s = excluded.wall_s, sim_s = excluded.sim_s, scale = excluded.scale",
            (anchor.wall_s, anchor.sim_s, anchor.scale),
        )

    def profiles(self, start_preset: str) -> dict[str, Any]:
        """The profiles changed at run time (bank id -> the profile as JSON builtins) by a bank
        started on `start_preset`. Those changed under another start preset are forgotten: a
        bank started on a new preset is configured anew, not by an older run's changes."""
        self._db.execute("DELETE FROM profiles WHERE start_preset <> ?", (start_preset,))
        rows = self._db.execute(
            "SELECT bank_id, profile FROM profiles WHERE start_preset = ?", (start_preset,)
        )
        return {bank_id: orjson.loads(profile) for bank_id, profile in rows}

    def nonces_since(self, timestamp_s: int) -> list[tuple[str, str, int]]:
        """(key, nonce, timestamp) of the requests seen that were signed at `timestamp_s` or
        later, oldest first."""
        rows = self._db.execute(
            "SELECT key, nonce, timestamp_s FROM nonces WHERE timestamp_s >= ?"
            " ORDER BY timestamp_s",
            (timestamp_s,),
        )
        return [(str(k), str(n), int(t)) for k, n, t in rows]

    def statement_faults(self, bank_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT id, fault FROM statement_faults WHERE bank_id = ? ORDER BY id", (bank_id,)
        )
        return [{"id": i} | orjson.loads(fault) for i, fault in rows]

    # --- writing ------------------------------------------------------------------------

    def mark_payout(self, record: BankRecord, fate: Fate | None = None, seq: int = 0) -> None:
        """Write `record` (with its fate, when new) at the next flush."""
        key = (record.bank_id, record.ref)
        kept = self._payouts.get(key)
        self._payouts[key] = (record, fate if fate is not None else kept[1] if kept else None)
        if seq:
            self._sequences[(record.bank_id, "payout")] = seq
        self._schedule()

    def mark_b2b(self, record: B2BRecord, fate: B2BFate | None = None, seq: int = 0) -> None:
        key = (record.bank_id, record.ref)
        kept = self._b2b.get(key)
        self._b2b[key] = (record, fate if fate is not None else kept[1] if kept else None)
        if seq:
            self._sequences[(record.bank_id, "b2b")] = seq
        self._schedule()

    def mark_nonce(self, key: str, nonce: str, timestamp_s: int) -> None:
        """Write a signed request's nonce at the next flush (await `written` before answering)."""
        self._nonces.append((key, nonce, timestamp_s))
        self._schedule()

    async def written(self) -> None:
        """Return once everything marked so far is on disk (raises what the write raised)."""
        if not self._pending():
            return
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        self._schedule()  # (again, after a failed write)
        # Shielded: one caller cancelled (its client gone) must not cancel the others' wait.
        await asyncio.shield(self._written)

    def forget_nonces(self, before_s: int) -> None:
        """Drop the nonces of requests signed before `before_s` (outside the window by then)."""
        self._db.execute("DELETE FROM nonces WHERE timestamp_s < ?", (before_s,))

    def save_profile(self, bank_id: str, start_preset: str, profile: dict[str, Any]) -> None:
        """Keep a bank's changed profile, now (before the change is acknowledged)."""
        self._db.execute(
            "INSERT INTO profiles (bank_id, start_preset, profile) VALUES (?, ?, ?) "
            "ON CONFLICT (bank_id) DO UPDATE SET start_preset = excluded.start_preset, "
            "profile = excluded.profile",
            (bank_id, start_preset, orjson.dumps(profile)),
        )

    def write_now(self) -> None:
        """Flush what is marked, now: before the bank answers for a new record."""
        self.flush()

    def add_statement_fault(self, bank_id: str, fault: dict[str, Any]) -> int:
        cursor = self._db.execute(
            "INSERT INTO statement_faults (bank_id, fault) VALUES (?, ?)",
            (bank_id, orjson.dumps(fault)),
        )
        return int(cursor.lastrowid or 0)

    def flush(self) -> None:
        self._flush_scheduled = False
        written, self._written = self._written, None
        try:
            self._write_pending()
        except BaseException as exc:
            if written is not None:
                written.set_exception(exc)
            raise
        if written is not None:
            written.set_result(None)

    def _pending(self) -> bool:
        return bool(self._payouts or self._b2b or self._sequences or self._nonces)

    def _write_pending(self) -> None:
        if not self._pending():
            return
        payouts, b2b, sequences = self._payouts, self._b2b, self._sequences
        # Taken off the pending set only once committed: a failed write is tried again.
        with self._transaction():
            for table, items in (("payouts", payouts), ("b2b", b2b)):
                self._db.executemany(
                    f"INSERT INTO {table} (bank_id, ref, record, fate) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (bank_id, ref) DO UPDATE SET record = excluded.record, "
                    f"fate = coalesce(excluded.fate, {table}.fate)",
                    [
                        (bank_id, ref, _ENCODER.encode(rec), _fate_json(fate))
                        for (bank_id, ref), (rec, fate) in items.items()
                    ],
                )
            self._db.executemany(
                "INSERT INTO sequences (bank_id, kind, value) VALUES (?, ?, ?) "
                "ON CONFLICT (bank_id, kind) DO UPDATE SET value = max(value, excluded.value)",
                [(bank_id, kind, value) for (bank_id, kind), value in sequences.items()],
            )
            self._db.executemany(
                "INSERT INTO nonces (key, nonce, timestamp_s) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                self._nonces,
            )
        self._payouts, self._b2b, self._sequences, self._nonces = {}, {}, {}, []
        self.writes += 1

    def close(self) -> None:
        self.flush()
        self._db.close()

    def _schedule(self) -> None:
        if self._flush_scheduled:
            return
        self._flush_scheduled = True
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no loop (a unit test): write at once
            self.flush()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


def _fate_json(fate: Fate | B2BFate | None) -> bytes | None:
    return None if fate is None else _ENCODER.encode(fate)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
