"""Driving the operator console over plain HTTP in tests: sign in, read a page's CSRF token,
post a form (tests/integration/test_console*.py; the browser tests use Playwright)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from gateway.operators import repo
from tests.harness import LiveGateway

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class ConsoleUser:
    base: str
    http: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.base + path, allow_redirects=False) as resp:
            return resp.status, await resp.text()

    async def csrf(self, path: str = "/console/") -> str:
        status, page = await self.get(path)
        assert status == 200, (status, page[:300])
        found = CSRF_RE.search(page)
        assert found is not None, page[:300]
        return found.group(1)

    async def post(self, path: str, form: dict[str, str], csrf: str | None = "page") -> int:
        if csrf == "page":
            csrf = await self.csrf()
        data = dict(form, csrf=csrf) if csrf is not None else dict(form)
        async with self.http.post(self.base + path, data=data, allow_redirects=False) as resp:
            return resp.status


async def add_operator(gw: LiveGateway, name: str, role: str, password: str) -> None:
    conn = await gw.db()
    try:
        await repo.add(conn, name, role, password)
    finally:
        await conn.close()


@asynccontextmanager
async def signed_in(gw: LiveGateway, name: str, password: str) -> AsyncIterator[ConsoleUser]:
    # unsafe=True: keep cookies for an IP address host (127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        user = ConsoleUser(gw.url, http)
        async with http.post(gw.url + "/console/login", allow_redirects=False,
                             data={"username": name, "password": password}) as resp:  # fmt: skip
            assert resp.status == 303, (resp.status, await resp.text())
            assert resp.headers["Location"] == "/console/"
        yield user
