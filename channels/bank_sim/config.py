"""The bank simulator's settings: one typed object built at start-up and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class BankSimConfig:
    seed: int | None  # None: fresh randomness; an int makes every bank's draws reproducible
    time_scale: float = 1.0  # simulated seconds per wall second (SPEC 12)
    callback_url: str  # the gateway's base URL; "" sends no callbacks
    master_secret: str  # each bank's key is bank_secret(master_secret, bank_id)
    preset: str = "default"  # the profile preset every bank starts with
    callback_timeout_s: float = 5.0  # wall-clock limit on one callback POST
    books_path: Path | None = None  # the bank's books (SQLite); None keeps them in memory

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError("time_scale must be positive")
        if not self.callback_timeout_s > 0:
            raise ValueError("callback_timeout_s must be positive")
        if not self.master_secret:
            raise ValueError("master_secret must not be empty")
