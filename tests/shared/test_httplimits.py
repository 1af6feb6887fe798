"""Slow and greedy clients, over raw sockets against a real uvicorn serving a real app."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, Request

from shared.httplimits import HttpLimits
from shared.natsd import free_port
from shared.webserver import serve_until

LIMITS = HttpLimits(max_header_bytes=32 * 1024, max_headers=100, header_timeout=1.0,
                    body_timeout=1.0)


@pytest.fixture
async def port() -> AsyncIterator[int]:
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/")
    async def upload(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    port, stop = free_port(), asyncio.Event()
    server = asyncio.create_task(serve_until(app, "127.0.0.1", port, stop, LIMITS))
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        break
    yield port
    stop.set()
    await server


async def send(port: int, *pieces: bytes, pause: float = 0.0) -> tuple[bytes, float]:
    """Send ``pieces`` (``pause`` seconds apart); returns all the server sent back before it
    closed the connection, and how long that took. A blocking socket in a thread: asyncio's
    streams drop what was received when the connection is then reset."""
    return await asyncio.to_thread(_exchange, port, pieces, pause)


def _exchange(port: int, pieces: tuple[bytes, ...], pause: float) -> tuple[bytes, float]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(15)
        started = time.monotonic()
        for piece in pieces:
            try:
                sock.sendall(piece)
            except OSError:  # closed on us while sending: what it answered is still readable
                break
            time.sleep(pause)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
        return answer, time.monotonic() - started


REQUEST = b"GET / HTTP/1.1\r\nHost: backstop\r\n"


async def test_a_client_that_never_finishes_its_headers_is_cut_off(port: int) -> None:
    answer, seconds = await send(port, REQUEST)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert 0.9 < seconds < 3


async def test_a_client_that_sends_nothing_is_cut_off(port: int) -> None:
    answer, seconds = await send(port)
    assert answer.startswith(b"HTTP/1.1 408 ") and seconds < 3


async def test_headers_trickled_in_are_cut_off_too(port: int) -> None:
    trickle = [b"X-Slow-%d: v\r\n" % n for n in range(20)]
    answer, seconds = await send(port, REQUEST, *trickle, pause=0.1)
    assert answer.startswith(b"HTTP/1.1 408 ") and seconds < 3


async def test_a_body_that_stalls_is_cut_off(port: int) -> None:
    head = b"POST / HTTP/1.1\r\nHost: backstop\r\nContent-Length: 100\r\n\r\n"
    answer, seconds = await send(port, head, b"x" * 10)
    assert answer == b"" and seconds < 4


async def test_a_200_kb_header_is_431(port: int) -> None:
    answer, _ = await send(port, REQUEST + b"X-Big: " + b"a" * 200_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_a_huge_header_sent_in_pieces_is_431(port: int) -> None:
    pieces = [REQUEST + b"X-Big: "] + [b"a" * 8192] * 64
    answer, _ = await send(port, *pieces, pause=0.001)
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_10000_headers_are_431(port: int) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % n for n in range(10_000))
    answer, _ = await send(port, REQUEST + headers + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_a_long_url_counts_as_header_bytes(port: int) -> None:
    answer, _ = await send(port, b"GET /?q=" + b"a" * 40_000 + b" HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_normal_requests_on_a_keep_alive_connection_still_work(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    headers = b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 200) for n in range(90))  # under both
    body = b"y" * 100_000
    for request in (REQUEST + headers + b"\r\n",
                    b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
                    REQUEST + b"\r\n"):
        writer.write(request)
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 5)
        assert status.startswith(b"HTTP/1.1 200 "), status
        length = 0
        while (line := await reader.readline()) != b"\r\n":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        await asyncio.sleep(0.6)  # pauses between requests do not add up to a timeout
    writer.close()


async def test_pipelined_requests_in_one_read_are_not_mistaken_for_a_big_head(port: int) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 100) for n in range(50))
    burst = (REQUEST + headers + b"\r\n") * 20  # 100+ KB in one write
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(burst)
    await writer.drain()
    answers = b""
    while answers.count(b"HTTP/1.1 200 ") < 20:
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        assert chunk, answers
        answers += chunk
    assert b" 431 " not in answers
    writer.close()
