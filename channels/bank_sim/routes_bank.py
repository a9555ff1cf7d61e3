"""The signed bank API the gateway calls: submit a payout (alone or in a batch), query it,
fetch a statement."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import struct
from collections.abc import AsyncIterator
from datetime import date
from typing import Any, NoReturn

import orjson
from aiohttp import web

from channels.bank_sim.appkeys import SIM_KEY
from channels.bank_sim.auth import verify_gateway_request
from channels.bank_sim.bank import Bank, Busy, InMaintenance, RefConflict, Submission
from channels.bank_sim.batch_desk import BatchAnswer, BatchNotSupported, BatchTooLarge
from channels.bank_sim.errors import SimError, json_response
from channels.bank_sim.profile import SyncFault
from channels.bank_sim.schemas import PayoutBatch, PayoutSubmission, decode
from channels.bank_sim.sim import BankSim, RouteKind
from channels.bank_sim.statement import statement_lines, to_csv
from protocol import signing

routes = web.RouteTableDef()


async def signed_bank(
    request: web.Request, kind: RouteKind, *, nonce_written: bool = True
) -> tuple[BankSim, Bank, bytes]:
    """The bank the path names and the body, once the signature holds; counts the request.
    With `nonce_written` False the caller sees its nonce to disk itself (`_refusing`): a
    submission's goes in the one commit that records what it took."""
    sim = request.app[SIM_KEY]
    bank_id = request.match_info["bank_id"]
    bank = sim.banks.get(bank_id)
    if bank is None:
        raise SimError(404, "unknown_bank", f"no bank {bank_id!r}")
    sim.http[bank_id].requests[kind] += 1
    body = await request.read()
    verify_gateway_request(request, body, sim.secrets[bank_id], sim.nonces)
    if nonce_written:
        await sim.books.written()  # its nonce: a replay after a restart is refused too
    return sim, bank, body


@contextlib.asynccontextmanager
async def _refusing(sim: BankSim) -> AsyncIterator[None]:
    """Around a submission whose nonce is not yet on disk: what it takes is written with its
    nonce before the answer (`BankSim.accepted`, one commit per batch), and a refusal waits
    for the nonce's commit before it answers."""
    try:
        yield
    except SimError:
        await sim.books.written()
        raise


def maintenance_error(bank: Bank) -> SimError:
    return SimError(503, "maintenance", f"bank {bank.bank_id} is in maintenance")


def _retry_after(wait_s: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait_s)))}


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


async def _delay_answer(
    request: web.Request, sim: BankSim, bank: Bank, sync_fault: SyncFault | None, ack_ms: float
) -> None:
    """Hold the answer as the drawn fault says: drop the line, hang past the caller, or wait the
    ack latency. What was accepted is already recorded (the caller must query, not resend)."""
    if sync_fault == "reset":
        _drop_connection(request)
    if sync_fault == "timeout":
        await _wait(sim, bank.profile.sync_timeout_hang_ms)
    else:
        await _wait(sim, ack_ms)


def _record_json(sim: BankSim, bank: Bank, submission: Submission) -> dict[str, Any]:
    record = submission.record.to_json() | {"replayed": submission.replayed}
    return sim.answer_lies[bank.bank_id].record(bank.profile, "submit", record)


@routes.post("/banks/{bank_id}/payouts")
async def submit_payout(request: web.Request) -> web.Response:
    sim, bank, body = await signed_bank(request, "submit", nonce_written=False)
    async with _refusing(sim):
        submission_request = decode(body, PayoutSubmission)
        now = sim.clock.now()
        try:
            bank.admit(now)
            submission = bank.submit(submission_request, now)
        except InMaintenance:
            raise maintenance_error(bank) from None
        except Busy as exc:
            busy = _retry_after(exc.retry_after_s)
            raise SimError(503, "bank_busy", str(exc), headers=busy) from None
        except RefConflict as exc:
            raise SimError(409, "ref_conflict", str(exc)) from None
    sim.accepted(bank, [submission])
    await _delay_answer(request, sim, bank, submission.sync_fault, submission.ack_ms)
    # Rendered after the wait: a payout that completed meanwhile is answered as it is now.
    return json_response(_record_json(sim, bank, submission))


