"""What an open-loop run does (`LoadSpec`): target, merchants, workload, shape and limits
(and, for the `transfers` workload, the account pairs it moves money between).

A spec is plain JSON, so a parent process can hand it to a generator child unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from loadtest.generator.shapes import Shape, shape_from_dict, shape_to_dict

MerchantPick = Literal["round_robin", "weighted", "hot"]
MERCHANT_PICKS: tuple[MerchantPick, ...] = ("round_robin", "weighted", "hot")
RUN_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MAX_IN_FLIGHT_LIMIT = 1_000_000
MAX_CONNECTIONS = 100_000
MAX_SHARDS = 64


@dataclass(frozen=True, slots=True)
class MerchantCred:
    id: str
    secret: str
    weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "secret": self.secret, "weight": self.weight}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MerchantCred:
        return cls(str(data["id"]), str(data["secret"]), float(data.get("weight", 1.0)))


@dataclass(frozen=True, slots=True)
class TransferRoute:
    """One pair of accounts of merchant `merchant_index` (an index into `LoadSpec.merchants`)
    that the `transfers` workload moves money along, `from_account` -> `to_account`."""

    merchant_index: int
    from_account: str
    to_account: str

    def to_list(self) -> list[Any]:
        return [self.merchant_index, self.from_account, self.to_account]

    @classmethod
    def from_list(cls, data: list[Any]) -> TransferRoute:
        index, src, dst = data
        return cls(int(index), str(src), str(dst))


@dataclass(frozen=True, slots=True)
class LoadSpec:
    base_url: str
    merchants: tuple[MerchantCred, ...]
    workload: str
    shape: Shape
    seed: int = 0
    run_id: str = "run"
    max_in_flight: int = 10_000
    timeout_s: float = 30.0
    connections: int = 512
    merchant_pick: MerchantPick = "round_robin"
    # A run split over processes: this one sends requests i with i % shard_count == shard_index,
    # and all of them start their clocks at the same wall-clock moment.
    shard_index: int = 0
    shard_count: int = 1
    start_at_unix_s: float | None = None
    # The `transfers` and `accounts` workloads: request i goes along routes[i % len(routes)].
    routes: tuple[TransferRoute, ...] = ()
    # `accounts`: merchants (indexes) whose collections may ask advance_on_failure (垫资 ones).
    advance_merchants: tuple[int, ...] = ()

    def shard(self, index: int, count: int, start_at_unix_s: float) -> LoadSpec:
        return replace(self, shard_index=index, shard_count=count, start_at_unix_s=start_at_unix_s)

    def __post_init__(self) -> None:
        if not self.merchants:
            raise ValueError("a load spec needs at least one merchant")
        if not RUN_ID_RE.match(self.run_id):
            # It prefixes merchant_order_id (at most 64 chars), so keep it short and plain.
            raise ValueError("run_id must be 1-32 chars of [A-Za-z0-9_-]")
        if not 1 <= self.max_in_flight <= MAX_IN_FLIGHT_LIMIT:
            raise ValueError(f"max_in_flight must be within 1..{MAX_IN_FLIGHT_LIMIT}")
        if not 1 <= self.connections <= MAX_CONNECTIONS:
            raise ValueError(f"connections must be within 1..{MAX_CONNECTIONS}")
        if not 0 < self.timeout_s <= 600:
            raise ValueError("timeout_s must be within (0, 600]")
        if self.merchant_pick not in MERCHANT_PICKS:
            raise ValueError(f"merchant_pick must be one of {MERCHANT_PICKS}")
        if not 0 <= self.shard_index < self.shard_count <= MAX_SHARDS:
            raise ValueError(f"need 0 <= shard_index < shard_count <= {MAX_SHARDS}")
        if self.workload in ("transfers", "accounts") and not self.routes:
            raise ValueError(f"the {self.workload} workload needs at least one route")
        if any(not 0 <= r.merchant_index < len(self.merchants) for r in self.routes):
            raise ValueError("a route names a merchant index outside merchants")

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "merchants": [m.to_dict() for m in self.merchants],
            "workload": self.workload,
            "shape": shape_to_dict(self.shape),
            "seed": self.seed,
            "run_id": self.run_id,
            "max_in_flight": self.max_in_flight,
            "timeout_s": self.timeout_s,
            "connections": self.connections,
            "merchant_pick": self.merchant_pick,
            "shard_index": self.shard_index,
            "shard_count": self.shard_count,
            "start_at_unix_s": self.start_at_unix_s,
            "routes": [r.to_list() for r in self.routes],
            "advance_merchants": list(self.advance_merchants),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadSpec:
        return cls(
            base_url=str(data["base_url"]),
            merchants=tuple(MerchantCred.from_dict(m) for m in data["merchants"]),
            workload=str(data["workload"]),
            shape=shape_from_dict(data["shape"]),
            seed=int(data.get("seed", 0)),
            run_id=str(data.get("run_id", "run")),
            max_in_flight=int(data.get("max_in_flight", 10_000)),
            timeout_s=float(data.get("timeout_s", 30.0)),
            connections=int(data.get("connections", 512)),
            merchant_pick=data.get("merchant_pick", "round_robin"),
            shard_index=int(data.get("shard_index", 0)),
            shard_count=int(data.get("shard_count", 1)),
            start_at_unix_s=data.get("start_at_unix_s"),
            routes=tuple(TransferRoute.from_list(r) for r in data.get("routes", [])),
            advance_merchants=tuple(int(k) for k in data.get("advance_merchants", [])),
        )
