"""The JSON read API under /api/v1: by session or API key, scoped in every query (another
tenant's ids answer 404), read-only, and described by its OpenAPI document."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from services.portal import api_keys
from services.portal.users import Role
from shared.db import Database
from shared.events import utcnow
from shared.tenancy import get_or_create_job
from tests.portal.site import Tenants, add_user, log_in
from tests.portal.support import add_alert, add_notification, add_usage


def key_for(db: Database, email: str) -> dict[str, str]:
    with db.session() as session:
        issued = api_keys.create(session, email, "script")
    return {"Authorization": f"Bearer {issued.secret}"}


@pytest.fixture
def customer_key(sqlite_db: Database, three_tenants: Tenants) -> dict[str, str]:
    add_user(sqlite_db, "user@acme.example", Role.customer, reseller="Reseller One",
             customer="Acme")
    return key_for(sqlite_db, "user@acme.example")


def test_without_credentials_or_with_a_bad_key_the_api_answers_401(
        client: TestClient, customer_key: dict[str, str]) -> None:
    assert client.get("/api/v1/accounts").status_code == 401
    bad = client.get("/api/v1/accounts", headers={"Authorization": "Bearer bsk_nope"})
    assert bad.status_code == 401 and bad.json() == {"detail": "log in first"}


def test_a_key_reads_its_users_tenants_only(client: TestClient, sqlite_db: Database,
                                            three_tenants: Tenants,
                                            customer_key: dict[str, str]) -> None:
    acme, globex = three_tenants.acme, three_tenants.globex
    now = utcnow()
    fp = add_alert(sqlite_db, acme, at=now - timedelta(hours=1))
    other_fp = add_alert(sqlite_db, globex, at=now)
    add_notification(sqlite_db, acme, fp, to="ops@acme.example", at=now, failures=2)
    add_usage(sqlite_db, acme, now.date(), 10, 100)
    add_usage(sqlite_db, globex, now.date(), 20, 100)
    with sqlite_db.session() as session:
        get_or_create_job(session, acme.account.id, "nightly")
        other_job = get_or_create_job(session, globex.account.id, "nightly").id

    accounts = client.get("/api/v1/accounts", headers=customer_key).json()
    assert [a["account"] for a in accounts["items"]] == ["fileserver"]
    assert accounts["items"][0]["percent_used"] == 10.0
    jobs = client.get("/api/v1/jobs", headers=customer_key).json()
    assert [j["job_name"] for j in jobs["items"]] == ["nightly"]
    alerts = client.get("/api/v1/alerts?state=firing", headers=customer_key).json()
    assert [a["fingerprint"] for a in alerts["items"]] == [fp]
    history = client.get(f"/api/v1/alerts/{fp}", headers=customer_key).json()
    [delivery] = history["deliveries"]
    assert (delivery["to"], delivery["status"], len(delivery["attempts"])) == (
        "ops@acme.example", "sent", 3)
    sent = client.get("/api/v1/notifications", headers=customer_key).json()
    assert sent["total"] == 1
    own_job = jobs["items"][0]["job_id"]
    detail = client.get(f"/api/v1/jobs/{own_job}", headers=customer_key).json()
    assert detail["job"]["job_name"] == "nightly" and detail["thresholds"]
    runs = client.get(f"/api/v1/jobs/{own_job}/runs", headers=customer_key).json()
    assert (runs["total"], runs["items"]) == (0, [])
    monthly = client.get("/api/v1/usage/monthly", headers=customer_key).json()
    assert [m["account_name"] for m in monthly] == ["fileserver"]

    for path in (f"/api/v1/alerts/{other_fp}", f"/api/v1/accounts/{globex.account.id}",
                 f"/api/v1/jobs/{other_job}", f"/api/v1/jobs/{other_job}/runs"):
        answer = client.get(path, headers=customer_key)
        assert answer.status_code == 404, path
        assert "mailserver" not in answer.text
    for path in ("/api/v1/alerts", "/api/v1/notifications", "/api/v1/usage/accounts"):
        assert other_fp not in client.get(path, headers=customer_key).text
        assert globex.account.id not in client.get(path, headers=customer_key).text


def test_a_session_reads_the_api_and_a_key_cannot_post_forms(
        client: TestClient, sqlite_db: Database, three_tenants: Tenants,
        customer_key: dict[str, str]) -> None:
    log_in(client, "user@acme.example")
    assert client.get("/api/v1/accounts").status_code == 200
    client.cookies.clear()
    # A key is no session: the editing forms answer as to a stranger.
    refused = client.post(f"/accounts/{three_tenants.acme.account.id}/thresholds",
                          data={"name": "quota_percent", "value": "1"}, headers=customer_key,
                          follow_redirects=False)
    assert refused.status_code in (303, 401)
    assert client.post("/api/v1/accounts", headers=customer_key).status_code == 405


def test_a_revoked_key_stops_at_once(client: TestClient, sqlite_db: Database,
                                     customer_key: dict[str, str]) -> None:
    assert client.get("/api/v1/accounts", headers=customer_key).status_code == 200
    with sqlite_db.session() as session:
        [(key, _)] = api_keys.listing(session)
        assert key.last_used_at is not None
        api_keys.revoke(session, key.id)
    assert client.get("/api/v1/accounts", headers=customer_key).status_code == 401


def test_bad_queries_answer_400_or_422_never_500(client: TestClient,
                                                 customer_key: dict[str, str]) -> None:
    assert client.get("/api/v1/jobs?state=bogus", headers=customer_key).status_code == 400
    assert client.get("/api/v1/usage/monthly?since=2026-01-01&until=2025-01-01",
                      headers=customer_key).status_code == 400
    assert client.get("/api/v1/alerts?limit=100000", headers=customer_key).status_code in (
        400, 422)
    assert client.get("/api/v1/usage/accounts?until=0001-01-01",
                      headers=customer_key).status_code == 400
    assert client.get("/api/v1/jobs/x/runs?before=garbage",
                      headers=customer_key).status_code in (400, 404)


def test_the_openapi_document_describes_the_api(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    paths = set(document["paths"])
    assert {"/api/v1/accounts", "/api/v1/jobs", "/api/v1/jobs/{job_id}/runs", "/api/v1/alerts",
            "/api/v1/alerts/{fingerprint}", "/api/v1/notifications",
            "/api/v1/usage/monthly"} <= paths
    assert not any(not p.startswith("/api/v1/") for p in paths)
    assert "apiKey" in document["components"]["securitySchemes"]
    # Listings are typed: a script's client generator sees the rows' fields.
    schemas = document["components"]["schemas"]
    assert "percent_used" in schemas["AccountRow"]["properties"]
    assert {"total", "items"} <= set(schemas["Listing_AlertEntry_"]["properties"])
