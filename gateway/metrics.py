"""Paygate's Prometheus metrics (SPEC 11 `/metrics`, every name prefixed `paygate_`).

Multi-process: `paygate up` and `paygate serve --workers N` give every child one
`PROMETHEUS_MULTIPROC_DIR`; each process writes its figures to its own files there and any
process's `/metrics` sums them all (gateway processes and the worker). Without that variable
(tests, one process) the figures live in prometheus_client's default registry.

A process records into a `Metrics` (created at start-up and passed down). Recording is a
dict update (well under a microsecond); an owned task moves what was recorded into the
prometheus_client instruments every `FLUSH_S`, since one of their updates in multi-process
mode costs 2-5 µs (a lock, a getpid and an mmap write) and a request makes several. A page
is therefore up to `FLUSH_S` behind. `loadtest/bench/metrics.py` measures both.

SQL statements are counted by asyncpg's query logger and attributed to the *hop* (accept,
callback, dispatch, poll, notify, ...) that the running task declared with `in_hop`, so the
benchmark can say how many statements each hop makes per payout (loadtest/bench/cost.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from bisect import bisect_left
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Final

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
FLUSH_S: Final = 0.5
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

# `_created` series double the page for nothing Paygate uses (multi-process mode has none).
disable_created_metrics()  # type: ignore[no-untyped-call]

# The hop the current task is working for; asyncpg's logger callback runs in a copy of the
# context of the task that ran the statement, so it sees the task's hop.
_HOP: ContextVar[str] = ContextVar("paygate_hop", default="other")

LATENCY_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

# The instruments. prometheus_client keeps one set per process (its registry, or its files in
# the multi-process directory), so they are defined once here; every `Metrics` of a process
# (tests run the gateway and the worker in one) adds to the same ones.
HTTP_REQUESTS: Final = Counter(
    "paygate_http_requests", "HTTP requests answered, by route (canonical path) and status",
    ["method", "route", "status"],
)  # fmt: skip
HTTP_SECONDS: Final = Histogram(
    "paygate_http_request_duration_seconds", "Time to answer an HTTP request, by route",
    ["method", "route"], buckets=LATENCY_BUCKETS_S,
)  # fmt: skip
SQL_STATEMENTS: Final = Counter(
    "paygate_sql_statements", "SQL statements (round trips) run, by hop", ["hop"]
)
HTTP_CLIENT_REQUESTS: Final = Counter(
    "paygate_http_client_requests", "HTTP requests made to banks and merchants, by kind", ["kind"]
)
BATCH_SIZE: Final = Histogram(
    "paygate_group_commit_batch_size", "Items per group-commit batch, by committer",
    ["committer"], buckets=BATCH_BUCKETS,
)  # fmt: skip
ADMISSIONS: Final = Counter(
    "paygate_admissions",
    "Merchant admission checks (nonce + rate limit), by outcome: admitted, rate_limited, "
    "replayed, stale (signed before Redis started), unavailable (Redis down)",
    ["outcome"],
)
BANK_SUBMISSIONS: Final = Counter(
    "paygate_bank_submissions",
    "Payouts submitted to a bank channel, by channel and outcome (acked, refused, unknown)",
    ["channel", "outcome"],
)
BANK_ANSWER_MISMATCHES: Final = Counter(
    "paygate_bank_answer_mismatch",
    "Bank answers that did not match the order they name (unknown ref, another bank, another "
    "amount, missing from or twice in a batch answer), by bank and hop (submit, batch, query, "
    "callback): never applied, the order is queried",
    ["bank", "hop"],
)
NOTIFICATIONS: Final = Counter(
    "paygate_notification_attempts",
    "Merchant notification attempts, by outcome: delivered, retry (another attempt is "
    "scheduled), failed (the last attempt failed: the event is failed)",
    ["outcome"],
)
LIST_READS: Final = Counter(
    "paygate_list_reads",
    "Merchant lists read, by store: replica (PAYGATE_DATABASE_READ_URL) or primary",
    ["store"],
)

_Labels = tuple[str, ...]


def in_hop(hop: str) -> None:
    """Attribute the current task's (and its future child tasks') statements to `hop`."""
    _HOP.set(hop)


def current_hop() -> str:
    return _HOP.get()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def fresh_multiprocess_dir(path: Path) -> dict[str, str]:
    """Empty (or create) `path` for a new run's metric files; the children's environment.
    Files of an earlier run would otherwise be summed into this one's figures."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return {MULTIPROC_ENV: str(path.resolve())}


