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
from typing import Any, cast

import hiredis

MAX_CONNECTIONS = 4


def pack(*parts: bytes) -> bytes:
    """One command as a RESP2 array of bulk strings."""
    return b"*%d\r\n" % len(parts) + b"".join([b"$%d\r\n%s\r\n" % (len(p), p) for p in parts])


class _Conn(asyncio.Protocol):
    """One connection as an asyncio protocol: replies are parsed as they arrive and the batch's
    future is resolved when the last one is in (no StreamReader/StreamWriter in between)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = hiredis.Reader()
        self.answered = False  # Redis sent part of this batch's replies (it is alive)
        self.lost = False
        self._want = 0
        self._out: list[Any] = []
        self._done: asyncio.Future[list[Any]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        done = self._done
        if done is None or done.done():
            self.close()  # nothing was asked: the connection is out of step, never reuse it
            return
        self.answered = True
        try:
            self.parser.feed(data)
            out = self._out
            while len(out) < self._want:
                reply = self.parser.gets()
                if reply is False:
                    return
                out.append(reply)
        except Exception as exc:  # hiredis.ProtocolError: the stream is unusable
            done.set_exception(exc)
            self.close()
            return
        self._done = None
        done.set_result(out)

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        done, self._done = self._done, None
        if done is not None and not done.done():
            done.set_exception(ConnectionResetError("redis closed the connection"))

    def closed_by_peer(self) -> bool:
        return self.lost or self.transport is None or self.transport.is_closing()

    def send(self, packed: bytes, n: int, done: asyncio.Future[list[Any]]) -> None:
        """Write a batch; `done` gets its `n` replies (or the error that ended it)."""
        assert self.transport is not None and self._done is None
        self.answered = False
        self._want, self._out, self._done = n, [], done
        self.transport.write(packed)

    async def replies(self, n: int) -> list[Any]:
        """The next `n` replies (the connection's setup: AUTH, SELECT)."""
        done: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._want, self._out, self._done = n, [], done
        return await done

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _expire(done: asyncio.Future[list[Any]]) -> None:
    if not done.done():
        done.set_exception(TimeoutError("redis did not answer in time"))


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
        loop = asyncio.get_running_loop()
        try:
            if conn is None:
                async with asyncio.timeout(self._timeout_s):
                    conn = await self._connect()
            done: asyncio.Future[list[Any]] = loop.create_future()
            conn.send(packed, n, done)
            timer = loop.call_later(self._timeout_s, _expire, done)
            try:
                replies = await done
            finally:
                timer.cancel()
        except BaseException:
            if conn is not None:
                conn.close()  # its state is unknown: never reuse it
            raise
        self._idle.append(conn)
        return replies

    async def _connect(self) -> _Conn:
        kw = self._kw
        loop = asyncio.get_running_loop()
        conn: _Conn
        if kw.get("path"):
            _, conn = await loop.create_unix_connection(_Conn, kw["path"])
        else:
            _, conn = await loop.create_connection(_Conn, kw["host"], kw["port"])
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
                waiting = conn.replies(len(setup))
                assert conn.transport is not None
                conn.transport.write(b"".join(setup))
                for reply in await waiting:
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
