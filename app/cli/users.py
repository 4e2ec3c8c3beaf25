"""`cse users add|passwd|list`: the people who sign in to the web app."""

from __future__ import annotations

from typing import Annotated

import typer

from app.settings import Settings
from app.store.db import make_engine, upgrade_schema
from app.users import ROLES, UserError, add_user, audit, list_users, set_password

users_app = typer.Typer(help="Add users of the web app, change their passwords, list them.", no_args_is_help=True)
OPERATOR = "cli"  # the audit log's author for changes made on the command line


def _engine():
    engine = make_engine(Settings.from_env().database_url)
    upgrade_schema(engine)
    return engine


def _password(given: str | None) -> str:
    return given or typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
def add_command(
    username: Annotated[str, typer.Argument(help="The name to sign in with.")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "csm",
    password: Annotated[
        str | None, typer.Option(envvar="CSE_NEW_PASSWORD", help="The password (default: asked for, twice).")
    ] = None,
) -> None:
    """Add a user (the first one should be an admin: `cse users add alice --role admin`)."""
    try:
        with _engine().begin() as conn:
            add_user(conn, username, _password(password), role)
            audit(conn, OPERATOR, "user.add", username, {"role": role})
    except UserError as error:
        typer.echo(f"cse users add: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"added {username} ({role})")


@users_app.command("passwd")
def passwd_command(
    username: Annotated[str, typer.Argument()],
    password: Annotated[str | None, typer.Option(envvar="CSE_NEW_PASSWORD", help="Default: asked for, twice.")] = None,
) -> None:
    """Set a user's password; their open sessions end."""
    try:
        with _engine().begin() as conn:
            set_password(conn, username, _password(password))
            audit(conn, OPERATOR, "user.passwd", username)
    except UserError as error:
        typer.echo(f"cse users passwd: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"password of {username} changed")


@users_app.command("list")
def list_command() -> None:
    """Users with their roles."""
    with _engine().connect() as conn:
        for user in list_users(conn):
            typer.echo(f"{user['username']}\t{user['role']}\t{user['created_at']:%Y-%m-%d}")


def register(cli: typer.Typer) -> None:
    cli.add_typer(users_app, name="users")
