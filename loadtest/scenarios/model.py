"""A scenario file (SPEC 12): merchant classes, bank profiles, a load shape, a timeline in
simulated time, and assertions — read from YAML into typed structs (pure: no I/O but the
file read).

Times on the timeline are `"day N HH:MM"` China time: day 1 is the day the scenario starts,
at `start` (the simulated clock jumps forward to it). Durations are simulated minutes; the
load generator works in wall seconds, `time_scale` simulated seconds per wall second.
`--speed fast` multiplies `time_scale` by `fast_factor`: the same timeline and the same
assertions in a fraction of the wall time (request rates stay per wall second).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from protocol.clock import BUSINESS_TZ

_AT_RE = re.compile(r"^day (?P<day>[1-9][0-9]?) (?P<h>[0-2][0-9]):(?P<m>[0-5][0-9])$")
Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")]
Clock = Annotated[str, msgspec.Meta(pattern=r"^[0-2][0-9]:[0-5][0-9]$")]
At = Annotated[str, msgspec.Meta(pattern=_AT_RE.pattern)]
Killable = Literal["gateway", "worker", "bank-sim", "webhook-sink", "postgres", "redis"]


class RateLimit(msgspec.Struct, forbid_unknown_fields=True):
    rps: int
    burst: int


class Load(msgspec.Struct, forbid_unknown_fields=True):
    """A load shape. `accounts`: a P2P lender's day (transfers, collections, withdrawals over
    the class's personal accounts, loadtest/generator/workloads.py)."""

    workload: Literal["mixed", "payouts", "accounts"] = "mixed"
    shape: Literal["constant", "spike"] = "constant"
    rate_per_s: float = 50.0  # wall-clock requests per second
    spike_rate_per_s: float = 0.0
    spike_at: At | None = None  # when the spike starts
    spike_min: float = 0.0  # how long it lasts, simulated minutes

    def __post_init__(self) -> None:
        if self.shape == "spike" and (self.spike_at is None or self.spike_min <= 0):
            raise ValueError("a spike needs spike_at and spike_min")


