"""Redis pipelines at a few microseconds a command: RESP2 written by hand, replies parsed by
hiredis, on a handful of plain asyncio connections.

Admission (risk/ratelimit.py) sends one script call per request, many requests per round
trip; redis-py's pipeline costs tens of microseconds of Python per call on top, which at
thousands of requests a second is a visible share of the gateway's CPU. This speaks only what
admission needs: connect (unix socket or TCP, AUTH, SELECT), write a packed batch, read that
many replies. A connection that fails or times out is dropped; the next batch opens another.
After a Redis restart the idle connections are dead: one Redis closed (EOF seen) is dropped
before use, and a batch whose reused connection breaks before any reply came back is sent
once more on a new connection, so the first batch after a restart succeeds. Errors reach
the caller as `OSError`/`TimeoutError` (transport) or, per reply, as `hiredis.ReplyError`
values in the result.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import hiredis

MAX_CONNECTIONS = 4


def pack(*parts: bytes) -> bytes:
    """One command as a RESP2 array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(p), p))
    return b"".join(out)


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = hiredis.Reader()
        self.answered = False  # Redis sent part of this batch's replies (it is alive)

    def closed_by_peer(self) -> bool:
        return self.writer.is_closing() or self.reader.at_eof()

    async def replies(self, n: int) -> list[Any]:
        out: list[Any] = []
        while len(out) < n:
            reply = self.parser.gets()
            if reply is False:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionResetError("redis closed the connection")
                self.answered = True
                self.parser.feed(data)
                continue
            out.append(reply)
        return out

    def close(self) -> None:
        self.writer.close()


class RespPipe:
    """At most MAX_CONNECTIONS connections, one batch at a time on each."""

    def __init__(self, connection_kwargs: dict[str, Any], timeout_s: float) -> None:
        self._kw = connection_kwargs
        self._timeout_s = timeout_s
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def run(self, packed: bytes, n: int) -> list[Any]:
        """Send `n` packed commands, return their `n` replies in order."""
        async with self._slots:
            reused = self._take_idle()
            if reused is not None:
                try:
                    return await self._send(reused, packed, n)
                except ConnectionError:
                    if reused.answered:
                        raise  # Redis was alive and ran part of the batch: never resend
                    # No reply at all: Redis went away while the connection was idle. Had it
                    # run the batch before dying, a resend can only find nonces used (a 401
                    # the client re-signs), never admit a request twice.
            return await self._send(None, packed, n)

    def _take_idle(self) -> _Conn | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed_by_peer():
                return conn
            conn.close()
        return None

    async def _send(self, conn: _Conn | None, packed: bytes, n: int) -> list[Any]:
        try:
            async with asyncio.timeout(self._timeout_s):
                if conn is None:
                    conn = await self._connect()
                conn.answered = False
                conn.writer.write(packed)
                replies = await conn.replies(n)
        except BaseException:
            if conn is not None:
                conn.close()  # its state is unknown: never reuse it
            raise
        self._idle.append(conn)
        return replies

    async def _connect(self) -> _Conn:
        kw = self._kw
        if kw.get("path"):
            reader, writer = await asyncio.open_unix_connection(kw["path"])
        else:
            reader, writer = await asyncio.open_connection(kw["host"], kw["port"])
        conn = _Conn(reader, writer)
        try:
            setup = []
            if kw.get("password"):
                user = kw.get("username")
                auth = (b"AUTH", user.encode(), kw["password"].encode()) if user else (
                    b"AUTH", kw["password"].encode())  # fmt: skip
                setup.append(pack(*auth))
            if kw.get("db"):
                setup.append(pack(b"SELECT", str(kw["db"]).encode()))
            if setup:
                writer.write(b"".join(setup))
                for reply in await conn.replies(len(setup)):
                    if isinstance(reply, hiredis.ReplyError):
                        raise ConnectionRefusedError(f"redis refused the connection: {reply}")
        except BaseException:
            conn.close()
            raise
        return conn

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            with contextlib.suppress(OSError):
                await conn.writer.wait_closed()
