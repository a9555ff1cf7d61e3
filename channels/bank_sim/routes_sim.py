"""Unsigned operator and test endpoints: health, profiles, presets, records (payouts and B2B),
planted statement faults, callback storms and stats."""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from typing import Annotated, Any, Final

import msgspec
import orjson
from aiohttp import web

from channels.bank_sim.appkeys import SIM_KEY
from channels.bank_sim.b2b_records import B2B_STATUSES
from channels.bank_sim.bank import Bank, ref_prefix
from channels.bank_sim.errors import SimError, json_response
from channels.bank_sim.lifecycle import callback_item
from channels.bank_sim.presets import UnknownPreset, identity_of, preset_profile
from channels.bank_sim.profile import patched
from channels.bank_sim.records import STATUSES, iso
from channels.bank_sim.sim import BankSim
from channels.bank_sim.statement import StatementFault, bank_refs
from protocol.clock import BUSINESS_TZ, ClockAnchor, SimClock

routes = web.RouteTableDef()
# Two processes computing "now" from anchors a few ms apart may differ by that much.
CLOCK_TOLERANCE_S: Final = 1.0

MAX_STORM_COPIES: Final = 10
MAX_STORM_RECORDS: Final = 10_000


class CallbackStorm(msgspec.Struct, forbid_unknown_fields=True):
    """Replay the callbacks of each bank's latest final payouts, `copies` times each."""

    copies: Annotated[int, msgspec.Meta(ge=1, le=MAX_STORM_COPIES)] = 3
    last: Annotated[int, msgspec.Meta(ge=1, le=MAX_STORM_RECORDS)] = 1_000
    bank_id: str | None = None  # one bank, or every bank
    seed: int = 0  # the shuffle's, so a storm can be repeated


def _bank(request: web.Request) -> Bank:
    bank_id = request.match_info["bank_id"]
    bank = request.app[SIM_KEY].banks.get(bank_id)
    if bank is None:
        raise SimError(404, "unknown_bank", f"no bank {bank_id!r}")
    return bank


def _record_filters(request: web.Request, statuses: Sequence[str]) -> tuple[str | None, str | None]:
    """`?bank_id=&status=` of a record listing, checked (empty means no filter)."""
    bank_id = request.query.get("bank_id") or None
    status = request.query.get("status") or None
    if status is not None and status not in statuses:
        raise SimError(400, "invalid_request", f"status must be one of {', '.join(statuses)}")
    if bank_id is not None and bank_id not in request.app[SIM_KEY].banks:
        raise SimError(404, "unknown_bank", f"no bank {bank_id!r}")
    return bank_id, status


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "service": "bank-sim"})


@routes.get("/banks")
async def list_banks(request: web.Request) -> web.Response:
    banks = request.app[SIM_KEY].banks.values()
    return json_response({"data": [bank.profile.to_json() for bank in banks]})


@routes.get("/banks/{bank_id}/profile")
async def get_profile(request: web.Request) -> web.Response:
    return json_response(_bank(request).profile.to_json())


@routes.put("/banks/{bank_id}/profile")
async def put_profile(request: web.Request) -> web.Response:
    """Merge a partial profile (RFC 7396) over the current one; `preset` resets first."""
    bank = _bank(request)
    try:
        patch: Any = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise SimError(400, "invalid_request", f"malformed JSON: {exc}") from None
    if not isinstance(patch, dict):
        raise SimError(400, "invalid_request", "the body must be a JSON object")
    base = bank.profile
    preset = patch.pop("preset", None)
    try:
        if preset is not None:
            if not isinstance(preset, str):
                raise UnknownPreset("preset must be a string")
            base = preset_profile(preset, identity_of(base))
        profile = patched(base, patch)
    except (msgspec.ValidationError, ValueError) as exc:
        raise SimError(400, "invalid_request", str(exc)) from None
    request.app[SIM_KEY].set_profile(bank, profile)
    return json_response(profile.to_json())


