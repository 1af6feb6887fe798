"""Tenancy on both backends: paths, hashed credentials, job names."""

import pytest
from sqlmodel import select

from shared.credentials import digest
from shared.db import Database
from shared.events import utcnow
from shared.tenancy import (
    Account,
    ApiToken,
    Customer,
    Reseller,
    TenancyError,
    account_for_ping_key,
    account_for_token,
    account_path,
    all_paths,
    get_or_create_job,
    lookup_path,
)
from tests.support import make_account


def test_create_account_reuses_reseller_and_customer(db: Database) -> None:
    first = make_account(db, reseller="R", customer="C", name="a1")
    second = make_account(db, reseller="R", customer="C", name="a2")
    assert first.reseller.id == second.reseller.id
    assert first.customer.id == second.customer.id
    with db.session() as session:
        assert len(session.exec(select(Reseller)).all()) == 1
        assert len(session.exec(select(Customer)).all()) == 1


def test_same_account_name_twice_is_refused(db: Database) -> None:
    make_account(db, reseller="R", customer="C", name="a1")
    with pytest.raises(TenancyError):
        make_account(db, reseller="R", customer="C", name="a1")


def test_secrets_are_stored_only_as_digests(db: Database) -> None:
    issued = make_account(db)
    with db.session() as session:
        token_row = session.exec(select(ApiToken)).one()
        account = session.get(Account, issued.account.id)
        assert account is not None
    assert token_row.token_hash == digest(issued.token) != issued.token
    assert account.ping_key_hash == digest(issued.ping_key) != issued.ping_key
    assert issued.token.startswith("bst_") and len(issued.token) > 40


def test_token_and_ping_key_find_their_account(db: Database) -> None:
    a = make_account(db, name="a")
    b = make_account(db, name="b")
    with db.session() as session:
        found_a = account_for_token(session, a.token)
        found_b = account_for_ping_key(session, b.ping_key)
        assert found_a is not None and found_a.id == a.account.id
        assert found_b is not None and found_b.id == b.account.id
        assert account_for_token(session, "bst_wrong") is None
        assert account_for_ping_key(session, a.token) is None


def test_revoked_token_no_longer_resolves(db: Database) -> None:
    issued = make_account(db)
    with db.session() as session:
        row = session.exec(select(ApiToken)).one()
        row.revoked_at = utcnow()
        session.add(row)
    with db.session() as session:
        assert account_for_token(session, issued.token) is None


def test_jobs_are_created_once_and_names_checked(db: Database) -> None:
    issued = make_account(db)
    with db.session() as session:
        job = get_or_create_job(session, issued.account.id, "nightly-db.1")
        again = get_or_create_job(session, issued.account.id, "nightly-db.1")
        assert job.id == again.id
        for bad in ("", "../etc", "a b", "x" * 200, "-leading", "job\n", "x" * 128 + "\n",
                    "a\tb", "job\x00"):
            with pytest.raises(TenancyError):
                get_or_create_job(session, issued.account.id, bad)


def test_reseller_customer_and_account_names_are_checked(db: Database) -> None:
    """Names fit their columns (else a 500 on PostgreSQL) and carry no control characters (they
    end up in e-mail subjects and log lines)."""
    for bad in ("x" * 201, "acme\n", "acme\r\nBcc: x@example.org", "a\x00b", "  "):
        with pytest.raises(TenancyError):
            make_account(db, reseller=bad)
        with pytest.raises(TenancyError):
            make_account(db, customer=bad)
        with pytest.raises(TenancyError):
            make_account(db, name=bad)
    assert make_account(db, reseller="Ünïcode & Co. GmbH", name="x" * 200)


def test_account_path_names_the_whole_chain(db: Database) -> None:
    issued = make_account(db, reseller="MSP", customer="Acme", name="files")
    with db.session() as session:
        reseller, customer, account = account_path(session, issued.account.id)
    assert (reseller.name, customer.name, account.name) == ("MSP", "Acme", "files")
    assert account.tenant().account == issued.account.id


def test_all_paths_of_every_account_or_of_some_names_or_ids(db: Database) -> None:
    one = make_account(db, reseller="MSP", customer="Acme", name="Files")
    two = make_account(db, reseller="MSP", customer="Beta", name="mail")
    with db.session() as session:
        every = {p.account_id: p for p in all_paths(session)}
        assert every[one.account.id] == lookup_path(session, one.account.id)
        assert [p.account_id for p in all_paths(session, names=["FILES"])] == [one.account.id]
        assert [p.account for p in all_paths(session, ids=[two.account.id])] == ["mail"]
        assert all_paths(session, names=[]) == []
