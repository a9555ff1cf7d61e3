"""Service endpoints: health, readiness, metrics."""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web
from redis.asyncio.cluster import RedisCluster

from gateway.api.jsonio import json_response
from gateway.api.operations import Op
from gateway.api.services import SERVICES
from gateway.metrics import CONTENT_TYPE

routes = web.RouteTableDef()
READY_TIMEOUT_S = 2.0

OPERATIONS: Final[tuple[Op, ...]] = (
    Op("get", "/healthz", "Liveness", "none", {200: None}),
    Op(
        "get",
        "/readyz",
        "Readiness (PostgreSQL and Redis answer)",
        "none",
        {200: None},
        errors=(503,),
    ),
    Op("get", "/metrics", "Prometheus metrics (text)", "none", {200: None}),
)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """The whole system's metrics (every process's, under `paygate up`), Prometheus text
    format (SPEC 11; gateway/metrics.py, gateway/system_gauges.py)."""
    services = request.app[SERVICES]
    body = services.metrics.render() + await services.gauges.page()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(services.pool.fetchval("SELECT 1"), READY_TIMEOUT_S)
        checks["postgres"] = "ok"
    except Exception as exc:  # readiness reports any failure; it never raises
        checks["postgres"] = f"error: {type(exc).__name__}"
    try:
        redis = services.redis
        # A cluster answers if one node does: a master failing over stops only its slots'
        # merchants (503 each), not the whole gateway.
        if isinstance(redis, RedisCluster):
            await asyncio.wait_for(redis.ping(target_nodes=RedisCluster.RANDOM), READY_TIMEOUT_S)
        else:
            await asyncio.wait_for(redis.ping(), READY_TIMEOUT_S)
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return json_response({"status": "ready" if ready else "not_ready", "checks": checks},
                         200 if ready else 503)  # fmt: skip
