"""The signed bank API the gateway calls: submit a payout, query it, fetch a statement."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import struct
from datetime import date
from typing import NoReturn

from aiohttp import web

from channels.bank_sim.appkeys import SIM_KEY
from channels.bank_sim.auth import verify_gateway_request
from channels.bank_sim.bank import Bank, Busy, InMaintenance, RefConflict
from channels.bank_sim.errors import SimError, json_response
from channels.bank_sim.schemas import PayoutSubmission, decode
from channels.bank_sim.sim import BankSim

routes = web.RouteTableDef()


async def signed_bank(request: web.Request) -> tuple[BankSim, Bank, bytes]:
    sim = request.app[SIM_KEY]
    bank_id = request.match_info["bank_id"]
    bank = sim.banks.get(bank_id)
    if bank is None:
        raise SimError(404, "unknown_bank", f"no bank {bank_id!r}")
    body = await request.read()
    verify_gateway_request(request, body, sim.secrets[bank_id], sim.nonces)
    return sim, bank, body


def maintenance_error(bank: Bank) -> SimError:
    return SimError(503, "maintenance", f"bank {bank.bank_id} is in maintenance")


async def _wait(sim: BankSim, wall_ms: float) -> None:
    """Wait on the wall clock, cut short when the app shuts down."""
    if wall_ms <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(sim.closing.wait(), wall_ms / 1000)


def _drop_connection(request: web.Request) -> NoReturn:
    """End the request with a TCP reset and no response, like a bank dropping the line."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                # Linger 0: close() sends RST instead of FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    # aiohttp's way to end a handler without a response (it then closes the connection).
    raise asyncio.CancelledError


@routes.post("/banks/{bank_id}/payouts")
async def submit_payout(request: web.Request) -> web.Response:
    sim, bank, body = await signed_bank(request)
    submission_request = decode(body, PayoutSubmission)
    now = sim.clock.now()
    try:
        bank.admit(now)
        submission = bank.submit(submission_request, now)
    except InMaintenance:
        raise maintenance_error(bank) from None
    except Busy as exc:
        retry_after_s = str(max(1, math.ceil(exc.retry_after_s)))
        raise SimError(503, "bank_busy", str(exc), headers={"Retry-After": retry_after_s}) from None
    except RefConflict as exc:
        raise SimError(409, "ref_conflict", str(exc)) from None
    if submission.fate is not None:
        sim.lifecycle.start(bank, submission.record, submission.fate)
    if submission.sync_fault == "reset":
        _drop_connection(request)
    if submission.sync_fault == "timeout":
        await _wait(sim, bank.profile.sync_timeout_hang_ms)
    else:
        await _wait(sim, submission.ack_ms)
    return json_response(submission.record.to_json() | {"replayed": submission.replayed})


@routes.get("/banks/{bank_id}/payouts/{ref}")
async def get_payout(request: web.Request) -> web.Response:
    sim, bank, _ = await signed_bank(request)
    if bank.in_maintenance(sim.clock.now()):
        raise maintenance_error(bank)
    record = bank.get(request.match_info["ref"])
    if record is None:
        raise SimError(404, "not_found", "no such payout at this bank")
    return json_response(record.to_json())


@routes.get("/banks/{bank_id}/statements/{date}")
async def get_statement(request: web.Request) -> web.Response:
    _, bank, _ = await signed_bank(request)
    raw_date = request.match_info["date"]
    try:
        day = date.fromisoformat(raw_date)
    except ValueError:
        raise SimError(400, "invalid_request", "date must be YYYY-MM-DD") from None
    if raw_date != day.isoformat():
        raise SimError(400, "invalid_request", "date must be YYYY-MM-DD")
    records = sorted(
        (r for r in bank.records() if r.business_date == day),
        key=lambda r: (r.accepted_at, r.bank_ref),
    )
    items = [r.to_json() for r in records]
    return json_response({"bank_id": bank.bank_id, "date": day.isoformat(), "items": items})
