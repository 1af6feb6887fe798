"""The optional access log (``BACKSTOP_ACCESS_LOG``): one INFO line per HTTP request answered.

uvicorn's own access log prints the raw path and query, and the ping API carries its secret in
the path (``/ping/<key>/…``): here the key is cut (``/ping/.../nightly``), the query left out,
and the time to answer added. Off, the app is served unwrapped: it costs nothing.
"""

from __future__ import annotations

import logging

from starlette.types import Scope

from shared.answered import AnsweredRequests
from shared.text import one_line

log = logging.getLogger(__name__)

PATH_CHARS = 200


def shown_path(path: str) -> str:
    """The path as logged: a ping key replaced by ``...``, on one line, capped."""
    parts = path.split("/", 3)
    if len(parts) > 2 and parts[1] == "ping" and parts[2]:
        parts[2] = "..."
    return one_line("/".join(parts), PATH_CHARS)


class AccessLog(AnsweredRequests):
    def answered(self, scope: Scope, status: int, seconds: float) -> None:
        method, path = scope["method"], shown_path(scope["path"])
        client, server = scope.get("client"), scope.get("server")
        log.info("%s %s %d", method, path, status, extra={
            "event": "request", "method": method, "path": path, "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "client": client[0] if client else None, "port": server[1] if server else None,
        })
