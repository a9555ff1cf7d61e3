"""The lean HTTP/1.1 server over real sockets: keep-alive, answers in order (pipelined too),
sync and async handlers, what it refuses, hang-ups and closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field

import orjson
import pytest

from gateway.http1 import Http1Client
from gateway.http1_server import Http1Server, Request, Response
from protocol.errors import ApiError
from tests.harness import wait_until

MAX_BODY = 1024


@dataclass
class App:
    """Echoes `METHOD target body`; `/slow` answers when `release` is set; `/boom` raises."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: list[Request] = field(default_factory=list)
    refused: list[Exception] = field(default_factory=list)

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        if request.path == "/boom":
            raise RuntimeError("boom")
        if request.path == "/slow":
            return self._slow(request)
        echo = f"{request.method} {request.target} ".encode() + request.body
        return Response(200, echo, (("X-Query", repr(request.query)),), "text/plain")

    async def _slow(self, request: Request) -> Response:
        self.held.append(request)
        await self.release.wait()
        return Response(200, b"slow done", (), "text/plain")

    def error_answer(self, request: Request | None, exc: Exception) -> Response:
        self.refused.append(exc)
        status = exc.status if isinstance(exc, ApiError) else 500
        return Response(status, orjson.dumps({"error": type(exc).__name__}))


@pytest.fixture
async def served() -> AsyncIterator[tuple[App, Http1Server, int]]:
    app = App()
    server = Http1Server(app.handle, app.error_answer, max_body_bytes=MAX_BODY)
    port = await server.start("127.0.0.1", 0)
    try:
        yield app, server, port
    finally:
        app.release.set()
        await server.close(grace_s=2.0)


