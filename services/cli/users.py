"""``backstop users``: who may log in to the portal, with which role (operator, reseller staff,
customer user) and whether read-only. Passwords are read from a prompt or ``--password-stdin``,
never from the command line, and stored as argon2id hashes."""

from __future__ import annotations

import json
import sys

import typer

from services.cli import tables
from services.cli.common import JSON_OBJECT, database, refusing
from services.portal import admin

app = typer.Typer(no_args_is_help=True, help="Portal users: add, list, remove, passwd.")

COLUMNS = ["email", "role", "reseller_id", "customer_id", "read_only", "login", "created_at",
           "last_login_at"]


def _password(stdin: bool, ldap: bool) -> str | None:
    if ldap:
        return None
    if stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@app.command()
def add(
    email: str = typer.Argument(..., help="The user's e-mail address (their login)."),
    role: str = typer.Option(..., help="operator | reseller | customer"),
    reseller: str = typer.Option(None, help="Reseller name or id (reseller and customer users)."),
    customer: str = typer.Option(None, help="Customer name or id (customer users)."),
    read_only: bool = typer.Option(False, "--read-only", help="May look, not change."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."),
    ldap: bool = typer.Option(
        False, "--ldap", help="No portal password: the user logs in through LDAP."),
    as_json: bool = JSON_OBJECT,
) -> None:
    """Add a portal user (the password is asked for twice unless --password-stdin)."""
    password = _password(password_stdin, ldap)
    with refusing(admin.ConfigError), database().session() as session:
        row = admin.add_user(session, email, role, password, reseller=reseller,
                             customer=customer, read_only=read_only)
    if as_json:
        typer.echo(json.dumps(row, default=str))
    else:
        typer.echo(f"user {row['email']} added ({row['role']})")


@app.command("list")
def list_users(
    as_json: bool = tables.JSON, limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """List portal users by address."""
    with database().session() as session:
        rows = admin.list_users(session)
    tables.emit(tables.Page.cut(rows, limit, offset), COLUMNS, as_json=as_json)


@app.command()
def remove(email: str = typer.Argument(..., help="The user's e-mail address.")) -> None:
    """Remove a portal user; their open sessions end at once."""
    with refusing(admin.ConfigError), database().session() as session:
        admin.remove_user(session, email)
    typer.echo(f"user {email.strip().lower()} removed")


@app.command()
def passwd(
    email: str = typer.Argument(..., help="The user's e-mail address."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."),
) -> None:
    """Set a user's password; their open sessions end."""
    password = _password(password_stdin, False)
    assert password is not None
    with refusing(admin.ConfigError), database().session() as session:
        admin.set_password(session, email, password)
    typer.echo(f"password of {email.strip().lower()} changed")
