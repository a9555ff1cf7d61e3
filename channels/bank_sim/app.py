"""The bank simulator's aiohttp app (SPEC 9): signed bank API plus operator endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from channels.bank_sim import routes_b2b, routes_bank, routes_sim
from channels.bank_sim.appkeys import SIM_KEY
from channels.bank_sim.config import BankSimConfig
from channels.bank_sim.errors import error_middleware
from channels.bank_sim.sim import BankSim

MAX_BODY_BYTES: Final = 1024 * 1024


def build_bank_sim_app(config: BankSimConfig) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    sim = BankSim(config)
    app[SIM_KEY] = sim

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await sim.start()
        yield
        await sim.close()

    async def on_shutdown(app: web.Application) -> None:
        sim.closing.set()  # release artificial hangs before the server waits for handlers

    app.cleanup_ctx.append(lifetime)
    app.on_shutdown.append(on_shutdown)
    app.add_routes(routes_sim.routes)
    app.add_routes(routes_bank.routes)
    app.add_routes(routes_b2b.routes)
    return app
