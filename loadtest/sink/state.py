"""What the demo webhook sink remembers per merchant (in memory, bounded): notifications
received, rejections, retries per event, sequences per object, and how to answer next."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

from channels.bank_sim.nonces import NonceCache
from protocol.errors import InvalidRequest

MAX_MERCHANTS: Final = 10_000
MAX_RECORDS_PER_MERCHANT: Final = 100_000  # oldest dropped first, counted in `dropped`
MAX_TRACKED_EVENTS_PER_MERCHANT: Final = 200_000  # event id -> attempts; least recent forgotten
MAX_TRACKED_OBJECTS_PER_MERCHANT: Final = 100_000  # object id -> sequences; least recent forgotten
MAX_NONCES: Final = 500_000  # across merchants; see NonceCache on forgetting early
SIGNATURE_WINDOW_S: Final = 300  # SPEC 11
MAX_DELAY_MS: Final = 600_000
MAX_FAIL_NEXT: Final = 1_000_000

MerchantId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
Secret = Annotated[str, Meta(min_length=1, max_length=256)]


class Registration(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Body of `PUT /merchants/{merchant_id}`."""

    secret: Secret


class Behaviour(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Body of `PUT /merchants/{merchant_id}/behaviour`; an omitted field takes its default.

    ok: 200; error: `status`; slow: 200 after `delay_ms`; hang: no answer until the client
    hangs up or the sink shuts down. `fail_next` deliveries answer `status` first, whatever
    the mode.
    """

    mode: Literal["ok", "error", "slow", "hang"] = "ok"
    status: Annotated[int, Meta(ge=300, le=599)] = 500
    delay_ms: Annotated[int, Meta(ge=0, le=MAX_DELAY_MS)] = 0
    fail_next: Annotated[int, Meta(ge=0, le=MAX_FAIL_NEXT)] = 0


class Event(msgspec.Struct, frozen=True):
    """A notification as the gateway sends it (SPEC 11); fields beyond these are ignored."""

    id: Annotated[str, Meta(min_length=1, max_length=128)]
    type: Annotated[str, Meta(min_length=1, max_length=64)]
    object_id: Annotated[str, Meta(min_length=1, max_length=128)]
    sequence: Annotated[int, Meta(ge=0)]
    data: dict[str, Any]
    created_at: Annotated[str, Meta(min_length=1, max_length=64)]


@dataclass(frozen=True, slots=True)
class Answer:
    """How to answer one verified notification: `status` after `delay_ms`; None hangs."""

    status: int | None
    delay_ms: int = 0


@dataclass(frozen=True, slots=True)
class Record:
    event_id: str
    type: str
    object_id: str
    sequence: int
    created_at: str
    attempt: int  # how many times this event id has arrived at this merchant, this one included
    received_wall_s: float
    received_mono_s: float
    answer_status: int | None  # None: hung
    answer_delay_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "object_id": self.object_id,
            "sequence": self.sequence,
            "created_at": self.created_at,
            "attempt": self.attempt,
            "received_at": datetime.fromtimestamp(self.received_wall_s, UTC).isoformat(),
            "received_wall_s": self.received_wall_s,
            "received_mono_s": self.received_mono_s,
            "answer_status": self.answer_status,
            "answer_delay_ms": self.answer_delay_ms,
        }


class MerchantInbox:
    """One merchant's notification endpoint: its secret, behaviour and what arrived."""

    def __init__(self, merchant_id: str, secret: str | None) -> None:
        self.merchant_id = merchant_id
        self.secret = secret
        self.behaviour = Behaviour()
        self._fail_next_left = 0
        self._records: deque[Record] = deque(maxlen=MAX_RECORDS_PER_MERCHANT)
        self._attempts: OrderedDict[str, int] = OrderedDict()
        # object id -> (sequence of the latest arrival, highest sequence seen)
        self._sequences: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self.received = 0
        self.distinct_events = 0
        self.out_of_order = 0
        self.dropped_records = 0
        self.forgotten_events = 0
        self.rejected_by_code: dict[str, int] = {}

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_code.values())

    def set_behaviour(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self._fail_next_left = behaviour.fail_next

    def behaviour_json(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.structs.asdict(self.behaviour)
        out["fail_next"] = self._fail_next_left
        return out

    def reject(self, code: str) -> None:
        self.rejected_by_code[code] = self.rejected_by_code.get(code, 0) + 1

    def accept(self, event: Event) -> tuple[Record, Answer]:
        """Record a verified notification and decide its answer (consuming one `fail_next`)."""
        answer = self._next_answer()
        attempt = self._count_attempt(event.id)
        self._track_sequence(event.object_id, event.sequence)
        record = Record(
            event_id=event.id,
            type=event.type,
            object_id=event.object_id,
            sequence=event.sequence,
            created_at=event.created_at,
            attempt=attempt,
            received_wall_s=time.time(),
            received_mono_s=time.monotonic(),
            answer_status=answer.status,
            answer_delay_ms=answer.delay_ms,
        )
        if len(self._records) == self._records.maxlen:
            self.dropped_records += 1
        self._records.append(record)
        self.received += 1
        return record, answer

    def received_json(self) -> dict[str, Any]:
        return {
            "data": [record.to_json() for record in self._records],
            "rejected": self.rejected,
            "rejected_by_code": dict(self.rejected_by_code),
            "dropped": self.dropped_records,
        }

    def stats_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "distinct_events": self.distinct_events,
            "duplicates": self.received - self.distinct_events,
            "rejected": self.rejected,
            "rejected_by_code": dict(self.rejected_by_code),
            "out_of_order": self.out_of_order,
            "dropped_records": self.dropped_records,
            "forgotten_events": self.forgotten_events,
            "last_sequence": {obj: last for obj, (last, _) in self._sequences.items()},
            "behaviour": self.behaviour_json(),
        }

    def _next_answer(self) -> Answer:
        behaviour = self.behaviour
        if self._fail_next_left > 0:
            self._fail_next_left -= 1
            return Answer(behaviour.status)
        match behaviour.mode:
            case "ok":
                return Answer(200)
            case "error":
                return Answer(behaviour.status)
            case "slow":
                return Answer(200, behaviour.delay_ms)
            case "hang":
                return Answer(None)

    def _count_attempt(self, event_id: str) -> int:
        attempt = self._attempts.pop(event_id, 0) + 1
        if attempt == 1:
            self.distinct_events += 1
            if len(self._attempts) >= MAX_TRACKED_EVENTS_PER_MERCHANT:
                # A retry of a forgotten event then counts as a new one: `forgotten_events` says so.
                self._attempts.popitem(last=False)
                self.forgotten_events += 1
        self._attempts[event_id] = attempt
        return attempt

    def _track_sequence(self, object_id: str, sequence: int) -> None:
        previous = self._sequences.pop(object_id, None)
        if previous is None:
            if len(self._sequences) >= MAX_TRACKED_OBJECTS_PER_MERCHANT:
                self._sequences.popitem(last=False)
            highest = sequence
        else:
            if sequence < previous[1]:
                self.out_of_order += 1
            highest = max(sequence, previous[1])
        self._sequences[object_id] = (sequence, highest)


class SinkState:
    """Every merchant's inbox, the nonces seen, and notifications for unknown merchants."""

    def __init__(self) -> None:
        self.inboxes: dict[str, MerchantInbox] = {}
        self.nonces = NonceCache(SIGNATURE_WINDOW_S, MAX_NONCES)
        self.unknown_merchant_rejected = 0

    def inbox(self, merchant_id: str) -> MerchantInbox:
        """The merchant's inbox, created (without a secret) on first use."""
        inbox = self.inboxes.get(merchant_id)
        if inbox is None:
            if len(self.inboxes) >= MAX_MERCHANTS:
                raise InvalidRequest(
                    f"the sink holds at most {MAX_MERCHANTS} merchants", code="too_many_merchants"
                )
            inbox = self.inboxes[merchant_id] = MerchantInbox(merchant_id, None)
        return inbox

    def register(self, merchant_id: str, secret: str) -> MerchantInbox:
        inbox = self.inbox(merchant_id)
        inbox.secret = secret
        return inbox

    def totals_json(self) -> dict[str, int]:
        """Sums over every merchant (cheap: what a benchmark scrapes while it runs)."""
        inboxes = self.inboxes.values()
        return {
            "received": sum(i.received for i in inboxes),
            "rejected": sum(i.rejected for i in inboxes),
            "unknown_merchant_rejected": self.unknown_merchant_rejected,
        }

    def stats_json(self) -> dict[str, Any]:
        return {
            "merchants": {mid: inbox.stats_json() for mid, inbox in self.inboxes.items()},
            "unknown_merchant_rejected": self.unknown_merchant_rejected,
            "totals": self.totals_json(),
        }