@routes.put("/sim/preset/{name}")
async def put_preset(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    name = request.match_info["name"]
    try:
        sim.apply_preset(name)
    except UnknownPreset as exc:
        raise SimError(404, "unknown_preset", str(exc)) from None
    profiles = [bank.profile.to_json() for bank in sim.banks.values()]
    return json_response({"preset": name, "data": profiles})


@routes.get("/sim/records")
async def list_records(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    bank_id, status = _record_filters(request, STATUSES)
    return json_response({"data": [r.to_json() for r in sim.records(bank_id, status)]})


@routes.get("/sim/b2b")
async def list_b2b(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    bank_id, status = _record_filters(request, B2B_STATUSES)
    return json_response({"data": [r.to_json() for r in sim.b2b_records(bank_id, status)]})


@routes.post("/sim/banks/{bank_id}/statement-faults")
async def add_statement_fault(request: web.Request) -> web.Response:
    """Plant a difference in the bank's statements (SPEC 9); the records stay true."""
    sim = request.app[SIM_KEY]
    bank = _bank(request)
    try:
        fault = msgspec.json.decode(await request.read(), type=StatementFault)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        raise SimError(400, "invalid_request", str(exc)) from None
    now = sim.clock.now()
    stored: dict[str, Any] = {"kind": fault.kind}
    if fault.kind == "extra_line":
        day = fault.date or now.astimezone(BUSINESS_TZ).date().isoformat()
        tag = secrets.token_hex(4).upper()
        stored |= {
            "date": day,
            "amount": fault.amount,
            "bank_ref": f"{ref_prefix(bank.profile.name)}X{tag}",
            "merchant_ref": f"ext_{tag.lower()}",
            "booked_at": iso(now),
        }
    else:
        if not any(fault.bank_ref in bank_refs(r) for r in bank.records()):
            raise SimError(404, "not_found", f"no statement line {fault.bank_ref!r} at this bank")
        stored |= {"bank_ref": fault.bank_ref}
        if fault.kind == "amount_change":
            stored |= {"amount": fault.amount}
    fault_id = sim.books.add_statement_fault(bank.bank_id, stored)
    return json_response({"id": fault_id, "bank_id": bank.bank_id} | stored, status=201)


@routes.get("/sim/banks/{bank_id}/statement-faults")
async def list_statement_faults(request: web.Request) -> web.Response:
    bank = _bank(request)
    return json_response({"data": request.app[SIM_KEY].books.statement_faults(bank.bank_id)})


@routes.post("/sim/callback-storm")
async def callback_storm(request: web.Request) -> web.Response:
    """A burst of replayed callbacks (SPEC 12, callback storm): each bank sends the callback of
    its `last` most recent final payouts again, `copies` times each, shuffled, so duplicates of
    old news arrive out of order and interleaved with the bank's new callbacks. The books do not
    change: the gateway must take every copy as news it already has."""
    sim = request.app[SIM_KEY]
    try:
        storm = msgspec.json.decode(await request.read() or b"{}", type=CallbackStorm)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise SimError(400, "invalid_request", str(exc)) from None
    if storm.bank_id is not None and storm.bank_id not in sim.banks:
        raise SimError(404, "unknown_bank", f"no bank {storm.bank_id!r}")
    rng = random.Random(storm.seed)
    sent: dict[str, int] = {}
    for bank_id, bank in sim.banks.items():
        if storm.bank_id not in (None, bank_id):
            continue
        final = [r for r in bank.records() if r.status != "processing"]
        final.sort(key=lambda r: r.completed_at or r.accepted_at)
        items = [callback_item(r) for r in final[-storm.last :]] * storm.copies
        rng.shuffle(items)
        if items:
            sim.sender.send(bank_id, items)
        sent[bank_id] = len(items)
    return json_response({"copies": storm.copies, "items": sum(sent.values()), "banks": sent})


class ClockFollow(msgspec.Struct, forbid_unknown_fields=True):
    """The gateway's clock anchor (SPEC 12): the simulator keeps the same simulated time."""

    wall_s: float
    sim_s: float
    scale: Annotated[float, msgspec.Meta(gt=0)]


def _clock_json(sim: BankSim) -> dict[str, Any]:
    return {"now": iso(sim.clock.now()), "scale": sim.clock.scale}


@routes.get("/sim/clock")
async def get_clock(request: web.Request) -> web.Response:
    return json_response(_clock_json(request.app[SIM_KEY]))


@routes.put("/sim/clock")
async def follow_clock(request: web.Request) -> web.Response:
    """Take the gateway's clock anchor, so a clock jump there (an operator's, a scenario's)
    moves the banks' business dates, cut-offs and maintenance windows too. Simulated time
    only goes forward: an anchor that would move it back is refused (409), nothing changes."""
    sim = request.app[SIM_KEY]
    try:
        body = msgspec.json.decode(await request.read(), type=ClockFollow)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise SimError(400, "invalid_request", str(exc)) from None
    anchor = ClockAnchor(wall_s=body.wall_s, sim_s=body.sim_s, scale=body.scale)
    behind_s = sim.clock.now_s() - SimClock(anchor).now_s()
    if behind_s > CLOCK_TOLERANCE_S:
        raise SimError(409, "clock_behind", f"that clock is {behind_s:.3f}s behind the bank's")
    sim.clock.set_anchor(anchor)
    sim.books.save_clock_anchor(anchor)
    return json_response(_clock_json(sim))


@routes.get("/sim/stats")
async def stats(request: web.Request) -> web.Response:
    return json_response(request.app[SIM_KEY].stats())
