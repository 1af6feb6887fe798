"""A route for endpoints that take the ``Request`` and return a ``Response`` themselves.

The hottest endpoints (``POST /v1/runs``, the pings) read their token, body and parameters
themselves (see ``bodies.py``). For them FastAPI's per-request machinery (parameter solving, two
dependency exit stacks, response checks) is pure cost: about a sixth of a ping's instructions.
Such a route is still a FastAPI route, so the OpenAPI document describes it, but it is served
the way Starlette serves one. Errors raised by the endpoint go through the app's exception
handlers as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import request_response


class RequestRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        dependant = self.dependant
        declared = (dependant.path_params, dependant.query_params, dependant.header_params,
                    dependant.cookie_params, dependant.body_params, dependant.dependencies)
        if any(declared) or dependant.request_param_name is None:
            # Anything else it declared would silently never be filled in.
            raise TypeError(f"{path}: a RequestRoute endpoint takes only the Request")
        self.app = request_response(endpoint)
