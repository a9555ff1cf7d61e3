"""The bank's B2B gateway: the gateway registers and queries B2B payments (signed), and the
corporate payer sees the bank's payment page (unsigned, like a browser would)."""

from __future__ import annotations

import html

from aiohttp import web

from channels.bank_sim.appkeys import SIM_KEY
from channels.bank_sim.b2b_desk import B2BDesk, B2BNotSupported
from channels.bank_sim.bank import InMaintenance, RefConflict
from channels.bank_sim.errors import SimError, json_response
from channels.bank_sim.routes_bank import maintenance_error, signed_bank
from channels.bank_sim.schemas import B2BRequest, decode

routes = web.RouteTableDef()


def yuan(amount_fen: int) -> str:
    """`¥1,234.56` for 123456 fen, with integer math only."""
    assert amount_fen >= 0, "B2B amounts are positive"
    return f"¥{amount_fen // 100:,}.{amount_fen % 100:02d}"


async def _signed_desk(request: web.Request) -> tuple[B2BDesk, bytes]:
    sim, bank, body = await signed_bank(request, "b2b")
    desk = sim.b2b_desks[bank.bank_id]
    try:
        desk.check_supported()
    except B2BNotSupported as exc:
        raise SimError(400, "b2b_not_supported", str(exc)) from None
    return desk, body


@routes.post("/banks/{bank_id}/b2b")
async def register_b2b(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    desk, body = await _signed_desk(request)
    b2b_request = decode(body, B2BRequest)
    try:
        registration = desk.register(b2b_request, sim.clock.now(), str(request.url.origin()))
    except InMaintenance:
        raise maintenance_error(desk.bank) from None
    except RefConflict as exc:
        raise SimError(409, "ref_conflict", str(exc)) from None
    sim.books.mark_b2b(registration.record, registration.fate, desk.sequence)
    sim.books.write_now()  # on disk before the bank answers
    if registration.fate is not None:
        sim.b2b_lifecycle.start(desk.bank, registration.record, registration.fate)
    return json_response(registration.record.to_json() | {"replayed": registration.replayed})


@routes.get("/banks/{bank_id}/b2b/{ref}")
async def get_b2b(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    desk, _ = await _signed_desk(request)
    if desk.bank.in_maintenance(sim.clock.now()):
        raise maintenance_error(desk.bank)
    record = desk.get(request.match_info["ref"])
    if record is None:
        raise SimError(404, "not_found", "no such B2B payment at this bank")
    return json_response(record.to_json())


@routes.get("/banks/{bank_id}/b2b/{ref}/page")
async def b2b_page(request: web.Request) -> web.Response:
    """The simulated bank page the payer would pay on; shows the payment as the bank sees it."""
    sim = request.app[SIM_KEY]
    bank_id = request.match_info["bank_id"]
    desk = sim.b2b_desks.get(bank_id)
    record = desk.get(request.match_info["ref"]) if desk is not None else None
    if desk is None or record is None:
        raise SimError(404, "not_found", "no such B2B payment at this bank")
    name = html.escape(desk.bank.profile.name)
    payer = html.escape(record.payer_account_name or "—")
    page = (
        "<!doctype html>\n"
        '<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{name} 企业网银 · B2B 支付</title></head>\n"
        f"<body><h1>{name} 企业网银</h1>\n"
        f'<p>订单 <span class="ref">{html.escape(record.ref)}</span></p>\n'
        f'<p>付款方 <span class="payer">{payer}</span></p>\n'
        f'<p>金额 <span class="amount">{yuan(record.amount_fen)}</span></p>\n'
        f'<p>状态 <span class="status">{record.status}</span></p>\n'
        "</body></html>\n"
    )
    return web.Response(text=page, content_type="text/html", charset="utf-8")
