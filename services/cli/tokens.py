"""``backstop tokens``: issue, list and revoke an account's API tokens.

Tokens are shown once, when issued; only their SHA-256 digest is stored. Revoking keeps the row
(with ``revoked_at``) so the list still shows which tokens existed. Running ingest replicas stop
accepting a revoked token within ``BACKSTOP_INGEST_TOKEN_CACHE_SECONDS``.
"""

from __future__ import annotations

import json

import typer
from sqlmodel import Session, col, or_, select

from services.cli import tables
from services.cli.common import JSON_OBJECT, database, fail
from shared.credentials import digest
from shared.events import utcnow
from shared.tenancy import Account, ApiToken, issue_token

app = typer.Typer(no_args_is_help=True, help="Account API tokens: issue, list, revoke.")


def revoke(session: Session, token_or_id: str) -> int:
    """Revoke the token given in clear or by its id; returns how many were revoked (0 or 1)."""
    rows = session.exec(
        select(ApiToken).where(
            or_(ApiToken.id == token_or_id, ApiToken.token_hash == digest(token_or_id)),
            col(ApiToken.revoked_at).is_(None),
        )
    ).all()
    for row in rows:
        row.revoked_at = utcnow()
        session.add(row)
    return len(rows)


@app.command()
def issue(
    account: str = typer.Option(..., help="Account id (see `backstop accounts list`)."),
    as_json: bool = JSON_OBJECT,
) -> None:
    """Issue a new token for the account and print it (shown this once only)."""
    with database().session() as session:
        if session.get(Account, account) is None:
            raise fail(f"no account with id {account!r}")
        token = issue_token(session, account)
    if as_json:
        typer.echo(json.dumps({"account_id": account, "token": token}))
        return
    typer.echo(token)
    typer.echo("The token is shown only now; store it in the backup client.", err=True)


@app.command("list")
def list_tokens(
    account: str = typer.Option(..., help="Account id."),
    as_json: bool = tables.JSON, limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """List the account's tokens, oldest first (ids and dates; the secrets are not stored)."""
    with database().session() as session:
        rows = session.exec(
            select(ApiToken).where(ApiToken.account_id == account).order_by(
                col(ApiToken.created_at))
        ).all()
    listing = [{"id": row.id, "created_at": row.created_at, "revoked_at": row.revoked_at}
               for row in rows]
    tables.emit(tables.Page.cut(listing, limit, offset), ["id", "created_at", "revoked_at"],
                as_json=as_json)


@app.command("revoke")
def revoke_command(
    token: str = typer.Argument(..., help="The token itself, or its id from `tokens list`."),
) -> None:
    """Revoke a token: ingest refuses it from then on (after its cache time at most)."""
    with database().session() as session:
        count = revoke(session, token)
    if count == 0:
        raise fail("no active token matches", code=1)
    typer.echo("revoked")
