"""What a payout costs (SPEC 13): every process's CPU time from the OS, and the HTTP requests
and SQL statements each hop makes, read before and after a measured window.

Processes are found from `run.json` (`pids`: each child of `paygate up`, with its own
children) and from the stores themselves: PostgreSQL's postmaster is the parent of our
backend (`pg_backend_pid()`), Redis tells its pid (`INFO server`; on a Redis Cluster every
node on this machine, summed). PostgreSQL's CPU includes
the backends that exited during the window (the postmaster's reaped-children times).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import psutil
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from gateway.storage.pools import cluster_url

# The order the table lists them in.
PROCESSES = ("gateway", "worker", "bank-sim", "webhook-sink", "postgres", "redis", "up")
# The gateway's own processes and stores; the rest stand in for the world around it (banks,
# merchants' servers, their load) or run the measurement.
PRODUCT = ("gateway", "worker", "postgres", "redis")


@dataclass(frozen=True, slots=True)
class Reading:
    at_s: float
    cpu_s: dict[str, float]  # process name -> CPU seconds so far (user + system)
    counts: dict[str, float] = field(default_factory=dict)  # "sql accept", "http notify", ...


def cpu_seconds(proc: psutil.Process, *, with_children: bool, reaped: bool = False) -> float:
    """User + system seconds of `proc`, optionally its live descendants, optionally the
    children it has already reaped (a postmaster's exited backends)."""
    try:
        t = proc.cpu_times()
        total: float = t.user + t.system
        if reaped:
            total += t.children_user + t.children_system
        if with_children:
            for child in proc.children(recursive=True):
                try:
                    c = child.cpu_times()
                    total += c.user + c.system
                except psutil.NoSuchProcess:
                    pass
        return total
    except psutil.NoSuchProcess:
        return 0.0


async def _redis_pid(client: aioredis.Redis) -> int | None:
    """The server's pid (INFO server), or None when it does not answer; closes `client`."""
    try:
        info = await client.info("server")
        return int(info["process_id"])
    except (OSError, KeyError, aioredis.RedisError):
        return None
    finally:
        await client.aclose()


class CostMeter:
    def __init__(self, info: dict[str, Any]) -> None:
        self._info = info
        self._procs: dict[str, psutil.Process] = {}
        self._redis_nodes: list[psutil.Process] = []  # a cluster's servers, "redis" in the table

    async def locate(self) -> None:
        pids: dict[str, int] = self._info.get("pids", {})
        for name in ("gateway", "worker", "bank-sim", "webhook-sink", "up"):
            if name in pids:
                self._procs[name] = psutil.Process(pids[name])
        conn = await asyncpg.connect(self._info["database_url"])
        try:
            backend = psutil.Process(int(await conn.fetchval("SELECT pg_backend_pid()")))
            parent = backend.parent()
            if parent is not None:
                self._procs["postgres"] = parent
        except psutil.Error:
            pass  # a server on another machine: no figure
        finally:
            await conn.close()
        cluster = cluster_url(self._info["redis_url"])
        if cluster is None:
            pid = await _redis_pid(aioredis.Redis.from_url(self._info["redis_url"]))
            if pid is not None:
                self._procs["redis"] = psutil.Process(pid)
            return
        for host, port in cluster.nodes:
            client = aioredis.Redis(host=host, port=port, password=cluster.password,
                                    username=cluster.username)  # fmt: skip
            pid = await _redis_pid(client)
            if pid is not None and host in ("127.0.0.1", "localhost", "::1"):
                self._redis_nodes.append(psutil.Process(pid))

    def cpu(self) -> dict[str, float]:
        out = {}
        for name, proc in self._procs.items():
            if name == "up":  # the supervisor alone; its children are listed on their own
                out[name] = cpu_seconds(proc, with_children=False)
            elif name == "postgres":
                out[name] = cpu_seconds(proc, with_children=True, reaped=True)
            else:
                out[name] = cpu_seconds(proc, with_children=True)
        if self._redis_nodes:
            out["redis"] = sum(cpu_seconds(p, with_children=False) for p in self._redis_nodes)
        out["bench"] = cpu_seconds(psutil.Process(os.getpid()), with_children=False)
        return out

    async def read(self, http: aiohttp.ClientSession) -> Reading:
        counts = await self._counts(http)
        return Reading(at_s=time.monotonic(), cpu_s=self.cpu(), counts=counts)

    async def _counts(self, http: aiohttp.ClientSession) -> dict[str, float]:
        counts: dict[str, float] = {}
        # One page is the whole system: every process of `paygate up` writes its metrics to
        # the run's PROMETHEUS_MULTIPROC_DIR and any gateway process sums them.
        page = await _text(http, self._info["gateway_url"] + "/metrics")
        for family in text_string_to_metric_families(page):
            for sample in family.samples:
                label = sample.labels
                if sample.name == "paygate_sql_statements_total":
                    key = f"sql {label.get('hop', '?')}"
                elif sample.name == "paygate_http_client_requests_total":
                    key = f"out {label.get('kind', '?')}"
                elif sample.name == "paygate_http_requests_total":
                    key = f"in {label.get('method', '?')} {label.get('route', '?')}"
                else:
                    continue
                counts[key] = counts.get(key, 0.0) + sample.value
        sim = await _json(http, self._info["bank_sim_url"] + "/sim/stats")
        for bank in sim.get("banks", {}).values():
            for route, n in bank.get("http", {}).items():
                counts[f"bank {route}"] = counts.get(f"bank {route}", 0.0) + n
            cb = bank.get("callbacks", {})
            counts["bank callback posts"] = counts.get("bank callback posts", 0.0) + cb.get(
                "posts", cb.get("attempts", 0)
            )
        sink = await _json(http, self._info["webhook_sink_url"] + "/stats?totals=1")
        counts["sink received"] = float(sink.get("received", 0))
        counts.update(await _redis_calls(self._info["redis_url"]))
        return counts


async def _redis_calls(url: str) -> dict[str, float]:
    """Commands Redis has run, by command (`INFO commandstats`: `cmdstat_evalsha` ...), and
    the network round trips that carried them are fewer (pipelines). On a cluster: summed
    over its masters (a replica's counts repeat its master's writes)."""
    cluster = cluster_url(url)
    if cluster is None:
        clients = [aioredis.Redis.from_url(url)]
    else:
        clients = [
            aioredis.Redis(host=host, port=port, password=cluster.password,
                           username=cluster.username)
            for host, port in cluster.nodes
        ]  # fmt: skip
    counts: dict[str, float] = {}
    for client in clients:
        try:
            if cluster is not None and (await client.info("replication")).get("role") != "master":
                continue
            stats = await client.info("commandstats")
        except aioredis.RedisError:
            continue
        finally:
            await client.aclose()
        for name, v in stats.items():
            if isinstance(v, dict) and "calls" in v:
                key = f"redis {name.removeprefix('cmdstat_')}"
                counts[key] = counts.get(key, 0.0) + float(v["calls"])
    return counts


async def _text(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as resp:
        return await resp.text()


async def _json(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url) as resp:
        data: dict[str, Any] = await resp.json()
        return data


# Which counters make up each hop's requests and statements, per payout.
HOP_REQUESTS = {
    "accept (merchant -> gateway)": ("in POST /v1/payouts",),
    "submit (gateway -> bank)": ("bank submit", "bank submit_batch"),
    "callback (bank -> gateway)": ("bank callback posts",),
    "query (gateway -> bank)": ("bank query",),
    "notify (gateway -> merchant)": ("sink received",),
}
HOP_SQL = ("accept", "dispatch", "callback", "notify", "poll", "clearing", "api", "clock", "other")


def cost_summary(
    before: Reading, after: Reading, payouts: int, generator_cpu_s: float | None
) -> dict[str, Any]:
    """CPU ms per 1,000 payouts per process (and in total); requests and statements per
    payout per hop, over the window between the two readings."""
    per_k = 1000.0 / max(payouts, 1)
    cpu_ms = {
        name: round((after.cpu_s.get(name, 0.0) - before.cpu_s.get(name, 0.0)) * 1000 * per_k, 1)
        for name in (*PROCESSES, "bench")
        if name in after.cpu_s
    }
    if generator_cpu_s is not None:
        cpu_ms["load generator"] = round(generator_cpu_s * 1000 * per_k, 1)
    cpu_ms["total"] = round(sum(cpu_ms.values()), 1)
    product = round(sum(cpu_ms.get(name, 0.0) for name in PRODUCT), 1)

    def delta(key: str) -> float:
        return after.counts.get(key, 0.0) - before.counts.get(key, 0.0)

    requests = {
        hop: round(sum(delta(k) for k in keys) / max(payouts, 1), 3)
        for hop, keys in HOP_REQUESTS.items()
    }
    sql = {hop: round(delta(f"sql {hop}") / max(payouts, 1), 3) for hop in HOP_SQL}
    redis_keys = {k for k in after.counts if k.startswith("redis ")}
    redis = {
        k.removeprefix("redis "): round(delta(k) / max(payouts, 1), 3)
        for k in sorted(redis_keys)
        if delta(k) and k != "redis info"  # the meter's own readings
    }
    return {
        "payouts": payouts,
        "seconds": round(after.at_s - before.at_s, 2),
        "cpu_ms_per_1000_payouts": cpu_ms,
        "product_cpu_ms_per_1000_payouts": product,
        "requests_per_payout": requests,
        "sql_statements_per_payout": {k: v for k, v in sql.items() if v},
        "redis_commands_per_payout": redis,
    }


def cost_lines(cost: dict[str, Any]) -> list[tuple[str, str]]:
    """Table rows: one per process, then the total, then the per-hop figures."""
    rows: list[tuple[str, str]] = []
    if not cost:
        return [("cost per 1,000 payouts", "n/a")]
    at = f" (at {cost['rate_per_s']:,}/s)" if "rate_per_s" in cost else ""
    for name, ms in cost["cpu_ms_per_1000_payouts"].items():
        label = "TOTAL" if name == "total" else name
        rows.append((f"cost per 1,000 payouts  {label}", f"{ms:,.0f} CPU ms{at}"))
    own = cost.get("product_cpu_ms_per_1000_payouts")
    if own is not None:
        rows.append(("  of which the gateway's own", f"{own:,.0f} CPU ms ({', '.join(PRODUCT)};"
                     " not the simulated banks, the merchants' sink or the load)"))  # fmt: skip
    req = " · ".join(f"{k.split(' ')[0]} {v:g}" for k, v in cost["requests_per_payout"].items())
    rows.append(("  HTTP requests per payout", req))
    sql = " · ".join(f"{k} {v:g}" for k, v in cost["sql_statements_per_payout"].items())
    rows.append(("  SQL statements per payout", sql or "-"))
    redis = cost.get("redis_commands_per_payout", {})
    total = sum(redis.values())
    top = " · ".join(f"{k} {v:g}" for k, v in sorted(redis.items(), key=lambda kv: -kv[1])[:4])
    rows.append(("  Redis commands per payout", f"{total:g} ({top})" if redis else "-"))
    return rows