def _batch_json(sim: BankSim, bank: Bank, answer: BatchAnswer) -> dict[str, Any]:
    """Each item names the ref it answers for (the gateway matches answers by it)."""
    items: list[dict[str, Any]] = []
    for item in answer.items:
        if isinstance(item, Submission):
            record = _record_json(sim, bank, item)
            items.append({"ref": item.record.ref, "result": "accepted", "record": record})
        else:
            error = {"code": item.code, "message": item.message}
            items.append({"ref": item.ref, "result": "refused", "error": error})
    return {"items": sim.answer_lies[bank.bank_id].order(bank.profile, items)}


@routes.post("/banks/{bank_id}/payout-batches")
async def submit_payout_batch(request: web.Request) -> web.Response:
    """批量代付: each item is answered on its own; the answer as a whole meets one sync fault."""
    sim, bank, body = await signed_bank(request, "submit_batch", nonce_written=False)
    desk = sim.batch_desks[bank.bank_id]
    async with _refusing(sim):
        try:
            desk.check_supported()  # a bank without batches has no such endpoint, whatever the body
            batch = decode(body, PayoutBatch)
            sim.http[bank.bank_id].batch_items += len(batch.items)
            answer = desk.submit(batch.items, sim.clock.now())
        except BatchNotSupported as exc:
            raise SimError(404, "batch_not_supported", str(exc)) from None
        except BatchTooLarge as exc:
            raise SimError(400, "batch_too_large", str(exc)) from None
        except InMaintenance:
            raise maintenance_error(bank) from None
    sim.accepted(bank, (item for item in answer.items if isinstance(item, Submission)))
    await _delay_answer(request, sim, bank, answer.sync_fault, answer.ack_ms)
    headers = None if answer.retry_after_s is None else _retry_after(answer.retry_after_s)
    return json_response(_batch_json(sim, bank, answer), headers=headers)


@routes.get("/banks/{bank_id}/payouts/{ref}")
async def get_payout(request: web.Request) -> web.Response:
    sim, bank, _ = await signed_bank(request, "query")
    if bank.in_maintenance(sim.clock.now()):
        raise maintenance_error(bank)
    ref = request.match_info["ref"]
    record = bank.get(ref)
    if record is None:
        return _no_such_order(request, sim, bank, ref)
    return json_response(sim.answer_lies[bank.bank_id].record(bank.profile, "query",
                                                              record.to_json()))  # fmt: skip


def _no_such_order(request: web.Request, sim: BankSim, bank: Bank, ref: str) -> web.Response:
    """The bank's own word that it holds no order `ref`: a 404 whose body names the code, the
    bank, the ref and the nonce of the query it answers, signed with the bank's key (the
    canonical string of the query's method and path, over this body). A 404 without it (a
    wrong path, a proxy) says nothing about the order."""
    body = orjson.dumps({
        "code": "no_such_order", "message": "no such payout at this bank",
        "bank_id": bank.bank_id, "ref": ref,
        "request_nonce": request.headers.get(signing.H_NONCE, ""),
    })  # fmt: skip
    headers = signing.sign_request(bank.bank_id, sim.secrets[bank.bank_id], request.method,
                                   request.raw_path, body)  # fmt: skip
    return web.Response(body=body, status=404, content_type="application/json", headers=headers)


@routes.get("/banks/{bank_id}/statements/{date}")
async def get_statement(request: web.Request) -> web.Response:
    """The day's lines as JSON, or with `Accept: text/csv` as the CSV a bank would send."""
    sim, bank, _ = await signed_bank(request, "statement")
    raw_date = request.match_info["date"]
    try:
        day = date.fromisoformat(raw_date)
    except ValueError:
        raise SimError(400, "invalid_request", "date must be YYYY-MM-DD") from None
    if raw_date != day.isoformat():
        raise SimError(400, "invalid_request", "date must be YYYY-MM-DD")
    lines = statement_lines(bank.records(), day, sim.books.statement_faults(bank.bank_id))
    if "text/csv" in request.headers.get("Accept", ""):
        return web.Response(text=to_csv(lines), content_type="text/csv", charset="utf-8")
    return json_response({"bank_id": bank.bank_id, "date": day.isoformat(), "items": lines})
