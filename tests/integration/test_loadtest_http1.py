"""The load generator's HTTP/1.1 client against real servers on free ports: it keeps
connections alive and within their limit, reads every framing a server may choose, and
turns each way of getting no answer into one clear error, leaving nothing open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from gateway.http1 import Http1Client, HttpError
from gateway.server import start_site
from tests.harness import wait_until

BIG_BYTES = 100 * 1024  # several socket reads, so the body is parsed across data_received calls


@dataclass
class Server:
    url: str
    peers: list[tuple[str, int]] = field(default_factory=list)  # one per request answered
    in_flight: int = 0
    most_in_flight: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # holds /v1/gated requests
    release: asyncio.Event = field(default_factory=asyncio.Event)  # set when the test ends


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(url="")

    def track(
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def tracked(request: web.Request) -> web.StreamResponse:
            state.in_flight += 1
            state.most_in_flight = max(state.most_in_flight, state.in_flight)
            try:
                response = await handler(request)
            finally:
                state.in_flight -= 1
            state.peers.append(request.transport.get_extra_info("peername"))  # type: ignore[union-attr]
            return response

        return tracked

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * BIG_BYTES)

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for piece in (b'{"a":', b"1", b"}", b"y" * BIG_BYTES):
            await response.write(piece)
        await response.write_eof()
        return response

    async def close_after(request: web.Request) -> web.Response:
        response = web.json_response({"last": True})
        response.force_close()  # answers with `Connection: close`, then closes
        return response

    async def gated(request: web.Request) -> web.Response:
        await state.gate.wait()
        return web.json_response({})

    async def slow(request: web.Request) -> web.Response:
        await state.release.wait()  # longer than any client timeout here
        return web.json_response({})

    app = web.Application()
    routes = {"/echo": echo, "/big": big, "/chunked": chunked, "/close": close_after}
    routes |= {"/gated": gated, "/slow": slow}
    for path, handler in routes.items():
        app.router.add_route("*", path, track(handler))
    runner, port = await start_site(app, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


async def test_sequential_requests_share_one_kept_alive_connection(server: Server) -> None:
    async with Http1Client(server.url, connections=4, timeout_s=5) as client:
        bodies = [await client.request("POST", "/echo", {}, b"%d" % i) for i in range(5)]

    assert [r.body for r in bodies] == [b"0", b"1", b"2", b"3", b"4"]
    assert {r.status for r in bodies} == {200}
    assert len(set(server.peers)) == 1
    assert client.opened == 1


async def test_concurrent_requests_wait_for_a_connection_within_the_limit(server: Server) -> None:
    async with Http1Client(server.url, connections=3, timeout_s=10) as client:
        requests = [asyncio.create_task(client.request("GET", "/gated", {})) for _ in range(12)]

        async def in_flight() -> int:
            return server.in_flight

        await wait_until(in_flight, lambda n: n == 3)
        server.gate.set()
        responses = await asyncio.gather(*requests)
        for _ in range(3):
            await client.request("GET", "/gated", {})

    assert [r.status for r in responses] == [200] * 12
    assert server.most_in_flight == 3
    assert client.opened == 3
    # Idle connections take turns, so every server process that accepted one gets its share.
    assert len(set(server.peers[-3:])) == 3


async def test_chunked_response_is_read_whole_and_the_connection_kept(server: Server) -> None:
    async with Http1Client(server.url, connections=1, timeout_s=5) as client:
        first = await client.request("GET", "/chunked", {})
        second = await client.request("GET", "/chunked", {})

    assert first.status == 200
    assert first.body == b'{"a":1}' + b"y" * BIG_BYTES
    assert second.body == first.body
    assert client.opened == 1


async def test_large_bodies_cross_many_reads_both_ways(server: Server) -> None:
    payload = bytes(range(256)) * (BIG_BYTES // 256)
    async with Http1Client(server.url, connections=1, timeout_s=5) as client:
        big = await client.request("GET", "/big", {})
        echoed = await client.request("POST", "/echo", {}, payload)
        small = await client.request("POST", "/echo", {}, b"after")

    assert big.body == b"x" * BIG_BYTES
    assert echoed.body == payload
    assert small.body == b"after"  # the big ones left nothing behind on the connection
    assert client.opened == 1


async def test_connection_close_answer_is_read_and_the_next_request_reconnects(
    server: Server,
) -> None:
    async with Http1Client(server.url, connections=1, timeout_s=5) as client:
        last = await client.request("GET", "/close", {})
        after = await client.request("POST", "/echo", {}, b"again")

    assert (last.status, last.body) == (200, b'{"last": true}')
    assert after.body == b"again"
    assert len(set(server.peers)) == 2
    assert client.opened == 2


async def test_request_past_its_timeout_is_a_timeout_and_its_connection_dropped(
    server: Server,
) -> None:
    async with Http1Client(server.url, connections=1, timeout_s=0.2) as client:
        with pytest.raises(TimeoutError):
            await client.request("GET", "/slow", {})
        after = await client.request("POST", "/echo", {}, b"fresh")

    assert after.body == b"fresh"
    assert client.opened == 2  # the timed-out connection was not reused


async def test_timeout_while_waiting_for_a_connection_and_on_a_kept_alive_one(
    server: Server,
) -> None:
    async with Http1Client(server.url, connections=1, timeout_s=10) as client:
        assert (await client.request("POST", "/echo", {}, b"warm")).body == b"warm"
        held = asyncio.create_task(client.request("GET", "/gated", {}))  # takes the one slot
        await wait_until(lambda: _in_flight(server), lambda n: n == 1)
        client.timeout_s = 0.3  # shorter than the slot stays taken
        with pytest.raises(TimeoutError):
            await client.request("POST", "/echo", {}, b"waits")
        server.gate.set()
        assert (await held).status == 200
        assert client.opened == 1  # one kept-alive connection so far, idle again
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await client.request("GET", "/slow", {})
        assert asyncio.get_running_loop().time() - started >= 0.3
        assert (await client.request("POST", "/echo", {}, b"after")).body == b"after"
        assert client.opened == 2  # the timed-out connection was not reused


async def _in_flight(server: Server) -> int:
    return server.in_flight


async def test_refused_connection_is_a_connect_error() -> None:
    runner, port = await start_site(web.Application(), "127.0.0.1", 0)
    await runner.cleanup()  # nothing listens on `port` any more

    async with Http1Client(f"http://127.0.0.1:{port}", connections=2, timeout_s=5) as client:
        for _ in range(3):  # each one tries afresh, none is left waiting for a slot
            with pytest.raises(HttpError) as caught:
                await client.request("GET", "/", {})
            assert caught.value.kind == "connect_error"
    assert client.opened == 0


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[bytes], Awaitable[str]]]:
    """A server that reads one request head, writes the given bytes and closes: for answers
    no real HTTP server would give."""
    servers: list[asyncio.Server] = []

    async def start(answer: bytes) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "connection_closed"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "connection_closed"),
        (b"", "connection_closed"),
        (b"SMTP ready\r\n\r\n", "bad_response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n", "bad_response"),
    ],
)
async def test_an_answer_cut_short_or_not_http_is_an_error_of_its_kind(
    raw_server: Callable[[bytes], Awaitable[str]], answer: bytes, kind: str
) -> None:
    url = await raw_server(answer)
    async with Http1Client(url, connections=1, timeout_s=5) as client:
        with pytest.raises(HttpError) as caught:
            await client.request("GET", "/", {})
    assert caught.value.kind == kind


async def test_a_body_ended_by_the_server_closing_is_an_answer(
    raw_server: Callable[[bytes], Awaitable[str]],
) -> None:
    url = await raw_server(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close")
    async with Http1Client(url, connections=1, timeout_s=5) as client:
        response = await client.request("GET", "/", {})
    assert (response.status, response.body) == (200, b"until close")


async def test_closing_the_client_closes_every_connection(server: Server) -> None:
    async with Http1Client(server.url, connections=4, timeout_s=5) as client:
        await asyncio.gather(*(client.request("GET", "/big", {}) for _ in range(4)))
        assert client.open_connections == client.opened > 0
    assert client.open_connections == 0
