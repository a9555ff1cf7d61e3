"""Routing (SPEC 9): which channel pays a payee. Same bank first, then interbank; healthy only;
cheaper first within each group. Pure: the dispatcher brings the channels and their health."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from channels.breaker import Availability


@dataclass(frozen=True, slots=True)
class RouteOption:
    channel_id: str
    kind: str  # "bank" | "interbank"
    cost_fen: int
    availability: Availability


def bank_of(cnaps_code: str) -> str:
    """A 12-digit CNAPS code (联行号) names its bank in the first three digits."""
    return cnaps_code[:3]


def candidates(cnaps_code: str, options: Sequence[RouteOption]) -> list[RouteOption]:
    """Channels that can pay this payee, best first, whatever their health."""
    bank = bank_of(cnaps_code)
    same = sorted((o for o in options if o.kind == "bank" and o.channel_id == bank),
                  key=lambda o: o.cost_fen)  # fmt: skip
    inter = sorted((o for o in options if o.kind == "interbank"), key=lambda o: o.cost_fen)
    return same + inter


def choose(
    cnaps_code: str, options: Sequence[RouteOption], probes_left: dict[str, int]
) -> str | None:
    """The first usable candidate; a probing channel takes only as many as `probes_left`."""
    for option in candidates(cnaps_code, options):
        if option.availability is Availability.USABLE:
            return option.channel_id
        if option.availability is Availability.PROBE and probes_left.get(option.channel_id, 0):
            probes_left[option.channel_id] -= 1
            return option.channel_id
    return None
