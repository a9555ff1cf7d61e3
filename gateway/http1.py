"""A lean HTTP/1.1 client: keep-alive connections on asyncio protocols, one request at a time
per connection, each request written in one piece. It costs a fraction of aiohttp's client
per request, so the load generator does not compete with what it measures, and the notifier
spends less on each plain-http delivery (workers/notify_http.py).

    async with Http1Client("http://127.0.0.1:8080", connections=64, timeout_s=5) as client:
        response = await client.request("POST", "/v1/noop", {"X-A": "1"}, b"{}")

A request that gets no HTTP answer raises `TimeoutError` or `HttpError` (its `kind` says why).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import NamedTuple, Self, cast
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024  # status line and headers
MAX_BODY_BYTES = 16 * 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # they send Content-Length even when empty
NO_BODY_STATUSES = frozenset({204, 304})
UNTIL_CLOSE = -1  # a body without Content-Length or chunked: it ends when the server closes


class Response(NamedTuple):
    status: int
    body: bytes


class HttpError(Exception):
    """No HTTP answer. `kind` is one of `connect_error` (refused, unreachable),
    `connection_reset` (an OS error on an open connection), `connection_closed` (the server
    closed before the answer was complete) and `bad_response` (not HTTP/1.x or over a limit)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class _Connection(asyncio.Protocol):
    """One keep-alive connection; parses the answer to the request written last."""

    def __init__(self, client: Http1Client) -> None:
        self._client = client
        self._buffer = bytearray()
        self._answer: asyncio.Future[Response] | None = None
        self._expect_body = True
        self._status = 0
        self._length = 0  # body bytes still wanted, or UNTIL_CLOSE
        self._chunked = False
        self._body = bytearray()
        self._in_body = False
        self.transport: asyncio.Transport  # set by connection_made, before anyone sees `self`
        self.will_close = False  # the server said `Connection: close` (or spoke HTTP/1.0)
        self.lost = client.loop.create_future()  # done once the transport is gone

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, data: bytes, expect_body: bool) -> asyncio.Future[Response]:
        assert self._answer is None, "one request at a time"
        if self.transport.is_closing():  # the server closed it while it was being handed over
            raise HttpError("connection_closed", "before the request was sent")
        self._answer = self._client.loop.create_future()
        self._expect_body = expect_body
        self.transport.write(data)
        return self._answer

    @property
    def reusable(self) -> bool:
        return not (self.will_close or self.lost.done() or self._buffer or self._answer)

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._answer.done():
            self._fail(HttpError("bad_response", "data with no request waiting"))
            return
        self._buffer += data
        try:
            response = self._parse_body() if self._in_body else self._parse_head()
        except (ValueError, IndexError) as exc:
            self._fail(HttpError("bad_response", str(exc)))
            return
        if response is not None:
            self._answer.set_result(response)
            self._answer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._answer is not None and not self._answer.done():
            if exc is None and self._in_body and self._length == UNTIL_CLOSE:
                self._answer.set_result(Response(self._status, bytes(self._body)))
            elif exc is None:
                self._answer.set_exception(HttpError("connection_closed"))
            else:
                self._answer.set_exception(HttpError("connection_reset", str(exc)))
        self._answer = None
        self.lost.set_result(None)
        self._client._forget(self)

    def _fail(self, error: HttpError) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
        self.will_close = True
        self.transport.abort()

    def _parse_head(self) -> Response | None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise ValueError("head over MAX_HEAD_BYTES")
            return None
        lines = bytes(self._buffer[:end]).split(b"\r\n")
        del self._buffer[: end + 4]
        version, status, *_ = lines[0].split(b" ", 2)
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(status) != 3:
            raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        self._status = int(status)
        if 100 <= self._status < 200:  # an interim answer (100 Continue): the real one follows
            return self._parse_head()
        length = UNTIL_CLOSE
        self._chunked = False
        self.will_close = version == b"HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
                if length < 0:
                    raise ValueError("negative Content-Length")
            elif name == b"transfer-encoding":
                self._chunked = value.strip().lower().endswith(b"chunked")
            elif name == b"connection":
                self.will_close = b"close" in value.lower()
        if not self._expect_body or self._status in NO_BODY_STATUSES:
            length = 0
        elif self._chunked:
            length = 0  # wanted: the next chunk-size line
        if length > MAX_BODY_BYTES:
            raise ValueError(f"Content-Length {length} over MAX_BODY_BYTES")
        if length == UNTIL_CLOSE:
            self.will_close = True
        self._length = length
        self._body = bytearray()
        self._in_body = True
        return self._parse_body()

    def _parse_body(self) -> Response | None:
        if self._chunked:
            return self._parse_chunks()
        if self._length == UNTIL_CLOSE:
            self._body += self._buffer
            self._buffer.clear()
            if len(self._body) > MAX_BODY_BYTES:
                raise ValueError("body over MAX_BODY_BYTES")
            return None
        if len(self._buffer) < self._length:
            return None
        body = bytes(self._buffer[: self._length])
        del self._buffer[: self._length]
        self._in_body = False
        return Response(self._status, body)

    def _parse_chunks(self) -> Response | None:
        buffer = self._buffer
        while True:
            if self._length:  # inside a chunk: its data, then CRLF
                if len(buffer) < self._length + 2:
                    return None
                if buffer[self._length : self._length + 2] != b"\r\n":
                    raise ValueError("chunk not followed by CRLF")
                self._body += buffer[: self._length]
                del buffer[: self._length + 2]
                self._length = 0
                if len(self._body) > MAX_BODY_BYTES:
                    raise ValueError("body over MAX_BODY_BYTES")
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    raise ValueError("chunk-size line over MAX_HEAD_BYTES")
                return None
            size = int(bytes(buffer[:line_end]).split(b";", 1)[0], 16)
            if size > MAX_BODY_BYTES:
                raise ValueError(f"chunk of {size} bytes over MAX_BODY_BYTES")
            if size > 0:
                del buffer[: line_end + 2]
                self._length = size
                continue
            # The last chunk, optional trailers, then an empty line.
            trailers_end = buffer.find(b"\r\n\r\n", line_end)
            if trailers_end < 0:
                return None
            del buffer[: trailers_end + 4]
            self._in_body = False
            return Response(self._status, bytes(self._body))