async def exchange(port: int, data: bytes, answers: int = 1) -> tuple[list[bytes], bool]:
    """Write `data` on a new connection; returns the raw answers read and whether the server
    then closed the connection (within a second)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        got = [await _answer(reader) for _ in range(answers)]
        try:
            closed = await asyncio.wait_for(reader.read(1), 1.0) == b""
        except TimeoutError:
            closed = False
        return got, closed
    finally:
        writer.close()


async def _answer(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))  # fmt: skip
    return head + await reader.readexactly(length)


def post(target: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)  # fmt: skip


async def test_keep_alive_serves_many_requests_on_one_connection(
    served: tuple[App, Http1Server, int],
) -> None:
    _, server, port = served
    async with Http1Client(f"http://127.0.0.1:{port}", connections=1, timeout_s=5) as client:
        for i in range(3):
            reply = await client.request("POST", f"/echo?i={i}", {}, b"body%d" % i)
            assert (reply.status, reply.body) == (200, f"POST /echo?i={i} body{i}".encode())
        assert len(server.connections) == 1


async def test_pipelined_requests_are_answered_in_order_even_behind_a_slow_one(
    served: tuple[App, Http1Server, int],
) -> None:
    app, _, port = served
    task = asyncio.create_task(exchange(port, post("/slow", b"") + post("/fast", b"x"), 2))
    await wait_until(lambda: _held(app), lambda n: n == 1)
    assert not task.done()  # the fast one waits behind the slow one
    app.release.set()
    (first, second), closed = await task
    assert first.endswith(b"slow done")
    assert second.endswith(b"POST /fast x")
    assert not closed


async def _held(app: App) -> int:
    return len(app.held)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (post("/echo", b"x" * (MAX_BODY + 1)), 413),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /echo HTTP/2.0\r\n\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", 400),
        (b"GET /echo HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET /echo HTTP/1.1\r\n bad header\r\n\r\n", 400),
    ],
)
async def test_a_request_it_cannot_read_is_refused_and_the_connection_closed(
    served: tuple[App, Http1Server, int], data: bytes, status: int
) -> None:
    app, _, port = served
    (answer,), closed = await exchange(port, data)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"Connection: close" in answer
    assert closed
    assert isinstance(app.refused[0], ApiError)


async def test_a_handlers_exception_gets_the_error_answer_and_the_connection_lives_on(
    served: tuple[App, Http1Server, int],
) -> None:
    app, _, port = served
    (boom, echo), closed = await exchange(port, post("/boom", b"") + post("/echo", b"k"), 2)
    assert boom.startswith(b"HTTP/1.1 500 ") and boom.endswith(b'{"error":"RuntimeError"}')
    assert echo.endswith(b"POST /echo k")
    assert not closed
    assert [type(e) for e in app.refused] == [RuntimeError]


async def test_connection_close_and_http_1_0_close_after_the_answer(
    served: tuple[App, Http1Server, int],
) -> None:
    _, _, port = served
    (answer,), closed = await exchange(port, post("/echo", b"a", "Connection: close\r\n"))
    assert answer.endswith(b"POST /echo a") and closed
    (answer,), closed = await exchange(port, b"GET /old HTTP/1.0\r\n\r\n")
    assert answer.endswith(b"GET /old ") and closed


async def test_head_is_answered_without_a_body(served: tuple[App, Http1Server, int]) -> None:
    _, _, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"HEAD /echo HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
        assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 11" in head  # "HEAD /echo "
        assert (await _answer(reader)).endswith(b"GET /after ")  # no body came between
    finally:
        writer.close()


async def test_query_is_parsed_and_the_target_kept_as_sent(
    served: tuple[App, Http1Server, int],
) -> None:
    _, _, port = served
    (answer,), _ = await exchange(port, b"GET /q?a=1&b=%41 HTTP/1.1\r\n\r\n")
    assert b"X-Query: {'a': '1', 'b': 'A'}" in answer
    assert answer.endswith(b"GET /q?a=1&b=%41 ")


async def test_a_client_hanging_up_is_seen_by_the_running_handler(
    served: tuple[App, Http1Server, int],
) -> None:
    app, _, port = served
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(post("/slow", b""))
    await wait_until(lambda: _held(app), lambda n: n == 1)
    assert not app.held[0].gone()
    writer.close()
    await wait_until(lambda: _gone(app.held[0]), lambda gone: gone)


async def _gone(request: Request) -> bool:
    return request.gone()


async def test_close_lets_a_running_handler_answer_and_closes_idle_connections() -> None:
    app = App()
    server = Http1Server(app.handle, app.error_answer, max_body_bytes=MAX_BODY)
    port = await server.start("127.0.0.1", 0)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    busy = asyncio.create_task(exchange(port, post("/slow", b"")))
    await wait_until(lambda: _held(app), lambda n: n == 1)
    closing = asyncio.create_task(server.close(grace_s=5.0))
    assert await asyncio.wait_for(idle_reader.read(1), 2.0) == b""  # idle: closed at once
    assert not closing.done()  # waits for the running handler
    app.release.set()
    (answer,), closed = await asyncio.wait_for(busy, 5.0)
    assert answer.endswith(b"slow done") and b"Connection: close" in answer and closed
    await asyncio.wait_for(closing, 5.0)
    idle_writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_a_quiet_connection_is_closed_but_not_one_whose_handler_runs() -> None:
    app = App()
    server = Http1Server(app.handle, app.error_answer, max_body_bytes=MAX_BODY, keepalive_s=0.2)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(post("/echo", b"q"))
        assert (await _answer(reader)).endswith(b"POST /echo q")
        busy = asyncio.create_task(exchange(port, post("/slow", b"")))
        await wait_until(lambda: _held(app), lambda n: n == 1)
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(reader.read(1), 5.0) == b""  # quiet: closed by the sweep
        assert asyncio.get_running_loop().time() - started < 2.0
        writer.close()
        assert not busy.done()  # the held request's connection stays open, quiet as it is
        app.release.set()
        (answer,), _ = await asyncio.wait_for(busy, 5.0)
        assert answer.endswith(b"slow done")
    finally:
        app.release.set()
        await server.close(grace_s=2.0)
