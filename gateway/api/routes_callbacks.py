"""Bank callbacks in (SPEC 10): `POST /callbacks/{bank_id}`, signed with that bank's key.

Each item is applied through the payout transition table in one transaction with its ledger
move and outbox event, so duplicates and reordered words never change a final state or move
money twice. A word from a bank that is not the payout's bank, or with another amount, is
refused and logged (reconciliation will show it); an unknown reference is 404.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from channels.keys import bank_secret
from gateway.api.auth import verify_signed
from gateway.api.jsonio import json_response, read_json
from gateway.api.schemas import BankCallback
from gateway.api.services import SERVICES
from gateway.errors import NotFound
from gateway.payouts.bank_status import events_for
from gateway.payouts.transitions import apply_events

log = logging.getLogger("paygate.callbacks")
routes = web.RouteTableDef()


@routes.post("/callbacks/{bank_id}")
async def bank_callback(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    bank_id = request.match_info["bank_id"]
    if bank_id not in await services.channel_ids():
        raise NotFound(f"no bank channel {bank_id}")
    secret = bank_secret(services.settings.bank_master_secret, bank_id)

    async def secret_for(key: str) -> str | None:
        return secret if key == bank_id else None

    await verify_signed(request, secret_for, services.nonces, services.settings.signature_window_s)
    body = await read_json(request, BankCallback)
    refs = [item.ref for item in body.items]
    async with services.pool.acquire() as conn:
        known = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT id, bank_id, amount_fen FROM payouts WHERE id = ANY($1::text[])", refs
            )
        }
        results: list[dict[str, Any]] = []
        events = []
        for item in body.items:
            row = known.get(item.ref)
            verdict = "accepted"
            if row is None:
                verdict = "not_found"
            elif row["bank_id"] != bank_id or row["amount_fen"] != item.amount:
                verdict = "mismatch"
            else:
                events += events_for(item.ref, item.status, bank_id=bank_id,
                                     bank_ref=item.bank_ref, failure_code=item.failure_code,
                                     failure_message=item.failure_message)  # fmt: skip
            if verdict != "accepted":
                log.warning("bank callback refused", extra={
                    "bank_id": bank_id, "ref": item.ref, "event_id": item.event_id,
                    "verdict": verdict, "bank_status": item.status})  # fmt: skip
            results.append({"event_id": item.event_id, "ref": item.ref, "result": verdict})
        applied = await apply_events(conn, events) if events else []
    changed = {a.payout_id for a in applied if a.applied}
    status = {a.payout_id: a.status for a in applied}
    for r in results:
        if r["result"] == "accepted":
            r["result"] = "applied" if r["ref"] in changed else "no_change"
            r["status"] = status.get(r["ref"])
    if len(results) == 1 and results[0]["result"] == "not_found":
        raise NotFound(f"no payout {results[0]['ref']}")
    return json_response({"results": results})