def mark_dead(pid: int, env: Mapping[str, str]) -> None:
    """A child that wrote metrics under `env` has exited: its counters stay in the sums (a
    restart must not make them go back), its live gauges go (prometheus_client's rule)."""
    path = env.get(MULTIPROC_ENV)
    if path:
        mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


class Metrics:
    """One process's recorder: cheap to call on the hot path, flushed by `start`'s task."""

    def __init__(self, process: str) -> None:
        self.process = process
        self._counts: dict[tuple[Counter, _Labels], float] = {}
        # Per histogram child: one count per bucket (the last is +Inf), then the sum.
        self._observed: dict[tuple[Histogram, _Labels], list[float]] = {}
        self._task: asyncio.Task[None] | None = None
        path = multiprocess_dir()
        if path is None:
            self._registry: CollectorRegistry = REGISTRY
        else:
            self._registry = CollectorRegistry()
            MultiProcessCollector(self._registry, path=path)  # type: ignore[no-untyped-call]

    # -- recording (the hot path) --

    def inc(self, counter: Counter, *labels: str, n: float = 1) -> None:
        key = (counter, labels)
        self._counts[key] = self._counts.get(key, 0.0) + n

    def observe(self, hist: Histogram, bounds: tuple[float, ...], value: float,
                *labels: str) -> None:  # fmt: skip
        key = (hist, labels)
        acc = self._observed.get(key)
        if acc is None:
            acc = self._observed[key] = [0.0] * (len(bounds) + 2)
        acc[bisect_left(bounds, value)] += 1  # the first bucket whose bound is >= value
        acc[-1] += value

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.inc(HTTP_REQUESTS, method, route, str(status))
        self.observe(HTTP_SECONDS, LATENCY_BUCKETS_S, seconds, method, route)

    def batch(self, committer: str, size: int) -> None:
        self.observe(BATCH_SIZE, BATCH_BUCKETS, size, committer)

    # channels.recorder.BankRecorder: what the bank channel records
    def bank_request(self, kind: str) -> None:
        self.inc(HTTP_CLIENT_REQUESTS, kind)

    def bank_submission(self, bank_id: str, outcome: str) -> None:
        self.inc(BANK_SUBMISSIONS, bank_id, outcome)

    def bank_answer_mismatch(self, bank_id: str, hop: str) -> None:
        self.inc(BANK_ANSWER_MISMATCHES, bank_id, hop)

    def on_query(self, record: Any) -> None:
        """asyncpg query logger: one statement (one round trip) for the current hop."""
        self.inc(SQL_STATEMENTS, _HOP.get())

    # -- flushing and rendering --

    def flush(self) -> None:
        """Move what was recorded into the instruments (this process's files or registry)."""
        counts, self._counts = self._counts, {}
        for (counter, labels), n in counts.items():
            counter.labels(*labels).inc(n)
        observed, self._observed = self._observed, {}
        for (hist, labels), acc in observed.items():
            child = hist.labels(*labels)
            # Histogram.observe takes one value at a time: add the gathered bucket counts to
            # its values directly (what observe itself updates, in either mode).
            for bucket, n in zip(child._buckets, acc[:-1], strict=True):
                if n:
                    bucket.inc(n)
            child._sum.inc(acc[-1])

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flush_loop(), name=f"metrics-{self.process}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)  # the flush period, not synchronisation
            self.flush()

    def render(self) -> bytes:
        """Every process's figures (multi-process), else this process's, as Prometheus text."""
        self.flush()
        return generate_latest(self._registry)
