"""What several `paygate` commands share: SIGTERM as Ctrl-C, report stamps."""

from __future__ import annotations

import signal
import time
from typing import Any


def run_stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def terminate_as_interrupt() -> None:
    """SIGTERM unwinds like Ctrl-C, so every `with`/`finally` stops what it started."""

    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)
    # A shell starts background jobs with SIGINT ignored; we still want Ctrl-C/kill -INT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
