"""Running the open-loop generator in child processes: each has its own core and event loop,
so the generator's CPU does not slow the code under test (or the test driving it).

One process:   run_in_process(spec)
Several:       run_in_process(spec, processes=4)  — request i goes to shard i % 4; all shards
               start their clocks at one wall-clock moment; results are merged exactly.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from tempfile import TemporaryDirectory

import orjson

from loadtest.generator.merge import merge_results
from loadtest.generator.result import LoadResult
from loadtest.generator.spec import MAX_SHARDS, LoadSpec

STDERR_TAIL_LINES = 40
# Time for several children to import and get going before their shared start.
SHARED_START_DELAY_S = 2.0


class _Child:
    """One `python -m loadtest.generator.open_loop` child, its stderr relayed line by line."""

    def __init__(self, spec: LoadSpec, workdir: Path, progress_every_s: float, prefix: str) -> None:
        self.prefix = prefix
        self.out_path = workdir / f"result-{spec.shard_index}.json"
        spec_path = workdir / f"spec-{spec.shard_index}.json"
        spec_path.write_bytes(orjson.dumps(spec.to_dict()))
        argv = [
            sys.executable, "-m", "loadtest.generator.open_loop",
            "--spec", str(spec_path), "--out", str(self.out_path),
            "--progress-every-s", str(progress_every_s),
        ]  # fmt: skip
        self.tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.relay = threading.Thread(target=self._relay, name=f"relay{prefix}", daemon=True)
        self.relay.start()

    def _relay(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.tail.append(line.rstrip("\n"))
            print(self.prefix + line, end="", file=sys.stderr, flush=True)

    def result(self) -> LoadResult:
        returncode = self.proc.wait()
        self.relay.join()
        if returncode != 0 or not self.out_path.exists():
            lines = "\n".join(self.tail)
            raise RuntimeError(f"load generator exited with {returncode}:\n{lines}")
        return LoadResult.from_dict(orjson.loads(self.out_path.read_bytes()))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        self.relay.join()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def run_in_process(
    spec: LoadSpec,
    progress_every_s: float = 1.0,
    *,
    processes: int = 1,
    relay_prefix: str = "loadgen",
) -> LoadResult:
    """Run `spec` in `processes` child processes and return the (merged) result, relaying the
    children's progress lines to our stderr as `[loadgen] ...`. Blocks until done: call it
    through `asyncio.to_thread` from async code. `max_in_flight` and `connections` apply per
    process. Raises RuntimeError with a child's last lines if one fails."""
    if not 1 <= processes <= MAX_SHARDS:
        raise ValueError(f"processes must be within 1..{MAX_SHARDS}")
    with TemporaryDirectory(prefix="paygate-loadgen-") as tmp:
        if processes == 1:
            shards = [spec]
            prefixes = [f"[{relay_prefix}] "]
        else:
            start_at_unix_s = time.time() + SHARED_START_DELAY_S
            shards = [spec.shard(k, processes, start_at_unix_s) for k in range(processes)]
            prefixes = [f"[{relay_prefix} {k + 1}/{processes}] " for k in range(processes)]
        children: list[_Child] = []
        try:
            for shard, prefix in zip(shards, prefixes, strict=True):
                children.append(_Child(shard, Path(tmp), progress_every_s, prefix))
            results = [child.result() for child in children]
        finally:
            for child in children:
                child.stop()
    return results[0] if processes == 1 else merge_results(results)
