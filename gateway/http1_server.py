"""A lean HTTP/1.1 server: keep-alive connections on asyncio protocols, requests with a
Content-Length body (or none), answered in order, one at a time per connection. It is the
counterpart of the lean client (http1.py): a handler that can answer at once is called
synchronously, with no task, stream or response object per request, so a process that takes
one small request per payout (the demo merchants' webhook sink) spends its CPU on the request
and not on the framework.

    async def handle(request: Request) -> Response | Awaitable[Response]: ...
    server = Http1Server(handle, error_answer, max_body_bytes=1 << 20)
    port = await server.start("127.0.0.1", 0)
    ...
    await server.close()

What it refuses, through `error_answer` (then the connection closes): a malformed head, a
head over MAX_HEAD_BYTES, a body over `max_body_bytes` (413), a chunked body, a version other
than HTTP/1.0 and 1.1. It does not do TLS, `Expect: 100-continue`, or compression.

In front of a full server (`handoff`: a protocol factory, e.g. aiohttp's `web.Server`), it
answers only the requests `wants(method, target)` picks, and hands the connection, with every
byte not yet answered, to a new protocol from `handoff` at the first request it does not want
or cannot read (a chunked body, `Expect`, a malformed head): from then on the full server owns
that connection. So the gateway answers `POST /v1/payouts` here and everything else as before.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Final, Literal, NamedTuple, cast
from urllib.parse import parse_qsl

from protocol.errors import ApiError, InvalidRequest, PayloadTooLarge

log = logging.getLogger("paygate.http1_server")

MAX_HEAD_BYTES = 64 * 1024  # request line and headers
CLOSE_GRACE_S = 5.0  # how long `close` waits for handlers still running
KEEPALIVE_S = 75.0  # a connection with no handler running and no bytes for this long is closed


class Response(NamedTuple):
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"


class Request:
    """One request as sent: `target` is the path and query undecoded, `headers` maps
    lower-cased names to values (a repeated header keeps its last value)."""

    __slots__ = ("_conn", "body", "headers", "method", "path", "target")

    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes,
                 conn: _Connection) -> None:  # fmt: skip
        self.method = method
        self.target = target
        self.path = target.partition("?")[0]
        self.headers = headers
        self.body = body
        self._conn = conn

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.target.partition("?")[2]))

    def header(self, name: str) -> str | None:
        """A header by its name in any case (`headers` holds them lower-cased)."""
        return self.headers.get(name.lower())

    def gone(self) -> bool:
        """The client hung up (or the connection is closing): nobody waits for the answer."""
        return self._conn.lost or self._conn.transport.is_closing()


Handler = Callable[[Request], "Response | Awaitable[Response]"]
# The answer to a request the server refused (request None) or a handler raised on.
ErrorAnswer = Callable[[Request | None, Exception], Response]
Wants = Callable[[str, str], bool]  # (method, target) -> answered here
HANDOFF: Final = "handoff"  # _parse: this request goes to the full server


@functools.cache
def _status_line(status: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return f"HTTP/1.1 {status} {reason}\r\n".encode("latin-1")


def encode(response: Response, *, head_only: bool, close: bool, date_line: bytes) -> bytes:
    parts = [_status_line(response.status), date_line,
             f"Content-Type: {response.content_type}\r\nContent-Length: {len(response.body)}\r\n"
             .encode("latin-1")]  # fmt: skip
    for name, value in response.headers:
        parts.append(f"{name}: {value}\r\n".encode("latin-1"))
    parts.append(b"Connection: close\r\n\r\n" if close else b"\r\n")
    if not head_only:
        parts.append(response.body)
    return b"".join(parts)


class _Connection(asyncio.Protocol):
    """Parses requests off one connection and writes their answers in order."""

    def __init__(self, server: Http1Server) -> None:
        self._server = server
        self._buffer = bytearray()
        self._running: asyncio.Task[Response] | None = None  # a handler not yet answered
        self._close_after = False
        self._paused = False
        self._refused: Request | None = None  # a request refused by its head alone
        self.lost = False
        self.last_data_s = server.loop.time()  # when bytes last came (KEEPALIVE_S)
        self.transport: asyncio.Transport  # set by connection_made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._server.connections.discard(self)
        self._server.changed()

    @property
    def busy(self) -> bool:
        return self._running is not None

    def close_when_idle(self) -> None:
        """Close now if no handler is running, else once it has answered."""
        self._close_after = True
        if not self.busy:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.last_data_s = self._server.loop.time()
        self._buffer += data
        if self._running is None:
            self._serve()
        elif not self._paused and len(self._buffer) > MAX_HEAD_BYTES + self._server.max_body_bytes:
            self._paused = True  # pipelined past any sane size: wait for the answer
            self.transport.pause_reading()

    def _serve(self) -> None:
        """Answer the complete requests in the buffer until one needs to wait."""
        while not self.lost and not self.transport.is_closing():
            try:
                parsed = self._parse()
            except ApiError as exc:
                self._refuse(exc)
                return
            if parsed is None:
                return
            if parsed == HANDOFF:
                self._hand_off()
                return
            request, keep_alive = parsed
            self._server.requests += 1
            close = not keep_alive or self._close_after
            head_only = request.method == "HEAD"
            try:
                answer = self._server.handler(request)
            except Exception as exc:
                answer = self._server.error_answer(request, exc)
            if isinstance(answer, Response):
                self._write(answer, head_only, close)
                continue
            task = asyncio.ensure_future(answer)
            self._running = task
            done = functools.partial(self._answered, request=request, head_only=head_only,
                                     close=close)  # fmt: skip
            task.add_done_callback(done)
            return

    def _answered(self, task: asyncio.Task[Response], *, request: Request, head_only: bool,
                  close: bool) -> None:  # fmt: skip
        self._running = None
        self._server.changed()
        if self.lost:
            return
        if task.cancelled():
            self.transport.close()
            return
        exc = task.exception()
        if exc is None:
            answer = task.result()
        elif isinstance(exc, Exception):
            answer = self._server.error_answer(request, exc)
        else:  # KeyboardInterrupt, SystemExit: not ours to answer
            self.transport.close()
            return
        self._write(answer, head_only, close or self._close_after)
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        self._serve()

    def _write(self, response: Response, head_only: bool, close: bool) -> None:
        date_line = self._server.date_line()
        self.transport.write(encode(response, head_only=head_only, close=close,
                                    date_line=date_line))  # fmt: skip
        if close:
            self.transport.close()

    def _hand_off(self) -> None:
        """From now on the full server's protocol owns this connection and its unread bytes."""
        assert self._server.handoff is not None and self._running is None
        protocol = self._server.handoff()
        self._server.connections.discard(self)
        self._server.handed_off += 1
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        data, self._buffer = bytes(self._buffer), bytearray()
        if data:
            cast(asyncio.Protocol, protocol).data_received(data)

    def _refuse(self, exc: ApiError) -> None:
        self._buffer.clear()
        answer = self._server.error_answer(self._refused, exc)
        self._write(answer, head_only=False, close=True)

    def _parse(self) -> tuple[Request, bool] | Literal["handoff"] | None:
        """The next complete request and whether the connection stays open after it; HANDOFF
        for one the full server is to answer; None while it is incomplete."""
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                return self._cannot("request head over 64 KiB")
            return None
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            return self._cannot("malformed request line")
        if version not in ("HTTP/1.1", "HTTP/1.0") or not target.startswith("/"):
            return self._cannot("not an HTTP/1.x request line with an absolute path")
        server = self._server
        if server.wants is not None and not server.wants(method, target):
            return HANDOFF
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                return self._cannot("malformed header line")
            headers[name.lower()] = value.strip()
        if "transfer-encoding" in headers or "expect" in headers:
            return self._cannot("a chunked body or Expect is not supported here")
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit():
            return self._cannot("malformed Content-Length")
        length = int(length_text)
        if length > server.max_body_bytes:  # refused unread, the request named in the answer
            self._refused = Request(method, target, headers, b"", self)
            raise PayloadTooLarge(f"body over {server.max_body_bytes} bytes")
        start = end + 4
        if len(buffer) < start + length:
            return None
        body = bytes(buffer[start : start + length])
        del buffer[: start + length]
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection and (
            version == "HTTP/1.1" or "keep-alive" in connection
        )
        return Request(method, target, headers, body, self), keep_alive

    def _cannot(self, why: str) -> Literal["handoff"]:
        """A request this server does not read: the full server's, if there is one."""
        if self._server.handoff is not None:
            return HANDOFF
        raise InvalidRequest(why)


