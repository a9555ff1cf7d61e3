"""Every Redis script call and transaction touches one Redis Cluster slot (SPEC 15): the keys
each one names hash to the same slot (redis-py's own `key_slot`, the cluster's CRC16), and the
Lua scripts reach only the keys they are given."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from channels.quota import quota_key
from gateway.api.auth import nonce_key
from gateway.console.sampler import LEASE, SAMPLES, WATCH
from gateway.console.sessions import key_prefix
from gateway.storage.pools import ClusterUrl, cluster_url
from protocol.ids import new_id
from risk.ratelimit import AdmissionCheck, MerchantAdmission, admission_keys

ROOT = Path(__file__).resolve().parents[2]
# Commands a script may call without a key (they read the server, not the keyspace).
KEYLESS = {"TIME", "INFO"}

nonces = st.text(min_size=1, max_size=64)  # braces and all: the merchant's tag comes first


def slots(keys: list[str]) -> set[int]:
    return {key_slot(k.encode()) for k in keys}


@given(nonce=nonces)
def test_one_admission_call_is_one_slot(nonce: str) -> None:
    merchant_id = new_id("m")
    keys = admission_keys(merchant_id, nonce)
    assert len(keys) == 3  # KEYS[1..3] of admission.lua
    assert len(slots(keys)) == 1, keys
    assert slots(keys) == {key_slot(merchant_id.encode())}  # the slot is the merchant's


@given(nonce=nonces)
def test_the_cluster_call_the_gateway_builds_is_one_slot_with_the_takeover_check(
    nonce: str,
) -> None:
    """The keys and ARGV that MerchantAdmission sends on a cluster (the client is never
    connected: building it reads nothing)."""
    admission = MerchantAdmission(RedisCluster(host="127.0.0.1", port=1), 300)
    check = AdmissionCheck(new_id("m"), nonce, rps=10, burst=20, signed_at_s=1_700_000_000)
    keys, args = admission._keys_args(check)
    assert len(slots(keys)) == 1
    assert args[-1] == 1  # ARGV[5]: the failover check of admission.lua


def test_merchants_spread_over_the_slots() -> None:
    """Merchants are the unit of sharding: a thousand ids land on many slots."""
    assert len({key_slot(new_id("m").encode()) for _ in range(1000)}) > 900


@pytest.mark.parametrize("channel_id", ["icbc", "ccb-batch", "abc:1"])
def test_a_channel_quota_call_is_one_slot_of_its_own(channel_id: str) -> None:
    assert len(slots([quota_key(channel_id)])) == 1
    assert key_slot(quota_key(channel_id).encode()) == key_slot(f"chan:{channel_id}".encode())


def test_a_bank_callback_nonce_is_in_its_key_ids_slot() -> None:
    assert key_slot(nonce_key("icbc", "n-1").encode()) == key_slot(b"icbc")


@given(name=st.text(min_size=1, max_size=40), token_hash=st.text(min_size=1, max_size=64))
def test_the_console_keys_share_one_slot(name: str, token_hash: str) -> None:
    """Sign-in throttling counts a failure and sets the lock in one transaction, the sampler
    pushes and trims in one: all the console's keys carry the console's hash tag."""
    prefix = key_prefix("postgresql://db/paygate")
    keys = [f"{prefix}session:{token_hash}", f"{prefix}fails:{name}", f"{prefix}lock:{name}",
            prefix + SAMPLES, prefix + WATCH, prefix + LEASE]  # fmt: skip
    assert len(slots(keys)) == 1


def test_two_databases_console_keys_are_apart() -> None:
    assert key_prefix("postgresql://db/a") != key_prefix("postgresql://db/b")


@pytest.mark.parametrize("script", ["risk/admission.lua", "channels/quota.lua"])
def test_scripts_reach_only_their_declared_keys(script: str) -> None:
    """A key a script builds itself could sit in another slot: every keyed command's key is
    one of KEYS[n]."""
    source = (ROOT / script).read_text()
    calls = re.findall(r"redis\.call\('(\w+)'(?:,\s*([^,)]+))?", source)
    assert calls
    for command, first_arg in calls:
        if command.upper() in KEYLESS:
            continue
        assert re.fullmatch(r"KEYS\[\d\]", first_arg.strip()), (command, first_arg)


def test_a_cluster_url_names_its_nodes() -> None:
    assert cluster_url("redis://127.0.0.1:6379/0") is None
    assert cluster_url("unix:///tmp/redis.sock") is None
    assert cluster_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001") == ClusterUrl(
        (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    )
    assert cluster_url("redis+cluster://:s%40cret@h1:7000") == ClusterUrl(
        (("h1", 7000),), None, "s@cret"
    )
    with pytest.raises(ValueError, match="host:port"):
        cluster_url("redis+cluster://h1")
