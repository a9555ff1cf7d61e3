"""One `paygate up` per state directory: the directory holds one system's embedded stores,
run.json and bank books, so a second system on it would fight the first for them. `up` holds
an exclusive lock on a file inside the directory for as long as it runs; the lock goes with the
process, however it ends. Inside, not beside it, so a run leaves nothing next to the directory
(issue 22); a run directory is therefore wiped only through `wipe`, which holds the lock and
keeps its file, so the lock works across the wipe."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = "paygate.lock"


class StateDirBusy(Exception):
    pass


def lock_path(state_dir: Path) -> Path:
    return state_dir / LOCK_NAME


@contextmanager
def holding(state_dir: Path) -> Iterator[None]:
    """Hold `state_dir` (made if missing) for this process; StateDirBusy (naming the holder's
    pid) if another process holds it."""
    path = lock_path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
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
    """Raise StateDirBusy if a running system holds `state_dir`."""
    with holding(state_dir):
        pass


def wipe(state_dir: Path) -> None:
    """Empty `state_dir` for a fresh run (StateDirBusy if a running system holds it). The lock
    file stays: a system started on the directory meanwhile locks the same file."""
    with holding(state_dir):
        for entry in state_dir.iterdir():
            if entry.name == LOCK_NAME:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
