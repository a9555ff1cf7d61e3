"""One typed settings object, built at start-up (CLI flags > env > defaults), passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "PAYGATE_"


class SettingsError(ValueError):
    """An environment variable that cannot be used (the CLI says which, in one line)."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(ENV_PREFIX + name)
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SettingsError(
            f"{ENV_PREFIX}{name}={raw!r} is not a whole number: correct or unset it"
        ) from None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(ENV_PREFIX + name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SettingsError(
            f"{ENV_PREFIX}{name}={raw!r} is not a number: correct or unset it"
        ) from None


def _env_str(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name) or default


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(ENV_PREFIX + name)
    if not raw:
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class Settings:
    # Storage: empty URL means "start the embedded server under state_dir".
    database_url: str = ""
    redis_url: str = ""
    # A streaming replica of database_url for merchant lists (storage/replica.py); "": none.
    # A merchant's lists go to the primary while the replica may lack its last write, and all
    # of them while the replica is more than database_read_max_lag_s behind.
    database_read_url: str = ""
    database_read_max_lag_s: float = 3.0
    state_dir: Path = Path(".paygate")

    host: str = "127.0.0.1"
    port: int = 8080
    bank_port: int = 8090
    sink_port: int = 8091
    workers: int = 1
    admin_token: str = ""
    # `paygate worker` serves its counters at http://host:metrics_port/metrics (0: not at all).
    metrics_port: int = 0
    # `paygate up` runs the worker, bank simulator and sink this much nicer than the gateway.
    background_nice: int = 5

    # Simulated clock (SPEC 12): simulated time runs time_scale times faster than wall time.
    time_scale: float = 1.0
    seed: int | None = None

    log_format: str = "json"
    log_level: str = "INFO"

    # Limits on everything (TigerBeetle style).
    max_body_bytes: int = 1024 * 1024
    signature_window_s: int = 300
    db_pool_min: int = 2
    db_pool_max: int = 10
    db_command_timeout_s: float = 10.0
    # How long a process trusts its copy of a merchant for signatures, status and rate limits
    # (an operator's PATCH clears it at once in the process that served it).
    merchant_cache_ttl_s: float = 30.0

    # Group commit of accepts (SPEC 13): gather up to N items or T ms into one transaction.
    # One transaction at a time per gateway process: while it runs, the next batch gathers
    # (a payout's transaction costs ~1 ms of PostgreSQL CPU alone, ~0.13 ms in a batch of 32).
    # The T ms wait is for those that find a batch in flight; a payout that finds none is
    # written at once (at low load waiting would gather no one and only add latency).
    accept_batch_max: int = 256
    accept_batch_wait_ms: float = 3.0
    accept_concurrency: int = 1
    # Admission checks (nonce + rate limit): one that finds nothing in flight goes alone at
    # once; those that find one in flight (under load) gather for T ms into one Redis
    # pipeline (0: no wait, they go as soon as a slot is free). A round trip to Redis costs the
    # gateway ~40 µs of CPU on a 2-core VM, whatever it carries (README, "Round trips").
    admission_batch_wait_ms: float = 0.0
    # Decide accept batches on a snapshot and write them in one self-committing statement that
    # checks them under the lock (payouts/accept_fast.py); off (the default): the locked path
    # always. On a quiet 2-core machine the fast path was slower for one process spread over
    # many merchants and no faster for one hot merchant across two (README, "One hot merchant").
    accept_fast: bool = False
    # The payout path's statements run on their prepared statements' generic plans
    # (`plan_cache_mode = force_generic_plan`, gateway/storage/pools.py): the worker's pool and
    # the gateway's pool for accepts and bank callbacks; PostgreSQL 18 otherwise planned many of
    # them for their values on every run (README "Where PostgreSQL's CPU goes per payout").
    # 0: PostgreSQL's own choice. The API's and the console's reads keep it either way.
    generic_plans: bool = True
    # `POST /v1/payouts` is answered on the lean HTTP server ahead of aiohttp (api/lean_front.py);
    # 0: every request through aiohttp, for comparison.
    lean_front: bool = True

    # Risk: fail closed when Redis is down unless told otherwise (SPEC 8).
    rate_limit_fail_open: bool = False
    # Platform rule: at most K payouts per payee account per simulated hour, all merchants.
    payee_velocity_per_hour: int = 1000

    # Platform-wide cap on what the platform fronts to advance (垫资) merchants, in fen.
    advance_pool_cap_fen: int = 10_000_000_000_00
    # Four eyes (SPEC 17): a reviewed payout of at least this much needs two approvers.
    four_eyes_fen: int = 5_000_000
    # Operator console sessions expire after this long without a request.
    console_idle_s: float = 1800.0

    # Banks (SPEC 9): one master secret from which the gateway and the simulator derive each
    # bank's key; the simulator POSTs callbacks to callback_url (the gateway's base URL).
    bank_master_secret: str = "paygate-dev-bank-master-secret"
    bank_sim_url: str = ""
    callback_url: str = ""
    bank_profile_preset: str = "default"

    # Dispatch and status polling (SPEC 6): batch sizes, timeouts, retry/poll pacing (wall time).
    dispatch_batch_max: int = 256
    # Pause after a dispatch round that found less than a full batch (wall time; the status
    # poller's too, five times it for collections and B2B clearing). Every round costs the
    # worker its queries and the bank and the gateway a submit, its callbacks and their
    # transactions, whatever its size: fewer, fuller rounds cost less per payout, for up to
    # this much more accept -> final (issue 25: at 1,000 payouts/s, 100 ms against 20 took the
    # whole system's CPU per payout to 0.88, accept -> final p99 from ~150-210 to ~250-320 ms).
    dispatch_idle_ms: float = 100.0
    bank_concurrency: int = 128
    submit_timeout_s: float = 2.0
    query_timeout_s: float = 2.0
    unknown_first_query_ms: float = 200.0
    # A bank's "accepted, processing" is written this long after it came (or at the order's
    # first poll time, the channel's expected_ms, if sooner), and only for the orders still
    # `sending` then: a fast bank's callback has usually finished the order by then, and the
    # ack's own row versions are never written. 0: at once.
    ack_record_delay_ms: float = 1000.0
    poll_batch_max: int = 256
    poll_max_interval_s: float = 30.0
    # "The bank never received it" (failed `bank_no_record`, hold released) only after the
    # bank's own signed "no such order" on this many consecutive queries (any other answer
    # starts the count again), the first and the last at least this many simulated seconds
    # apart: a bank may take a moment to show a request that did reach it.
    bank_no_record_polls: int = 5
    bank_no_record_min_s: float = 60.0

    # B2B (SPEC 7): realtime clearing this many simulated seconds after the bank's notice;
    # a payment still pending this long (simulated) is asked about (a lost notification).
    realtime_clear_delay_s: float = 5.0
    b2b_pending_query_after_s: float = 120.0

    # Notifications (SPEC 10): per-attempt timeout, per-merchant and total deliveries in flight.
    notify_timeout_s: float = 5.0
    notify_per_merchant: int = 8
    notify_max_in_flight: int = 512
    notify_connections_per_origin: int = 64  # keep-alive connections to one http:// host
    notify_batch_max: int = 256
    # Pause between notification rounds when the last one found little (wall time): each
    # round is a lease query, so fewer, fuller rounds cost less than 50 small ones a second.
    notify_idle_ms: float = 50.0

    # Reconciliation (SPEC 10): how often (wall seconds) the worker looks whether a nightly
    # run is due; a bank that gave no statement is asked again after recon_retry_s.
    recon_check_s: float = 5.0
    recon_retry_s: float = 60.0
    # Monthly partitions (migration 0021): the worker makes sure this many months ahead exist,
    # at start and every partition_check_s (wall seconds).
    partition_months_ahead: int = 1
    partition_check_s: float = 3600.0

    # Defaults for merchants created without these fields (documented in README).
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Defaults, then PAYGATE_* environment, then explicit overrides (CLI flags)."""
        base = cls(
            database_url=_env_str("DATABASE_URL", ""),
            redis_url=_env_str("REDIS_URL", ""),
            database_read_url=_env_str("DATABASE_READ_URL", ""),
            database_read_max_lag_s=_env_float("DATABASE_READ_MAX_LAG_S", 3.0),
            state_dir=Path(_env_str("STATE_DIR", ".paygate")),
            host=_env_str("HOST", "127.0.0.1"),
            port=_env_int("PORT", 8080),
            bank_port=_env_int("BANK_PORT", 8090),
            sink_port=_env_int("SINK_PORT", 8091),
            notify_per_merchant=_env_int("NOTIFY_PER_MERCHANT", 8),
            realtime_clear_delay_s=_env_float("REALTIME_CLEAR_DELAY_S", 5.0),
            workers=_env_int("WORKERS", 1),
            metrics_port=_env_int("METRICS_PORT", 0),
            background_nice=_env_int("BACKGROUND_NICE", 5),
            admin_token=_env_str("ADMIN_TOKEN", ""),
            time_scale=_env_float("TIME_SCALE", 1.0),
            log_format=_env_str("LOG_FORMAT", "json"),
            log_level=_env_str("LOG_LEVEL", "INFO"),
            db_pool_max=_env_int("DB_POOL_MAX", 10),
            accept_batch_max=_env_int("ACCEPT_BATCH_MAX", 256),
            accept_batch_wait_ms=_env_float("ACCEPT_BATCH_WAIT_MS", 3.0),
            accept_concurrency=_env_int("ACCEPT_CONCURRENCY", 1),
            admission_batch_wait_ms=_env_float("ADMISSION_BATCH_WAIT_MS", 0.0),
            accept_fast=_env_bool("ACCEPT_FAST", False),
            generic_plans=_env_bool("GENERIC_PLANS", True),
            lean_front=_env_bool("LEAN_FRONT", True),
            rate_limit_fail_open=_env_bool("RATE_LIMIT_FAIL_OPEN", False),
            payee_velocity_per_hour=_env_int("PAYEE_VELOCITY_PER_HOUR", 1000),
            advance_pool_cap_fen=_env_int("ADVANCE_POOL_CAP_FEN", 10_000_000_000_00),
            four_eyes_fen=_env_int("FOUR_EYES_FEN", 5_000_000),
            console_idle_s=_env_float("CONSOLE_IDLE_S", 1800.0),
            bank_master_secret=_env_str("BANK_MASTER_SECRET", "paygate-dev-bank-master-secret"),
            bank_sim_url=_env_str("BANK_SIM_URL", ""),
            callback_url=_env_str("CALLBACK_URL", ""),
            bank_profile_preset=_env_str("BANK_PROFILE_PRESET", "default"),
            submit_timeout_s=_env_float("SUBMIT_TIMEOUT_S", 2.0),
            ack_record_delay_ms=_env_float("ACK_RECORD_DELAY_MS", 1000.0),
            dispatch_batch_max=_env_int("DISPATCH_BATCH_MAX", 256),
            dispatch_idle_ms=_env_float("DISPATCH_IDLE_MS", 100.0),
            notify_idle_ms=_env_float("NOTIFY_IDLE_MS", 50.0),
            query_timeout_s=_env_float("QUERY_TIMEOUT_S", 2.0),
            poll_max_interval_s=_env_float("POLL_MAX_INTERVAL_S", 30.0),
            bank_no_record_polls=_env_int("BANK_NO_RECORD_POLLS", 5),
            bank_no_record_min_s=_env_float("BANK_NO_RECORD_MIN_S", 60.0),
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **clean)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)
