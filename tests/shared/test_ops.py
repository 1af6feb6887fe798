"""The ops port's /docs works on a network that reaches nothing but Backstop: every asset the
page loads comes from the ops app itself, and Swagger UI is told not to call its validator."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shared.bus import Bus
from shared.db import Database
from shared.ops import ops_app
from shared.runtime import Runtime

BASE = "http://ops.backstop.test:9090"


class References(HTMLParser):
    """Every URL the page makes the browser load: src and href attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def _api() -> dict[str, Any]:
    api = FastAPI(title="Backstop ingest API")

    @api.get("/v1/things")
    def things() -> list[str]:
        return []

    return api.openapi()


@pytest.fixture
def client() -> TestClient:
    # /docs needs nothing of the runtime but the OpenAPI document.
    runtime = Runtime(bus=cast(Bus, None), db=cast(Database, None), openapi=_api)
    return TestClient(ops_app(runtime), base_url=BASE)


def test_docs_loads_nothing_from_another_host(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    parser = References()
    parser.feed(page.text)
    assert parser.urls, "the page references its assets"
    for url in parser.urls:
        absolute = urljoin(BASE + "/docs", url)
        assert urlsplit(absolute).netloc == urlsplit(BASE).netloc, url
        asset = client.get(urlsplit(absolute).path)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    # Scripts name URLs too (the spec's), and Swagger UI's default validator badge would send
    # the spec's address to a third party: switched off.
    for url in re.findall(r"https?://[^\s'\"]+", page.text):
        assert urlsplit(url).netloc == urlsplit(BASE).netloc, url
    assert re.search(r"validatorUrl\W+null", page.text)


def test_docs_assets_are_scripts_and_styles(client: TestClient) -> None:
    parser = References()
    parser.feed(client.get("/docs").text)
    types = {client.get(urlsplit(urljoin(BASE, u)).path).headers["content-type"].split(";")[0]
             for u in parser.urls}
    assert {"text/css", "text/javascript"} <= types


def test_docs_and_openapi_only_where_ingest_runs() -> None:
    runtime = Runtime(bus=cast(Bus, None), db=cast(Database, None))
    client = TestClient(ops_app(runtime))
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").status_code == 404