class MerchantClass(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    funding_mode: Literal["prefunded", "advance"] = "prefunded"
    credit_fen: int = 0
    advance_limit_fen: int = 0
    rate_limit: RateLimit = msgspec.field(default_factory=lambda: RateLimit(5000, 5000))
    weight: float = 1.0  # its share of the scenario's load
    # Its own load (its own generator, shape and workload) instead of a share of the scenario's.
    load: Load | None = None
    # With the `accounts` workload: personal accounts opened for it, each funded with
    # `account_fund_fen` from its settlement account (so `credit_fen` must cover them all).
    accounts: Annotated[int, msgspec.Meta(ge=2, le=500)] = 20
    account_fund_fen: int = 500_000
    # A payout above it waits for an operator's decision (review_pending); none: no review.
    review_threshold_fen: int | None = None


class CallbackStorm(msgspec.Struct, forbid_unknown_fields=True):
    """A burst of replayed callbacks: each bank (or `bank`) sends the callbacks of its `last`
    most recent final payouts again, `copies` times each, shuffled (the simulator's POST
    /sim/callback-storm)."""

    copies: int = 3
    last: int = 1000
    bank: str | None = None


class Review(msgspec.Struct, forbid_unknown_fields=True):
    """Payouts over a merchant class's review threshold, one per decision, each decided by an
    operator (POST /admin/payouts/{id}/approve or /reject) as soon as it is accepted."""

    merchant: Name  # the class (its review_threshold_fen below amount_fen)
    amount_fen: int
    decisions: list[Literal["approve", "reject"]]


class Event(msgspec.Struct, forbid_unknown_fields=True):
    """One step of the timeline; exactly one action per event."""

    at: At
    bank: str | None = None  # with `profile`: a partial bank profile (RFC 7396 merge)
    profile: dict[str, Any] | None = None
    kill: Literal["gateway", "worker", "bank-sim", "webhook-sink", "postgres", "redis"] | None = (
        None
    )
    jump_to: At | None = None  # move the simulated clock forward to this time
    callback_storm: CallbackStorm | None = None
    review: Review | None = None
    note: str = ""

    def __post_init__(self) -> None:
        actions = [self.profile, self.kill, self.jump_to, self.callback_storm, self.review]
        if sum(a is not None for a in actions) != 1:
            raise ValueError(
                f"event at {self.at}: exactly one of profile, kill, jump_to, callback_storm, review"
            )
        if self.profile is not None and not self.bank:
            raise ValueError(f"event at {self.at}: a profile change names its bank")


class Bound(msgspec.Struct, forbid_unknown_fields=True):
    min: float | None = None
    max: float | None = None


class Scenario(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    description: str
    duration_min: float  # simulated minutes of load
    merchants: list[MerchantClass]
    load: Load | None = None  # shared by the classes without a load of their own
    start: Clock = "10:00"
    time_scale: float = 60.0
    fast_factor: float = 4.0
    bank_preset: Literal["default", "instant", "fault_heavy"] = "default"
    banks: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)  # profile patches
    timeline: list[Event] = msgspec.field(default_factory=list)
    slo_s: float = 60.0  # a payout not final this long (simulated) after acceptance is stuck
    expect: dict[str, Bound | bool] = msgspec.field(default_factory=dict)
    # Each merchant notified at the run's webhook sink (which verifies every notification).
    webhooks: bool = False

    def __post_init__(self) -> None:
        if not self.merchants:
            raise ValueError("a scenario needs at least one merchant class")
        thresholds = {m.name: m.review_threshold_fen for m in self.merchants}
        for ev in self.timeline:
            if ev.review is None:
                continue
            limit = thresholds.get(ev.review.merchant)
            if limit is None or ev.review.amount_fen <= limit:
                raise ValueError(f"event at {ev.at}: review needs a merchant class whose "
                                 f"review_threshold_fen is below amount_fen")  # fmt: skip
        if self.duration_min <= 0 or self.time_scale <= 0 or self.fast_factor < 1:
            raise ValueError("duration_min and time_scale must be positive, fast_factor >= 1")
        if self.load is None and any(m.load is None for m in self.merchants):
            raise ValueError("a scenario without a load needs a load on every merchant class")

    def loads(self) -> list[tuple[Load, list[int]]]:
        """Each load with the merchant classes (indexes) it drives: the scenario's, shared by
        weight, and each class's own."""
        shared = [k for k, m in enumerate(self.merchants) if m.load is None]
        out = [(self.load, shared)] if self.load is not None and shared else []
        return out + [(m.load, [k]) for k, m in enumerate(self.merchants) if m.load is not None]


class ScenarioError(Exception):
    pass


def load_scenario(path: Path) -> Scenario:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return msgspec.convert(data, Scenario)
    except yaml.MarkedYAMLError as exc:
        # PyYAML's own text spans lines (it quotes the file); one line names the place.
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(f"{path}: not YAML{where}: {exc.problem}") from None
    except (OSError, yaml.YAMLError, msgspec.ValidationError, ValueError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None


def day_one(now: datetime, start: str) -> datetime:
    """The scenario's start: the next `start` China time at or after `now`."""
    local = now.astimezone(BUSINESS_TZ)
    h, m = (int(x) for x in start.split(":"))
    begin = datetime.combine(local.date(), dtime(h, m), BUSINESS_TZ)
    return begin if begin >= local else begin + timedelta(days=1)


def at_time(at: str, start: datetime) -> datetime:
    """`"day N HH:MM"` as a moment, day 1 being `start`'s date (China time)."""
    found = _AT_RE.match(at)
    if found is None:
        raise ScenarioError(f"bad time {at!r}: expected 'day N HH:MM'")
    first: date = start.astimezone(BUSINESS_TZ).date()
    day = first + timedelta(days=int(found["day"]) - 1)
    return datetime.combine(day, dtime(int(found["h"]), int(found["m"])), BUSINESS_TZ)


def day_and_time(when: datetime, start: datetime) -> str:
    """`when` as the timeline writes it: "day N HH:MM" (China time), day 1 being the start's."""
    local, first = when.astimezone(BUSINESS_TZ), start.astimezone(BUSINESS_TZ)
    return f"day {(local.date() - first.date()).days + 1} {local:%H:%M}"


def sim_offset_s(at: str, start: datetime) -> float:
    """Simulated seconds from the start to `at` (negative: before the start)."""
    return (at_time(at, start) - start).total_seconds()


def list_scenarios(directory: Path) -> list[tuple[str, str, Path]]:
    out = []
    for path in sorted(directory.glob("*.yaml")):
        s = load_scenario(path)
        out.append((s.name, s.description.strip().splitlines()[0], path))
    return out


def resized(sc: Scenario, duration_min: float) -> Scenario:
    """The same story over `duration_min` simulated minutes: each time within the load (an
    event's `at`, a spike's start and length) moves in proportion, to the minute; a time past
    the load (after a jump) stays where it is."""
    if duration_min == sc.duration_min:
        return sc
    ratio = duration_min / sc.duration_min
    h, m = (int(x) for x in sc.start.split(":"))
    first = datetime.combine(date(2001, 1, 1), dtime(h, m), BUSINESS_TZ)

    def moved(at: str) -> str:
        offset_s = sim_offset_s(at, first)
        if not 0 <= offset_s <= sc.duration_min * 60:
            return at
        return day_and_time(first + timedelta(minutes=round(offset_s * ratio / 60)), first)

    def load(ld: Load | None) -> Load | None:
        if ld is None or ld.spike_at is None:
            return ld
        return msgspec.structs.replace(ld, spike_at=moved(ld.spike_at),
                                       spike_min=ld.spike_min * ratio)  # fmt: skip

    return msgspec.structs.replace(
        sc, duration_min=duration_min, load=load(sc.load),
        merchants=[msgspec.structs.replace(c, load=load(c.load)) for c in sc.merchants],
        timeline=[msgspec.structs.replace(e, at=moved(e.at)) for e in sc.timeline],
    )  # fmt: skip
