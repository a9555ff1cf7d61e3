"""What the Locust load drives: the gateway URL and demo merchants from `paygate up`'s run.json."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from gateway.demo_merchants import DEMO_MERCHANTS

DEFAULT_RUN_FILE: Final = Path(".paygate") / "run.json"
# A merchant with a review threshold gets a small share of the users: its payouts here are far
# below the threshold, so it only adds a third merchant's worth of contention.
WEIGHT_PLAIN: Final = 4
WEIGHT_REVIEWED: Final = 1
REVIEWED_DEMO_IDS: Final = frozenset(
    str(m["id"]) for m in DEMO_MERCHANTS if m["review_threshold_fen"] is not None
)


@dataclass(frozen=True, slots=True)
class Merchant:
    id: str
    secret: str
    funding_mode: str


@dataclass(frozen=True, slots=True)
class Target:
    gateway_url: str
    merchants: tuple[Merchant, ...]

    def pick_merchant(self, rng: random.Random) -> Merchant:
        weights = [
            WEIGHT_REVIEWED if m.id in REVIEWED_DEMO_IDS else WEIGHT_PLAIN for m in self.merchants
        ]
        return rng.choices(self.merchants, weights=weights)[0]


def run_file_path() -> Path:
    """`PAYGATE_RUN_FILE`, else `$PAYGATE_STATE_DIR/run.json`, else `.paygate/run.json`."""
    if explicit := os.environ.get("PAYGATE_RUN_FILE"):
        return Path(explicit)
    if state_dir := os.environ.get("PAYGATE_STATE_DIR"):
        return Path(state_dir) / "run.json"
    return DEFAULT_RUN_FILE


def load_target(path: Path) -> Target:
    try:
        info = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise SystemExit(
            f"{path} not found: start `paygate up` first (or set PAYGATE_RUN_FILE)"
        ) from None
    merchants = tuple(
        Merchant(id=str(m["id"]), secret=str(m["secret"]), funding_mode=str(m["funding_mode"]))
        for m in info["merchants"]
    )
    if not merchants:
        raise SystemExit(f"{path} lists no merchants")
    return Target(gateway_url=str(info["gateway_url"]), merchants=merchants)
