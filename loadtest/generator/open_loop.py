"""The open-loop load generator: every request starts at its scheduled time, whether or not
earlier ones have finished, and its latency runs from that time (no coordinated omission).
Requests go over `gateway.http1` (kept-alive connections, cheap per request); the result
carries the CPU time the run cost (`totals.cpu_s`), so a benchmark can show the generator's share.

In process:  result = await run_open_loop(spec, progress)
As a child:  python -m loadtest.generator.open_loop --spec SPEC.json --out RESULT.json
             (what `generator.processes.run_in_process` starts; progress lines go to stderr)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from gateway.http1 import Http1Client, HttpError
from loadtest.generator.recorder import Recorder
from loadtest.generator.result import LoadResult, Snapshot
from loadtest.generator.shapes import duration_s, schedule_offsets_s, shape_to_dict
from loadtest.generator.spec import LoadSpec
from loadtest.generator.workloads import Workload
from protocol.signing import sign_request

log = logging.getLogger("paygate.loadtest")
MAX_ERROR_BODY_BYTES = 64 * 1024  # an error body larger than this is not parsed for its code
YIELD_EVERY_OVERDUE = 256


def error_code(status: int, body: bytes) -> str | None:
    """The gateway's `{"error": {"code": ...}}`, for a 4xx/5xx answer that has one."""
    if status < 400 or not body or len(body) > MAX_ERROR_BODY_BYTES:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        code = data["error"].get("code")
        return str(code) if code is not None else None
    return None


class _Run:
    """One run: a scheduler that starts requests on time and the tasks that carry them."""

    def __init__(self, spec: LoadSpec, client: Http1Client, start_s: float) -> None:
        self.spec = spec
        self.client = client
        self.workload = Workload(
            spec.workload,
            seed=spec.seed,
            run_id=spec.run_id,
            merchant_weights=[m.weight for m in spec.merchants],
            merchant_pick=spec.merchant_pick,
            routes=spec.routes,
            advance_merchants=spec.advance_merchants,
        )
        self.recorder = Recorder(start_s, keep_second_histograms=spec.shard_count > 1)
        self.slots = asyncio.Semaphore(spec.max_in_flight)
        self.tasks: set[asyncio.Task[None]] = set()

    async def schedule(self) -> None:
        start_s = self.recorder.start_s
        shards = self.spec.shard_count
        overdue = 0
        for i, offset_s in enumerate(schedule_offsets_s(self.spec.shape)):
            if i % shards != self.spec.shard_index:
                continue
            delay_s = start_s + offset_s - time.monotonic()
            if delay_s > 0:
                await asyncio.sleep(delay_s)
                overdue = 0
            else:
                # Behind schedule: start the overdue ones at once, but let the loop breathe.
                overdue += 1
                if overdue % YIELD_EVERY_OVERDUE == 0:
                    await asyncio.sleep(0)
            self.recorder.on_scheduled(offset_s)
            if self.slots.locked():
                # Its latency clock is already running from offset_s; waiting here shows up.
                self.recorder.on_late_start()
            await self.slots.acquire()
            task = asyncio.create_task(self.send(i, offset_s))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.wait(set(self.tasks))

    async def cancel_all(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def send(self, i: int, offset_s: float) -> None:
        try:
            request = self.workload.build(i)
            merchant = self.spec.merchants[request.merchant_index]
            # Signed just before sending, so the timestamp is fresh even when the run is long.
            headers = sign_request(
                merchant.id, merchant.secret, request.method, request.path, request.body
            )
            if request.body:
                headers["Content-Type"] = "application/json"
            self.recorder.on_sent(offset_s, time.monotonic(), request.kind)
            status, body = await self.client.request(
                request.method, request.path, headers, request.body
            )
        except TimeoutError:
            self.recorder.on_error(offset_s, time.monotonic(), "timeout")
        except HttpError as exc:
            self.recorder.on_error(offset_s, time.monotonic(), exc.kind)
        except Exception as exc:
            log.exception("load request %d failed unexpectedly", i)
            self.recorder.on_error(offset_s, time.monotonic(), type(exc).__name__)
        else:
            self.recorder.on_response(offset_s, time.monotonic(), status, error_code(status, body))
        finally:
            self.slots.release()

    async def report_progress(
        self, progress: Callable[[Snapshot], None], progress_every_s: float
    ) -> None:
        while True:
            await asyncio.sleep(progress_every_s)
            try:
                progress(self.recorder.snapshot(time.monotonic(), len(self.tasks)))
            except Exception:
                log.exception("progress callback failed; the run goes on")


async def run_open_loop(
    spec: LoadSpec,
    progress: Callable[[Snapshot], None] | None = None,
    *,
    progress_every_s: float = 1.0,
) -> LoadResult:
    """Drive `spec` from this event loop and return what was measured, including the CPU time
    this process spent meanwhile (in a generator child, the generator's own cost)."""
    start_s = time.monotonic()
    if spec.start_at_unix_s is not None:
        start_s += spec.start_at_unix_s - time.time()
    cpu_start_s = time.process_time()
    async with Http1Client(
        spec.base_url, connections=spec.connections, timeout_s=spec.timeout_s
    ) as client:
        run = _Run(spec, client, start_s)
        ticker = None
        if progress is not None:
            ticker = asyncio.create_task(run.report_progress(progress, progress_every_s))
        try:
            await run.schedule()
            await run.drain()
        finally:
            await run.cancel_all()
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
    cpu_s = time.process_time() - cpu_start_s
    if progress is not None:
        progress(run.recorder.snapshot(time.monotonic(), 0))
    meta = {
        "workload": spec.workload,
        "shape": shape_to_dict(spec.shape),
        "run_id": spec.run_id,
        "seed": spec.seed,
        "merchants": len(spec.merchants),
        "merchant_pick": spec.merchant_pick,
        "routes": len(spec.routes),
        "base_url": spec.base_url,
        "max_in_flight": spec.max_in_flight,
        "connections": spec.connections,
        "shard_index": spec.shard_index,
        "shard_count": spec.shard_count,
        "connections_opened": client.opened,
    }
    return run.recorder.result(meta, duration_s(spec.shape), cpu_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.generator.open_loop", description=__doc__
    )
    parser.add_argument("--spec", required=True, type=Path, help="LoadSpec JSON file")
    parser.add_argument("--out", required=True, type=Path, help="where to write LoadResult JSON")
    parser.add_argument("--progress-every-s", type=float, default=1.0)
    args = parser.parse_args(argv)
    spec = LoadSpec.from_dict(orjson.loads(args.spec.read_bytes()))

    def show(snapshot: Snapshot) -> None:
        print(snapshot.line(), file=sys.stderr, flush=True)

    import uvloop

    result: LoadResult = uvloop.run(
        run_open_loop(spec, show, progress_every_s=args.progress_every_s)
    )
    args.out.write_bytes(orjson.dumps(result.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
