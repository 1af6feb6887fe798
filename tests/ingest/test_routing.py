"""RequestRoute: documented by FastAPI, served with the endpoint's own Request handling."""

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse, Response

from services.ingest.routing import RequestRoute


class Refused(Exception):
    pass


def app_with(endpoint, path: str = "/things/{name}") -> FastAPI:  # type: ignore[no-untyped-def]
    app = FastAPI()

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> Response:
        return PlainTextResponse(str(exc), status_code=409)

    app.router.add_api_route(path, endpoint, methods=["GET"], route_class_override=RequestRoute,
                             openapi_extra={"description": "documented"})
    return app


async def echo(request: Request) -> Response:
    if request.query_params.get("refuse"):
        raise Refused("no")
    return PlainTextResponse(request.path_params["name"])


def test_serves_the_endpoint_and_maps_its_errors() -> None:
    client = TestClient(app_with(echo))
    assert client.get("/things/abc").text == "abc"
    refused = client.get("/things/abc?refuse=1")
    assert (refused.status_code, refused.text) == (409, "no")


def test_is_in_the_openapi_document() -> None:
    operation = TestClient(app_with(echo)).get("/openapi.json").json()["paths"]["/things/{name}"]
    assert operation["get"]["description"] == "documented"


def test_an_endpoint_declaring_parameters_is_refused() -> None:
    async def wants_a_query(request: Request, limit: int = 10) -> Response:
        return PlainTextResponse(str(limit))

    with pytest.raises(TypeError, match="takes only the Request"):
        app_with(wants_a_query)


def test_an_endpoint_without_the_request_is_refused() -> None:
    async def no_request() -> Response:
        return PlainTextResponse("")

    with pytest.raises(TypeError, match="takes only the Request"):
        app_with(no_request, "/plain")
