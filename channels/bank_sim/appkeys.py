"""Typed keys for what the simulator keeps on its aiohttp app."""

from __future__ import annotations

from aiohttp import web

from channels.bank_sim.sim import BankSim

SIM_KEY = web.AppKey("bank_sim", BankSim)
