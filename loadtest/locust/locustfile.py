"""Locust load for a running `paygate up`: signed payouts, batches, B2B funding and queries.

    locust -f loadtest/locust/locustfile.py --headless -u 20 -r 10 -t 15s --host <gateway_url>

Reads `.paygate/run.json` (or PAYGATE_RUN_FILE) for the gateway URL and demo merchants on every
process that runs users, so distributed mode (`--master` / `--worker`) needs nothing more.
Business refusals (422 insufficient_funds, daily_limit_exceeded, ...; 429 rate_limited) are what
a loaded gateway should answer: they count as successes, in their own stats row
(`<name> [refused <status> <code>]`); anything else that is not 2xx is a failure.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, cast

import orjson
from locust import HttpUser, between, events, task
from locust.clients import ResponseContextManager
from locust.env import Environment
from locust.runners import MasterRunner

from loadtest.locust.payloads import b2b_request, encode, payout_batch, payout_request
from loadtest.locust.target import Merchant, Target, load_target, run_file_path
from protocol.signing import sign_request

REQUEST_TIMEOUT_S: Final = 10.0
REMEMBERED_PAYOUTS: Final = 200  # per user, for GET /v1/payouts/{id}
EXPECTED_REFUSALS: Final[dict[int, frozenset[str]]] = {
    422: frozenset({
        "insufficient_funds",
        "advance_limit_exceeded",
        "amount_limit_exceeded",
        "daily_limit_exceeded",
        "payee_blocked",
        "velocity_limit_exceeded",
    }),
    429: frozenset({"rate_limited"}),
}  # fmt: skip


def error_code(body: bytes) -> str | None:
    """`error.code` of a Paygate error body, or None when the body is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def is_expected_refusal(status: int, code: str | None) -> bool:
    return code is not None and code in EXPECTED_REFUSALS.get(status, frozenset())


@dataclass(frozen=True, slots=True)
class Verdict:
    """How one response counts: `failure` set means a failure; `tag` names its own stats row."""

    data: Any = None
    failure: str | None = None
    tag: str | None = None


def judge(status: int, content: bytes) -> Verdict:
    if 200 <= status < 300:
        try:
            return Verdict(data=orjson.loads(content))
        except orjson.JSONDecodeError:
            return Verdict(failure=f"{status} with a body that is not JSON")
    code = error_code(content)
    if is_expected_refusal(status, code):
        return Verdict(tag=f"refused {status} {code}")
    return Verdict(failure=f"{status} {code}" if code else f"{status} {content[:200]!r}")


def judge_batch(data: Any) -> Verdict:
    """A batch is 200 whatever its items; an item refused for a reason we do not expect fails it."""
    refused: set[str] = set()
    for item in data["items"]:
        if item["status"] in (200, 201):
            continue
        code = item["error"]["code"]
        if not is_expected_refusal(item["status"], code):
            return Verdict(data, failure=f"batch item {item['index']}: {item['status']} {code}")
        refused.add(code)
    return Verdict(data, tag="items refused " + " ".join(sorted(refused)) if refused else None)


def tag_row(response: ResponseContextManager, suffix: str) -> None:
    """File this request under `<name> [suffix]` in the stats.

    Locust reports `request_meta` when the `with` block exits, so renaming it here gives the
    request its own row (counted once, unlike firing a second request event).
    """
    meta = cast("MutableMapping[str, Any]", response.request_meta)
    meta["name"] = f"{meta['name']} [{suffix}]"


def load_run_file(environment: Environment, **_kwargs: Any) -> None:
    # The master runs no users and may not even have the run file.
    if isinstance(environment.runner, MasterRunner):
        return
    target = load_target(run_file_path())
    PaygateMerchant.target = target
    if not environment.host and PaygateMerchant.host is None:
        PaygateMerchant.host = target.gateway_url


