"""What an HTTP client may send, and how slowly: uvicorn's httptools protocol, held to limits.

httptools (llhttp) accepts headers of any size and number, and uvicorn waits for ever for a
request that never finishes, so one client could keep connections (and memory) for as long as
it liked. Here the request line plus headers are bounded in bytes and count (431), the head must
arrive within a time from the connection or the request's start (408), and a body may not pause
longer than a time between two reads (closed). The checks run on the hot path: a few integer
operations per header and read, and one timer per connection that checks lazily.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: int = 5


class HeadTooLarge(Exception):
    """The request line and headers exceed the limits (raised inside the parser to stop it)."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_head = self.limits.max_header_bytes
        self._max_headers = self.limits.max_headers
        # Two counts, each never above the head's true size: the parsed parts (exact, but
        # httptools buffers a header before handing it over) and whole reads that fell inside
        # one head (bounds what a never-ending header makes httptools buffer).
        self._head_bytes = 0
        self._raw_head_bytes = 0
        self._began = False
        self._too_large = False
        self._request_started = self._last_read = 0.0
        self._watch: asyncio.TimerHandle | None = None

    def _in_head(self) -> bool:
        """Before the first request's headers, or a request began and its headers have not
        all come (uvicorn makes a request's cycle, with its scope, once they have)."""
        return self.cycle is None or self.cycle.scope is not self.scope

    # --- the connection ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._request_started = self.loop.time()
        self._watch = self.loop.call_later(self.limits.header_timeout, self._check_reading)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._last_read = self.loop.time()
        in_head = self.cycle is None or self.cycle.scope is not self.scope
        self._began = False
        super().data_received(data)
        if (in_head and not self._began and not self._too_large
                and (self.cycle is None or self.cycle.scope is not self.scope)):
            self._raw_head_bytes += len(data)
            if self._raw_head_bytes > self._max_head:
                self._too_large = True
                self._reply_and_close(431, "Request header fields too large.")

    def send_400_response(self, msg: str) -> None:
        # Where uvicorn answers a parser error, which is how a rejected head stops the parser.
        if self._too_large:
            self._reply_and_close(431, "Request header fields too large.")
        else:
            super().send_400_response(msg)

    # --- parser callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = self._raw_head_bytes = 0
        self._began = True
        self._request_started = self._last_read

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._head_bytes += len(url)
        if self._head_bytes > self._max_head:
            self._reject()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > self._max_head or len(self.headers) >= self._max_headers:
            self._reject()
        # uvicorn's on_header, inlined: this runs for every header of every request.
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    # --- limits --------------------------------------------------------------------------

    def _reject(self) -> None:
        self._too_large = True
        raise HeadTooLarge

    def _check_reading(self) -> None:
        """One timer per connection, checking lazily (a timer per request would cost more on
        the hot path): a head late since its connection or request started is answered 408,
        a body paused too long is cut off. Idle time between requests is uvicorn's keep-alive
        timer's."""
        self._watch = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self._in_head():
            late = now - self._request_started - self.limits.header_timeout
            if late >= 0:
                log.info("closing a connection that did not send its headers in %.0f s",
                         self.limits.header_timeout)
                self._reply_and_close(408, "Request timeout.")
                return
            wait = -late
        elif self.cycle.more_body and not self.cycle.response_complete:
            if self.flow.read_paused:
                self._last_read = now  # the app has not read what came: not the client's pause
            idle = now - self._last_read
            if idle >= self.limits.body_timeout:
                log.info("closing a connection whose body paused for %.0f s", idle)
                self.transport.close()
                return
            wait = self.limits.body_timeout - idle
        else:
            wait = self.limits.header_timeout
        self._watch = self.loop.call_later(wait, self._check_reading)

    def _reply_and_close(self, status: int, message: str) -> None:
        body = message.encode()
        self.transport.write(b"".join([
            STATUS_LINE[status], b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body), body,
        ]))
        self.transport.close()


def protocol_for(limits: HttpLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to ``limits``."""
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})
