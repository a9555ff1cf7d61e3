"""How the notifier POSTs to merchants: plain `http://` origins over the lean keep-alive
client (gateway/http1.py), anything else (`https://`) through aiohttp. A delivery costs the
worker less CPU on the first; the second speaks TLS. Both give a status or raise.
"""

from __future__ import annotations

from collections import OrderedDict
from urllib.parse import urlsplit

import aiohttp

from gateway.http1 import Http1Client, HttpError

MAX_ORIGINS = 256  # lean clients kept open at once; the least recently used one is closed


class DeliveryError(Exception):
    """The POST got no HTTP answer (refused, reset, timed out...)."""


class NotifyHttp:
    def __init__(
        self, session: aiohttp.ClientSession, *, per_origin: int, timeout_s: float
    ) -> None:
        self._session = session
        self._per_origin = per_origin
        self._timeout_s = timeout_s
        self._aiohttp_timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._lean: OrderedDict[str, Http1Client] = OrderedDict()

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> int:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            return await self._post_aiohttp(url, headers, body)
        origin = f"http://{parts.netloc}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        client = await self._client(origin)
        try:
            response = await client.request("POST", path, headers, body)
        except (TimeoutError, HttpError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        return response.status

    async def _post_aiohttp(self, url: str, headers: dict[str, str], body: bytes) -> int:
        try:
            async with self._session.post(url, data=body, headers=headers,
                                          timeout=self._aiohttp_timeout) as resp:  # fmt: skip
                await resp.read()
                return resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    async def _client(self, origin: str) -> Http1Client:
        client = self._lean.get(origin)
        if client is not None:
            self._lean.move_to_end(origin)
            return client
        if len(self._lean) >= MAX_ORIGINS:
            _, oldest = self._lean.popitem(last=False)
            await oldest.aclose()
        client = self._lean[origin] = Http1Client(
            origin, connections=self._per_origin, timeout_s=self._timeout_s
        )
        return client

    async def aclose(self) -> None:
        clients = list(self._lean.values())
        self._lean.clear()
        for client in clients:
            await client.aclose()
