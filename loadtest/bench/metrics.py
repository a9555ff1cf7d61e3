"""What /metrics costs a request (issue 13): the instrumentation of one accepted payout in
multi-process mode, recorded through `gateway.metrics.Metrics` (a dict update, flushed every
FLUSH_S) against calling prometheus_client's instruments directly.

    python -m loadtest.bench.metrics [--requests 200000] [--rate 3000]

One request here is what the gateway records for a `POST /v1/payouts`: the request counter
and latency histogram, an admission outcome, a group-commit batch size and one SQL statement
(more than its share: an accept batch makes two or three statements for many payouts).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rate", type=int, default=3_000, help="requests/s (for the flush)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paygate-metrics-bench-") as path:
        # Before prometheus_client is imported: it picks its value class then.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        for line in run(args.requests, args.rate):
            print(line)


def run(n: int, rate: int) -> list[str]:
    from gateway import metrics as m

    rec = m.Metrics("bench")
    route = ("POST", "/v1/payouts")

    def record() -> None:
        rec.request(*route, 201, 0.0042)
        rec.inc(m.ADMISSIONS, "admitted")
        rec.batch("accept", 17)
        rec.on_query(None)

    def direct() -> None:
        m.HTTP_REQUESTS.labels(*route, "201").inc()
        m.HTTP_SECONDS.labels(*route).observe(0.0042)
        m.ADMISSIONS.labels("admitted").inc()
        m.BATCH_SIZE.labels("accept").observe(17)
        m.SQL_STATEMENTS.labels("other").inc()

    per_flush = max(1, int(rate * m.FLUSH_S))
    record_s = _time(record, n)
    flushes = max(1, n // per_flush)
    flush_s = 0.0
    for _ in range(flushes):
        for _ in range(per_flush):
            record()
        started = time.perf_counter()
        rec.flush()
        flush_s += time.perf_counter() - started
    direct_n = max(1, n // 5)
    direct_us = _time(direct, direct_n) / direct_n * 1e6
    record_us = record_s / n * 1e6
    flush_us = flush_s / (flushes * per_flush) * 1e6
    return [
        f"multi-process mode ({m.MULTIPROC_ENV} set), per request (5 metric updates):",
        f"  Metrics: record {record_us:.2f} µs + flush {flush_us:.3f} µs "
        f"(every {m.FLUSH_S:g} s at {rate:,}/s) = {record_us + flush_us:.2f} µs",
        f"  prometheus_client instruments called directly: {direct_us:.2f} µs",
    ]


def _time(fn: Callable[[], None], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