class Http1Client:
    """At most `connections` keep-alive connections to one http:// origin. Requests beyond
    that wait, first come first served, for a connection to come free."""

    def __init__(self, base_url: str, *, connections: int, timeout_s: float) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"need an http://host[:port] URL, not {base_url!r}")
        if connections < 1 or timeout_s <= 0:
            raise ValueError("need connections >= 1 and timeout_s > 0")
        self.loop = asyncio.get_running_loop()
        self._host = url.hostname
        self._port = url.port or 80
        self._prefix = url.path.rstrip("/")
        self._host_line = f"Host: {url.netloc}\r\n"
        self.connections = connections
        self.timeout_s = timeout_s
        self.opened = 0  # connections ever opened (a keep-alive check for tests and reports)
        self._open = 0  # connected or connecting; at most `connections`
        self._all: set[_Connection] = set()
        # Idle ones are reused oldest first, so requests rotate over every open connection
        # (and so over every server process that accepted one), as aiohttp's pool does.
        self._idle: deque[_Connection] = deque()
        # Each waiter gets an idle connection, or None: the right to open one.
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._closed = False

    @property
    def open_connections(self) -> int:
        return len(self._all)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> Response:
        """Send one request and read its answer, all within `timeout_s`."""
        head = [f"{method} {self._prefix}{path} HTTP/1.1\r\n", self._host_line]
        head += [f"{name}: {value}\r\n" for name, value in headers.items()]
        if body or method in BODY_METHODS:
            head.append(f"Content-Length: {len(body)}\r\n")
        data = "".join(head).encode("latin-1") + b"\r\n" + body
        async with asyncio.timeout(self.timeout_s):
            conn = await self._acquire()
            try:
                response = await conn.send(data, expect_body=method != "HEAD")
            except BaseException:
                conn.transport.abort()  # its state is unknown: never reuse it
                raise
        self._release(conn)
        return response

    async def aclose(self) -> None:
        """Close every connection and wait until they are gone. Requests still running fail."""
        self._closed = True
        conns = list(self._all)
        for conn in conns:
            conn.transport.close()
        await asyncio.gather(*(conn.lost for conn in conns))

    async def _acquire(self) -> _Connection:
        if self._closed:
            raise RuntimeError("the client is closed")
        if self._idle:
            return self._idle.popleft()
        if self._open < self.connections:
            self._open += 1
            return await self._connect()
        waiter: asyncio.Future[_Connection | None] = self.loop.create_future()
        self._waiters.append(waiter)
        try:
            conn = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():  # handed over, then cancelled
                handed = waiter.result()
                self._release(handed) if handed is not None else self._give_up_slot()
            raise
        return conn if conn is not None else await self._connect()

    async def _connect(self) -> _Connection:
        """Open a connection in a slot already counted in `_open`."""
        try:
            if self._closed:
                raise RuntimeError("the client is closed")
            _, conn = await self.loop.create_connection(
                lambda: _Connection(self), self._host, self._port
            )
        except BaseException as exc:
            self._give_up_slot()
            if isinstance(exc, OSError):
                raise HttpError("connect_error", str(exc)) from exc
            raise
        self.opened += 1
        self._all.add(conn)
        if self._closed:  # closed while connecting: `aclose` did not see this one
            conn.transport.close()
            raise RuntimeError("the client is closed")
        return conn

    def _release(self, conn: _Connection) -> None:
        if not conn.reusable or self._closed:
            conn.transport.close()  # `_forget` frees its slot once it is gone
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _give_up_slot(self) -> None:
        """A slot came free: hand it to the first live waiter, or leave it free."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._open -= 1

    def _forget(self, conn: _Connection) -> None:
        """Called by a connection once its transport is gone. One that never reached `_all`
        (its connect was cancelled) gave its slot up in `_connect`."""
        if conn not in self._all:
            return
        self._all.remove(conn)
        if conn in self._idle:
            self._idle.remove(conn)
        self._give_up_slot()
