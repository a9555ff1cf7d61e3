"""Paygate on a real Redis Cluster (SPEC 15): 3 masters and 3 replicas of the embedded
`redis-server`, payouts from merchants spread over the slots, then one master killed while
its replica is cut off from the last writes, so the takeover loses a nonce. Admission fails
closed for that master's merchants while the cluster heals (503 with the error body and
Retry-After), keeps admitting the others, recovers by itself, refuses the request whose nonce
the failover lost, and every accepted payout is in PostgreSQL."""

from __future__ import annotations

import dataclasses
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

from gateway.client import ApiResponse, MerchantClient
from gateway.settings import Settings
from protocol import signing
from risk.ratelimit import admission_keys
from tests.harness import LiveGateway, live_gateway, wait_until
from tests.payloads import payout_body
from tests.redis_cluster import RedisClusterServers, redis_cluster

MERCHANTS = 18
HEAL_DEADLINE_S = 30.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisClusterServers]:
    with redis_cluster(tmp_path) as servers:
        yield servers


@dataclasses.dataclass
class Shop:
    id: str
    secret: str
    client: MerchantClient
    master: int  # the port of the master holding its slot at the start
    accepted: int = 0

    def signed(self, order_id: str) -> tuple[bytes, dict[str, str]]:
        body = orjson.dumps(payout_body(1_000, order_id=order_id))
        return body, signing.sign_request(self.id, self.secret, "POST", "/v1/payouts", body)

    async def send(self, body: bytes, headers: dict[str, str]) -> ApiResponse:
        resp = await self.client.request("POST", "/v1/payouts", body=body, headers=headers)
        if resp.status == 201:
            self.accepted += 1
        return resp

    async def pay(self, order_id: str) -> ApiResponse:
        return await self.send(*self.signed(order_id))


async def open_shops(gw: LiveGateway, servers: RedisClusterServers) -> list[Shop]:
    shops = []
    for _ in range(MERCHANTS):
        m, client = await gw.merchant(credit_fen=100_000_000)
        rl_key = admission_keys(m["id"], "-")[0]
        shops.append(Shop(m["id"], m["secret"], client, servers.master_of(rl_key)))
    return shops


async def first_payout(shop: Shop) -> None:
    """Admitted once: a request signed in the second a node took its slot is refused (503),
    so poll with fresh requests."""
    tries = iter(range(1_000_000))

    async def fresh() -> ApiResponse:
        resp = await shop.pay(f"{shop.id}-warm-{next(tries)}")
        if resp.status != 201:
            assert resp.status == 503 and resp.error_code == "rate_limiter_unavailable", resp.body
        return resp

    await wait_until(fresh, lambda r: r.status == 201, timeout_s=10, interval_s=0.05)


def assert_unavailable(resp: ApiResponse) -> None:
    assert resp.status == 503, (resp.status, resp.body)
    error = resp.json()["error"]
    assert error["code"] == "rate_limiter_unavailable" and error["request_id"], error
    assert int(resp.headers["Retry-After"]) >= 1


async def test_a_master_failover_fails_closed_recovers_and_never_reopens_the_replay_window(
    settings: Settings, cluster: RedisClusterServers
) -> None:
    async with live_gateway(dataclasses.replace(settings, redis_url=cluster.url)) as gw:
        shops = await open_shops(gw, cluster)
        for shop in shops:
            await first_payout(shop)
        per_master = Counter(s.master for s in shops)
        victim = max(per_master, key=lambda port: per_master[port])
        hit = [s for s in shops if s.master == victim]
        spared = [s for s in shops if s.master != victim]
        assert len(hit) >= 2 and len(spared) >= 2, per_master
        for shop in shops:
            assert (await shop.pay(f"{shop.id}-before")).status == 201

        # A request admitted before the kill and replicated: refused before and after.
        kept = hit[0].signed(f"{hit[0].id}-kept")
        assert (await hit[0].send(*kept)).status == 201

        # The replica is cut off (stopped, its link closed) before the last write: the nonce
        # of `lost` lives only on the master, which then dies. Its replica takes over without it.
        (replica_port,) = cluster.replicas_of(victim)
        replica = cluster.node(replica_port)
        replica.process.send_signal(signal.SIGSTOP)
        try:
            with redis.Redis(port=victim, socket_timeout=2) as master:
                master.execute_command("CLIENT", "KILL", "TYPE", "replica")
            lost = hit[1].signed(f"{hit[1].id}-lost")
            assert (await hit[1].send(*lost)).status == 201
            cluster.node(victim).stop()  # SIGKILL, by its own handle
        finally:
            replica.process.send_signal(signal.SIGCONT)
        killed_at = time.monotonic()

        # Until the replica has taken over: the dead master's merchants get a clean 503, the
        # others are admitted. Then everyone is admitted again, by itself.
        outcomes: dict[str, list[int]] = {s.id: [] for s in shops}
        rounds = iter(range(1, 1_000_000))

        async def one_round() -> bool:
            """Every shop pays once; True once all were admitted (after the first round)."""
            n = next(rounds)
            for shop in shops:
                resp = await shop.pay(f"{shop.id}-heal-{n}")
                outcomes[shop.id].append(resp.status)
                if resp.status == 401 and shop in hit:
                    # Signed before, or in the second, the promoted replica took over (its
                    # request was on its way): the old master's last nonces may be lost with
                    # it, so the request is refused for a new signature (admission.lua), never
                    # admitted on a nonce that may have been used. The next round re-signs.
                    assert resp.json()["error"]["code"] == "stale_request", resp.body
                elif resp.status != 201:
                    assert_unavailable(resp)
            return n > 1 and all(outcomes[s.id][-1] == 201 for s in shops)

        left_s = HEAL_DEADLINE_S - (time.monotonic() - killed_at)
        try:
            await wait_until(one_round, bool, timeout_s=left_s, interval_s=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {_summary(outcomes, hit)}") from None
        assert all(503 in outcomes[s.id] for s in hit), _summary(outcomes, hit)
        assert all(set(outcomes[s.id]) == {201} for s in spared), _summary(outcomes, hit)
        assert cluster.master_of(admission_keys(hit[0].id, "-")[0]) == replica_port
        ready = await wait_until(lambda: gw.admin.get("/readyz"), lambda r: r.status == 200, 10)
        assert ready.json()["checks"]["redis"] == "ok"

        # The replay window stays shut: both requests signed before the takeover are refused,
        # the one whose nonce the failover lost too.
        for shop, (body, headers) in ((hit[1], lost), (hit[0], kept)):
            replay = await shop.send(body, headers)
            assert replay.status == 401, (replay.status, replay.body)
            assert replay.error_code in ("stale_request", "replayed_request"), replay.body

        # Nothing accepted is lost: every 201 is a payout row.
        conn = await gw.db()
        try:
            rows = await conn.fetch(
                "SELECT merchant_id, count(*) AS n FROM payouts WHERE merchant_id = ANY($1)"
                " GROUP BY merchant_id",
                [s.id for s in shops],
            )
        finally:
            await conn.close()
        assert {r["merchant_id"]: r["n"] for r in rows} == {s.id: s.accepted for s in shops}


def _summary(outcomes: dict[str, list[int]], hit: list[Shop]) -> str:
    hit_ids = {s.id for s in hit}
    return "; ".join(
        f"{'hit' if k in hit_ids else 'spared'} {k}: {Counter(v)}" for k, v in outcomes.items()
    )
