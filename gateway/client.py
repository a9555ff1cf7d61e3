"""A small async client for Paygate's API: signs merchant calls, carries the admin token.

async with MerchantClient(url, merchant_id, secret) as client:
    resp = await client.post("/v1/payouts", {...})
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDict
from yarl import URL

from protocol.signing import sign_request

DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class ApiResponse:
    status: int
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    @property
    def error_code(self) -> str | None:
        data = self.json()
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            code = data["error"].get("code")
            return str(code) if code is not None else None
        return None


class _BaseClient:
    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_session = session is None
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def __aenter__(self) -> _BaseClient:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _auth_headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        return {}

    async def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        """`path` includes the query string exactly as it will be signed and sent."""
        if self._session is None:
            await self.__aenter__()
        assert self._session is not None
        raw = body if body is not None else (orjson.dumps(json) if json is not None else b"")
        all_headers = {"Content-Type": "application/json"} if raw else {}
        all_headers.update(self._auth_headers(method, path, raw))
        all_headers.update(headers or {})
        # encoded=True: send the path exactly as signed, without re-quoting it.
        url = URL(self.base_url + path, encoded=True)
        async with self._session.request(
            method, url, data=raw or None, headers=all_headers
        ) as resp:
            data = await resp.read()
            return ApiResponse(resp.status, CIMultiDict(resp.headers), data)

    async def get(self, path: str, **kw: Any) -> ApiResponse:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> ApiResponse:
        return await self.request("POST", path, json, **kw)

    async def patch(self, path: str, json: Any = None, **kw: Any) -> ApiResponse:
        return await self.request("PATCH", path, json, **kw)

    async def delete(self, path: str, **kw: Any) -> ApiResponse:
        return await self.request("DELETE", path, **kw)


class MerchantClient(_BaseClient):
    """Signs every request with `paygate-hmac-v1` as merchant `key`."""

    def __init__(self, base_url: str, key: str, secret: str, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self.key = key
        self.secret = secret

    def _auth_headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        return sign_request(self.key, self.secret, method, path, body)

    async def __aenter__(self) -> MerchantClient:
        await super().__aenter__()
        return self


class AdminClient(_BaseClient):
    def __init__(self, base_url: str, token: str, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self.token = token

    def _auth_headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def __aenter__(self) -> AdminClient:
        await super().__aenter__()
        return self

    async def create_merchant(self, **fields: Any) -> dict[str, Any]:
        resp = await self.post("/admin/merchants", fields)
        if resp.status != 201:
            raise RuntimeError(f"create merchant failed: {resp.status} {resp.body!r}")
        data: dict[str, Any] = resp.json()
        return data

    async def credit(self, merchant_id: str, amount_fen: int, reference: str) -> ApiResponse:
        return await self.post(
            f"/admin/merchants/{merchant_id}/credits",
            {"amount": amount_fen, "currency": "CNY", "reference": reference},
        )