def count_by_worker(environment: Environment, **_kwargs: Any) -> None:
    """On a master: the requests and failures each worker reported, written when it quits to
    `<--csv prefix>_workers.json` (and logged), so a distributed run shows every worker
    worked (Locust's own stats are the sum of all workers)."""
    if not isinstance(environment.runner, MasterRunner):
        return
    by_worker: dict[str, dict[str, int]] = {}

    def on_report(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        total = data.get("stats_total") or {}
        counts = by_worker.setdefault(client_id, {"requests": 0, "failures": 0})
        counts["requests"] += int(total.get("num_requests", 0))
        counts["failures"] += int(total.get("num_failures", 0))

    def on_quitting(environment: Environment, **_kw: Any) -> None:
        logging.getLogger("paygate.locust").info("requests by worker: %s", by_worker)
        prefix = getattr(environment.parsed_options, "csv_prefix", None)
        if prefix:
            Path(f"{prefix}_workers.json").write_bytes(orjson.dumps(by_worker))

    environment.events.worker_report.add_listener(on_report)  # type: ignore[no-untyped-call]
    environment.events.quitting.add_listener(on_quitting)  # type: ignore[no-untyped-call]


events.init.add_listener(load_run_file)  # type: ignore[no-untyped-call]  # locust's EventHook
events.init.add_listener(count_by_worker)  # type: ignore[no-untyped-call]


class PaygateMerchant(HttpUser):
    """One demo merchant's API client: every request signed with paygate-hmac-v1."""

    wait_time = between(0.05, 0.25)
    target: ClassVar[Target | None] = None

    def on_start(self) -> None:
        assert self.target is not None, "run.json was not loaded (init event)"
        self.rng = random.Random()
        self.merchant: Merchant = self.target.pick_merchant(self.rng)
        self.payout_ids: deque[str] = deque(maxlen=REMEMBERED_PAYOUTS)

    def _send(self, method: str, path: str, name: str, body: bytes = b"") -> ResponseContextManager:
        headers = sign_request(self.merchant.id, self.merchant.secret, method, path, body)
        if body:
            headers["Content-Type"] = "application/json"
        return self.client.request(
            method,
            path,
            name=name,
            catch_response=True,
            data=body,
            headers=headers,
            timeout=REQUEST_TIMEOUT_S,
        )

    def _call(
        self,
        method: str,
        path: str,
        name: str,
        body: bytes = b"",
        then: Callable[[Any], Verdict] | None = None,
    ) -> Any:
        """Send, mark the outcome, and return the decoded 2xx body (None otherwise)."""
        with self._send(method, path, name, body) as response:
            if not response.status_code:
                response.failure(f"connection error: {response.error}")
                return None
            verdict = judge(response.status_code, response.content)
            if verdict.failure is None and verdict.data is not None and then is not None:
                try:
                    verdict = then(verdict.data)
                except (KeyError, TypeError) as exc:
                    verdict = Verdict(failure=f"unexpected body shape: {exc!r}")
            if verdict.tag:
                tag_row(response, verdict.tag)
            if verdict.failure is None:
                response.success()
            else:
                response.failure(verdict.failure)
            return verdict.data

    def _remember(self, payout: Any) -> None:
        if isinstance(payout, dict) and isinstance(payout.get("id"), str):
            self.payout_ids.append(payout["id"])

    @task(10)
    def create_payout(self) -> None:
        body = encode(payout_request(self.rng))
        self._remember(self._call("POST", "/v1/payouts", "/v1/payouts", body))

    @task(2)
    def create_payout_batch(self) -> None:
        body = encode(payout_batch(self.rng))
        path = "/v1/payout-batches"
        data = self._call("POST", path, path, body, then=judge_batch)
        for item in data["items"] if isinstance(data, dict) else ():
            self._remember(item.get("payout"))

    @task(2)
    def create_b2b_payment(self) -> None:
        body = encode(b2b_request(self.rng))
        self._call("POST", "/v1/b2b-payments", "/v1/b2b-payments", body)

    @task(4)
    def get_payout(self) -> None:
        if not self.payout_ids:
            self.create_payout()
            return
        payout_id = self.rng.choice(self.payout_ids)
        self._call("GET", f"/v1/payouts/{payout_id}", "/v1/payouts/{id}")

    @task(2)
    def list_succeeded_payouts(self) -> None:
        path = "/v1/payouts?status=succeeded&limit=5"
        self._call("GET", path, path)

    @task(2)
    def get_balance(self) -> None:
        self._call("GET", "/v1/balance", "/v1/balance")