class Http1Server:
    """Listens on one port; closes connections quiet for `keepalive_s`; `close` stops
    listening, closes idle connections, waits up to CLOSE_GRACE_S for the handlers still
    running, and then drops what is left. Made inside the running loop."""

    def __init__(self, handler: Handler, error_answer: ErrorAnswer, *, max_body_bytes: int,
                 wants: Wants | None = None,
                 handoff: Callable[[], asyncio.BaseProtocol] | None = None,
                 keepalive_s: float = KEEPALIVE_S) -> None:  # fmt: skip
        assert (wants is None) == (handoff is None), "wants and handoff go together"
        self.handler = handler
        self.error_answer = error_answer
        self.max_body_bytes = max_body_bytes
        self.wants = wants
        self.handoff = handoff
        self.requests = 0  # requests read and given to the handler
        self.handed_off = 0  # connections given to the full server
        self.connections: set[_Connection] = set()
        self.keepalive_s = keepalive_s
        self.loop = asyncio.get_running_loop()
        self._server: asyncio.Server | None = None
        self._sweep: asyncio.TimerHandle | None = None
        self._date_s = 0
        self._date_line = b""
        self._changed = asyncio.Event()

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Listen; returns the bound port (`port` 0: any free one)."""
        self._server = await self.loop.create_server(
            lambda: _Connection(self), host, port, backlog=4096, reuse_port=reuse_port or None
        )
        self._sweep = self.loop.call_later(self.keepalive_s / 4, self._close_idle)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    def _close_idle(self) -> None:
        """Close the connections quiet for `keepalive_s` with no handler running (a client
        that keeps connections open and idle, or stops halfway through a head); a sweep every
        quarter of it, rather than a timer per request."""
        quiet_since = self.loop.time() - self.keepalive_s
        for conn in list(self.connections):
            if not conn.busy and conn.last_data_s < quiet_since:
                conn.transport.close()
        self._sweep = self.loop.call_later(self.keepalive_s / 4, self._close_idle)

    def changed(self) -> None:
        self._changed.set()

    def date_line(self) -> bytes:
        """The `Date` header (RFC 9110: an origin server with a clock sends it), made once a
        second."""
        now_s = int(time.time())
        if now_s != self._date_s:
            self._date_s = now_s
            self._date_line = f"Date: {formatdate(now_s, usegmt=True)}\r\n".encode("latin-1")
        return self._date_line

    async def close(self, grace_s: float = CLOSE_GRACE_S) -> None:
        if self._server is None:
            return
        if self._sweep is not None:
            self._sweep.cancel()
        self._server.close()
        for conn in list(self.connections):
            conn.close_when_idle()
        try:
            async with asyncio.timeout(grace_s):
                while any(c.busy for c in self.connections):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            busy = sum(c.busy for c in self.connections)
            log.warning("handlers still running at close", extra={"connections": busy})
        for conn in list(self.connections):
            conn.transport.abort()
        await self._server.wait_closed()
        self._server = None
