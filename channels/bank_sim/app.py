"""The bank simulator's aiohttp app. Foundation stub: health only; banks arrive with issue 4."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": "bank-sim"})


def build_bank_sim_app(seed: int | None = None) -> web.Application:
    app = web.Application()
    app.add_routes(routes)
    return app
