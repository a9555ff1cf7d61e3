"""One `paygate up` per state directory: the directory holds one system's embedded stores,
run.json and bank books, so a second system on it would fight the first for them. `up` holds
an exclusive lock on a file beside the directory (it survives the directory being wiped) for
as long as it runs; the lock goes with the process, however it ends."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class StateDirBusy(Exception):
    pass


def lock_path(state_dir: Path) -> Path:
    return state_dir.with_name(state_dir.name + ".lock")


@contextmanager
def holding(state_dir: Path) -> Iterator[None]:
    """Hold `state_dir` for this process; StateDirBusy (naming the holder's pid) if another
    process holds it."""
    path = lock_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise StateDirBusy(
                f"{state_dir} is in use by another paygate (pid {holder}); stop it first,"
                " or give this one another PAYGATE_STATE_DIR"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield


def ensure_free(state_dir: Path) -> None:
    """Raise StateDirBusy if a running system holds `state_dir` (checked before wiping it)."""
    with holding(state_dir):
        pass
