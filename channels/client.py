"""The gateway's client for bank channels: signed submit and status query over HTTP.

It classifies every answer the way the dispatcher must act on it:
- ACKED: the bank holds the payout (its record comes back);
- REFUSED: the bank definitively did not take it (busy, maintenance, unreachable before
  sending, a request it rejected) — safe to retry or reroute;
- UNKNOWN: it may or may not hold it (timeout, reset, a 5xx after sending, an answer that
  does not match the order: answers.py) — never resend, query until known.
Answers are matched to orders by ref, bank and amount, never by their place in a batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

import aiohttp
import orjson

from channels import answers
from channels.answers import BankRecord, QueryOutcome, QueryResult, SubmitOutcome, SubmitResult
from channels.recorder import BankRecorder
from protocol.clock import ClockAnchor
from protocol.keys import GATEWAY_KEY_ID, bank_secret
from protocol.signing import H_NONCE, sign_request

log = logging.getLogger("paygate.bank_client")


@dataclass(frozen=True, slots=True)
class _Answer:
    """An HTTP answer to a submission, parsed as far as it goes."""

    status: int
    data: Any
    retry_after_s: float | None


class BankUnavailable(Exception):
    """The bank gave no usable answer (unreachable, timeout, an error status, unreadable)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class BankClient:
    """Owns no session: the worker creates and closes the aiohttp session in its lifecycle."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        master_secret: str,
        *,
        submit_timeout_s: float,
        query_timeout_s: float,
        statement_timeout_s: float = 30.0,
        metrics: BankRecorder | None = None,
    ) -> None:
        self._metrics = metrics
        self._session = session
        self._base = base_url.rstrip("/")
        self._master = master_secret
        self._submit_timeout = aiohttp.ClientTimeout(total=submit_timeout_s)
        self._query_timeout = aiohttp.ClientTimeout(total=query_timeout_s)
        self._statement_timeout = aiohttp.ClientTimeout(total=statement_timeout_s)

    def _count(self, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.bank_request(kind)

    def _checked(
        self, bank_id: str, hop: str, order: dict[str, Any], result: SubmitResult
    ) -> SubmitResult:
        """An acked answer stands only if its record is this order's, at this bank, for this
        amount; else the outcome is unknown (queried, never resent)."""
        rec = result.record
        if result.outcome is not SubmitOutcome.ACKED or rec is None:
            return result
        reason = answers.mismatch(bank_id, order["ref"], order["amount"], said_bank=rec.bank_id,
                                  said_ref=rec.ref, said_amount=rec.amount)  # fmt: skip
        if reason is None:
            return result
        answers.report(self._metrics, bank_id, hop, order["ref"], reason,
                       amount=order["amount"], said_amount=rec.amount, said_ref=rec.ref,
                       bank_ref=rec.bank_ref)  # fmt: skip
        return SubmitResult(SubmitOutcome.UNKNOWN, code=f"answer_{reason}")

    def _count_outcomes(self, bank_id: str, results: list[SubmitResult]) -> None:
        if self._metrics is not None:
            for r in results:
                self._metrics.bank_submission(bank_id, r.outcome.value)

    def _headers(self, bank_id: str, method: str, path: str, body: bytes) -> dict[str, str]:
        headers = sign_request(GATEWAY_KEY_ID, bank_secret(self._master, bank_id), method, path,
                               body)  # fmt: skip
        headers["Content-Type"] = "application/json"
        return headers

    async def call(self, bank_id: str, method: str, path: str, body: Any) -> tuple[int | None, Any]:
        """A signed call whose answer is taken as it comes: (status or None, parsed body)."""
        raw_body = orjson.dumps(body) if body is not None else b""
        self._count("bank_call")
        try:
            async with self._session.request(
                method, self._base + path, data=raw_body or None, timeout=self._query_timeout,
                headers=self._headers(bank_id, method, path, raw_body),
            ) as resp:  # fmt: skip
                return resp.status, _json(await resp.read())
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("bank call failed", extra={"path": path, "error": repr(exc)})
            return None, None

    async def _send(self, bank_id: str, path: str, body: bytes) -> _Answer | SubmitResult:
        """POST a submission. A transport failure is already the outcome: REFUSED when the
        connection was never made (nothing was sent), UNKNOWN when it may have arrived."""
        try:
            async with self._session.post(
                self._base + path, data=body, timeout=self._submit_timeout,
                headers=self._headers(bank_id, "POST", path, body),
            ) as resp:  # fmt: skip
                raw = await resp.read()
                return _Answer(resp.status, _json(raw), _seconds(resp.headers.get("Retry-After")))
        except aiohttp.ClientConnectorError:
            return SubmitResult(SubmitOutcome.REFUSED, code="bank_unreachable")
        except (TimeoutError, aiohttp.ClientError) as exc:
            return SubmitResult(SubmitOutcome.UNKNOWN, code=type(exc).__name__)

    async def submit(self, bank_id: str, payout: dict[str, Any]) -> SubmitResult:
        result = await self._submit(bank_id, payout)
        self._count_outcomes(bank_id, [result])
        return result

    async def _submit(self, bank_id: str, payout: dict[str, Any]) -> SubmitResult:
        self._count("bank_submit")
        answer = await self._send(bank_id, f"/banks/{bank_id}/payouts", orjson.dumps(payout))
        if isinstance(answer, SubmitResult):
            return answer
        status, data = answer.status, answer.data
        if status == 200 and isinstance(data, dict) and "ref" in data:
            acked = SubmitResult(SubmitOutcome.ACKED, record=BankRecord.from_json(data))
            return self._checked(bank_id, "submit", payout, acked)
        code = str(data.get("code", "")) if isinstance(data, dict) else ""
        if status == 503 and code in ("bank_busy", "maintenance"):
            return SubmitResult(SubmitOutcome.REFUSED, code=code,
                                retry_after_s=answer.retry_after_s)  # fmt: skip
        if 400 <= status < 500 and status != 409:
            # Refused before it was recorded (our request was wrong): definitive, and a bug.
            log.error("bank refused the submission", extra={
                "bank_id": bank_id, "ref": payout.get("ref"), "http_status": status, "code": code,
            })  # fmt: skip
            return SubmitResult(SubmitOutcome.REFUSED, code=code or f"http_{status}")
        # 409 (the bank has this ref with other fields), 5xx, or an answer we cannot read.
        return SubmitResult(SubmitOutcome.UNKNOWN, code=code or f"http_{status}")

    async def submit_batch(
        self, bank_id: str, payouts: list[dict[str, Any]]
    ) -> list[SubmitResult] | None:
        """Many submissions in one request (批量代付, SPEC 9), each answered on its own: the
        results in the order of `payouts`, each the answer naming its ref. None when the bank
        takes no batch of this size (`batch_not_supported`, `batch_too_large`): nothing was
        recorded, send them one by one."""
        results = await self._submit_batch(bank_id, payouts)
        if results is not None:
            self._count_outcomes(bank_id, results)
        return results

    async def _submit_batch(
        self, bank_id: str, payouts: list[dict[str, Any]]
    ) -> list[SubmitResult] | None:
        self._count("bank_submit_batch")
        path = f"/banks/{bank_id}/payout-batches"
        answer = await self._send(bank_id, path, orjson.dumps({"items": payouts}))
        if isinstance(answer, SubmitResult):  # an unknown one: each is queried, none resent
            return [answer] * len(payouts)
        status, data, retry_after = answer.status, answer.data, answer.retry_after_s
        code = str(data.get("code", "")) if isinstance(data, dict) else ""
        if status == 200 and isinstance(data, dict) and isinstance(data.get("items"), list):
            return self._matched(bank_id, payouts, data["items"], retry_after)
        if status in (400, 404) and code in ("batch_not_supported", "batch_too_large"):
            log.warning("bank takes no batch this size, sending one by one",
                        extra={"bank_id": bank_id, "size": len(payouts), "code": code})  # fmt: skip
            return None
        if status == 503 and code in ("bank_busy", "maintenance"):
            return [SubmitResult(SubmitOutcome.REFUSED, code=code,
                                 retry_after_s=retry_after)] * len(payouts)  # fmt: skip
        if 400 <= status < 500:
            # Refused before anything was recorded (our request was wrong): a bug.
            extra = {"bank_id": bank_id, "size": len(payouts), "http_status": status, "code": code}
            log.error("bank refused the batch", extra=extra)
            refused = SubmitResult(SubmitOutcome.REFUSED, code=code or f"http_{status}")
            return [refused] * len(payouts)
        # A 5xx, or an answer we cannot read: any of them may be recorded.
        return [SubmitResult(SubmitOutcome.UNKNOWN, code=code or f"http_{status}")] * len(payouts)

    def _matched(
        self,
        bank_id: str,
        payouts: list[dict[str, Any]],
        items: list[Any],
        retry_after_s: float | None,
    ) -> list[SubmitResult]:
        """Each payout's answer found by its ref in the batch answer (whatever the order the
        bank listed them in) and checked; one missing or named twice is unknown."""
        said = answers.by_ref(items)
        results: list[SubmitResult] = []
        for order in payouts:
            ref = order["ref"]
            item = said.by_ref.pop(ref, None)
            if item is None:
                reason = "duplicate" if ref in said.duplicated else "missing"
                answers.report(self._metrics, bank_id, "batch", ref, reason)
                results.append(SubmitResult(SubmitOutcome.UNKNOWN, code=f"answer_{reason}"))
            else:
                result = answers.item_result(item, retry_after_s)
                results.append(self._checked(bank_id, "batch", order, result))
        for ref in list(said.by_ref) + [None] * said.unnamed:  # for nothing we sent
            answers.report(self._metrics, bank_id, "batch", ref, "unknown_ref")
        return results

    async def _get(self, bank_id: str, path: str, limit: aiohttp.ClientTimeout) -> tuple[int, Any]:
        """A signed GET: (status, parsed body); transport failures raise as aiohttp's."""
        async with self._session.get(
            self._base + path, timeout=limit, headers=self._headers(bank_id, "GET", path, b"")
        ) as resp:
            return resp.status, _json(await resp.read())

    async def query(self, bank_id: str, ref: str, amount_fen: int) -> QueryResult:
        """How the bank holds order `ref` (sent to it for `amount_fen`): FOUND only for a
        record that is this order's at this bank for this amount, NOT_FOUND only on the
        bank's own signed "no such order" for this query (answers.py)."""
        self._count("bank_query")
        path = f"/banks/{bank_id}/payouts/{ref}"
        headers = self._headers(bank_id, "GET", path, b"")
        try:
            async with self._session.get(self._base + path, timeout=self._query_timeout,
                                         headers=headers) as resp:  # fmt: skip
                status, said_headers, raw = resp.status, resp.headers, await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            return QueryResult(QueryOutcome.UNAVAILABLE, code=type(exc).__name__)
        data = _json(raw)
        if status == 200 and isinstance(data, dict) and "ref" in data:
            rec = BankRecord.from_json(data)
            reason = answers.mismatch(bank_id, ref, amount_fen, said_bank=rec.bank_id,
                                      said_ref=rec.ref, said_amount=rec.amount)  # fmt: skip
            if reason is None:
                return QueryResult(QueryOutcome.FOUND, record=rec)
            answers.report(self._metrics, bank_id, "query", ref, reason,
                           amount=amount_fen, said_amount=rec.amount, said_ref=rec.ref,
                           bank_ref=rec.bank_ref)  # fmt: skip
            return QueryResult(QueryOutcome.MISMATCH, code=reason)
        secret = bank_secret(self._master, bank_id)
        if answers.says_no_such_order(secret, bank_id, ref, path, headers[H_NONCE], status,
                                      said_headers, raw, data):  # fmt: skip
            return QueryResult(QueryOutcome.NOT_FOUND)
        code = str(data.get("code", "")) if isinstance(data, dict) else ""
        if status == 404:  # not the bank's word: a wrong path, or something in between
            log.warning("a 404 to a status query that is not the bank's own", extra={
                "bank_id": bank_id, "ref": ref, "code": code})  # fmt: skip
        return QueryResult(QueryOutcome.UNAVAILABLE, code=code or f"http_{status}")

    async def follow_clock(self, anchor: ClockAnchor) -> bool:
        """Hand the gateway's simulated-clock anchor to the bank simulator (its control plane,
        `PUT /sim/clock`: a real bank has its own clock; the simulated ones share ours).
        False when it could not be told (unreachable, an error): the caller tries again. A
        simulator already ahead of it (409: time does not go back) is logged, not retried."""
        body = orjson.dumps({"wall_s": anchor.wall_s, "sim_s": anchor.sim_s,
                             "scale": anchor.scale})  # fmt: skip
        try:
            async with self._session.put(self._base + "/sim/clock", data=body,
                                         timeout=self._query_timeout) as resp:  # fmt: skip
                if resp.status == 200:
                    return True
                log.warning("bank simulator refused the clock", extra={
                    "status": resp.status, "body": (await resp.read())[:200].decode(
                        errors="replace")})  # fmt: skip
                return resp.status == 409
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("bank simulator unreachable for the clock", extra={"error": repr(exc)})
        return False

    async def statement(self, bank_id: str, day: date) -> dict[str, Any]:
        """The bank's statement for business date `day` (SPEC 9): `{"bank_id", "date",
        "items": [...]}` as the bank sent it (reconciliation checks the lines). Raises
        BankUnavailable when there is no such answer."""
        path = f"/banks/{bank_id}/statements/{day.isoformat()}"
        self._count("bank_statement")
        try:
            status, data = await self._get(bank_id, path, self._statement_timeout)
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("statement request failed", extra={"bank_id": bank_id, "error": repr(exc)})
            raise BankUnavailable(type(exc).__name__) from None
        if status == 200 and isinstance(data, dict) and isinstance(data.get("items"), list):
            return data
        code = str(data.get("code", "")) if isinstance(data, dict) else ""
        raise BankUnavailable(code or f"http_{status}")


class B2BBank:
    """The B2B side of a bank channel: open a payment page, ask how the payment stands."""

    def __init__(self, client: BankClient) -> None:
        self._c = client

    async def create(self, bank_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The bank's record of the new payment, or None if the bank did not take it."""
        status, data = await self._c.call(bank_id, "POST", f"/banks/{bank_id}/b2b", body)
        return data if status == 200 and isinstance(data, dict) else None

    async def query(self, bank_id: str, ref: str) -> dict[str, Any] | None:
        status, data = await self._c.call(bank_id, "GET", f"/banks/{bank_id}/b2b/{ref}", None)
        return data if status == 200 and isinstance(data, dict) else None


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _seconds(header: str | None) -> float | None:
    try:
        return float(header) if header else None
    except ValueError:
        return None
